// Prometheus metrics (prom-client): requests by route and status, a latency histogram,
// uploads and uploaded bytes, catalog size and the hashing backlog. Each server gets its own
// Registry, so tests can build several.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValueWithName } from 'prom-client';
import type { RequestMetrics } from '../http/observe.js';

export interface CatalogStats {
  projects(): number;
  files(): number;
  backlog(): number;
  /** Files read for their digest and metadata since the start (optional). */
  hashed?: () => number;
  /** Object stores (S3 roots) and whether each is available. */
  stores?: () => { root: string; state: string }[];
}

/** The metrics as the routes and the uploader feed and show them (Metrics is the implementation). */
export interface MetricsService extends RequestMetrics {
  readonly contentType: string;
  upload(result: 'accepted' | 'identical' | 'rejected', bytes?: number): void;
  /** The Prometheus text exposition. */
  render(): Promise<string>;
}

/** The latency histogram's upper bounds, in seconds. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

/** What one route has answered since start: plain numbers, handed to prom-client when /metrics is read. */
interface RouteStats {
  route: string;
  /** Requests by method, then status. */
  requests: Map<string, Map<number, { n: number; reported: number }>>;
  /** Latency histogram: per bucket (not cumulative), sum and count. */
  buckets: Float64Array;
  sum: number;
  count: number;
  bytes: number;
  bytesReported: number;
}

/**
 * The request latency histogram, read from the routes' plain counts when /metrics is read:
 * prom-client hashes and validates the labels on every observe() (labelled child or not), which
 * cost more than the rest of serving a cached page (issue 13). Same name, labels and text as
 * prom-client's own Histogram (which this is, for the registry); its observe() is not used.
 */
class LatencyHistogram extends Histogram<'route' | 'le'> {
  /** The same metric, never observed: its get() gives the name, help, type and aggregator. */
  private readonly empty: Histogram<'route'>;

  constructor(
    private readonly routes: Map<string, RouteStats>,
    registers: Registry[],
  ) {
    const config = { name: 'pypi_lite_http_request_duration_seconds', help: 'Time to answer a request, by route', labelNames: ['route' as const], buckets: LATENCY_BUCKETS };
    super({ ...config, registers });
    this.empty = new Histogram({ ...config, registers: [] });
  }

  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<'route' | 'le'>>> {
    const meta = await this.empty.get();
    const name = meta.name;
    const values: MetricValueWithName<'route' | 'le'>[] = [];
    for (const r of this.routes.values()) {
      let acc = 0;
      LATENCY_BUCKETS.forEach((le, i) => {
        acc += r.buckets[i];
        values.push({ labels: { le, route: r.route }, value: acc, metricName: `${name}_bucket` });
      });
      values.push(
        { labels: { le: '+Inf', route: r.route }, value: r.count, metricName: `${name}_bucket` },
        { labels: { route: r.route }, value: r.sum, metricName: `${name}_sum` },
        { labels: { route: r.route }, value: r.count, metricName: `${name}_count` },
      );
    }
    return { ...meta, values };
  }

  /** What the registry reads for the text format (prom-client's own reads its store, empty here). */
  getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<'route' | 'le'>>> {
    return this.get();
  }
}

export class Metrics implements MetricsService {
  readonly registry = new Registry();
  private readonly uploads: Counter<'result'>;
  private readonly uploadBytes: Counter;
  /** Per route, counted per request without prom-client (see LatencyHistogram). */
  private readonly routes = new Map<string, RouteStats>();

  constructor(stats: CatalogStats, defaults = true) {
    const registers = [this.registry];
    const routes = this.routes;
    new Counter({
      name: 'pypi_lite_http_requests_total',
      help: 'HTTP requests by route, method and status',
      labelNames: ['route', 'method', 'status'],
      registers,
      collect() {
        for (const r of routes.values()) {
          for (const [method, byStatus] of r.requests) {
            for (const [status, c] of byStatus) {
              if (c.n > c.reported) this.inc({ route: r.route, method, status: String(status) }, c.n - c.reported);
              c.reported = c.n;
            }
          }
        }
      },
    });
    new LatencyHistogram(routes, registers);
    new Counter({
      name: 'pypi_lite_http_response_bytes_total',
      help: 'Response body bytes, by route',
      labelNames: ['route'],
      registers,
      collect() {
        for (const r of routes.values()) {
          if (r.bytes > r.bytesReported) this.inc({ route: r.route }, r.bytes - r.bytesReported);
          r.bytesReported = r.bytes;
        }
      },
    });
    this.uploads = new Counter({ name: 'pypi_lite_uploads_total', help: 'Uploads by result', labelNames: ['result'], registers });
    this.uploadBytes = new Counter({ name: 'pypi_lite_upload_bytes_total', help: 'Bytes of accepted uploads', registers });
    new Gauge({ name: 'pypi_lite_catalog_projects', help: 'Projects in the catalog', registers, collect() { this.set(stats.projects()); } });
    new Gauge({ name: 'pypi_lite_catalog_files', help: 'Distribution files in the catalog', registers, collect() { this.set(stats.files()); } });
    new Gauge({ name: 'pypi_lite_hashing_backlog', help: 'Files waiting for their digest or metadata', registers, collect() { this.set(stats.backlog()); } });
    const hashed = stats.hashed;
    if (hashed) new Gauge({ name: 'pypi_lite_files_hashed', help: 'Files read for their digest and metadata since the start (not: found in the digest cache or an object store\'s index)', registers, collect() { this.set(hashed()); } });
    const stores = stats.stores;
    if (stores) {
      new Gauge({
        name: 'pypi_lite_store_up',
        help: 'Whether an object store (S3 root) is available (1) or not (0)',
        labelNames: ['root'],
        registers,
        collect() {
          for (const s of stores()) this.set({ root: s.root }, s.state === 'ok' ? 1 : 0);
        },
      });
    }
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'pypi_lite_' });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Per request: a few additions to plain numbers (route names, methods and statuses are few and fixed). */
  observe(route: string, method: string, status: number, seconds: number, bytes: number): void {
    let r = this.routes.get(route);
    if (!r) {
      r = { route, requests: new Map(), buckets: new Float64Array(LATENCY_BUCKETS.length), sum: 0, count: 0, bytes: 0, bytesReported: 0 };
      this.routes.set(route, r);
    }
    let byStatus = r.requests.get(method);
    if (!byStatus) r.requests.set(method, (byStatus = new Map<number, { n: number; reported: number }>()));
    const c = byStatus.get(status);
    if (c) c.n++;
    else byStatus.set(status, { n: 1, reported: 0 });
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
      if (seconds <= LATENCY_BUCKETS[i]) {
        r.buckets[i]++;
        break;
      }
    }
    r.sum += seconds;
    r.count++;
    r.bytes += bytes;
  }

  upload(result: 'accepted' | 'identical' | 'rejected', bytes = 0): void {
    this.uploads.inc({ result });
    if (bytes) this.uploadBytes.inc(bytes);
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
