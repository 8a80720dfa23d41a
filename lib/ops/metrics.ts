// Prometheus metrics (prom-client): requests by route and status, a latency histogram,
// uploads and uploaded bytes, catalog size and the hashing backlog. Each server gets its own
// Registry, so tests can build several.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
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

export class Metrics implements MetricsService {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'method' | 'status'>;
  private readonly latency: Histogram<'route'>;
  private readonly uploads: Counter<'result'>;
  private readonly uploadBytes: Counter;
  private readonly responseBytes: Counter<'route'>;

  constructor(stats: CatalogStats, defaults = true) {
    const registers = [this.registry];
    this.requests = new Counter({ name: 'pypi_lite_http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'], registers });
    this.latency = new Histogram({
      name: 'pypi_lite_http_request_duration_seconds',
      help: 'Time to answer a request, by route',
      labelNames: ['route'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
    this.responseBytes = new Counter({ name: 'pypi_lite_http_response_bytes_total', help: 'Response body bytes, by route', labelNames: ['route'], registers });
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

  /** Labelled children, looked up once per label set (prom-client hashes labels on every call). */
  private readonly children = new Map<string, { requests: { inc(): void }; latency: { observe(v: number): void }; bytes: { inc(v: number): void } }>();

  observe(route: string, method: string, status: number, seconds: number, bytes: number): void {
    const key = `${route}\0${method}\0${status}`;
    let c = this.children.get(key);
    if (!c) {
      c = {
        requests: this.requests.labels(route, method, String(status)),
        latency: this.latency.labels(route),
        bytes: this.responseBytes.labels(route),
      };
      if (this.children.size < 10_000) this.children.set(key, c);
    }
    c.requests.inc();
    c.latency.observe(seconds);
    if (bytes) c.bytes.inc(bytes);
  }

  upload(result: 'accepted' | 'identical' | 'rejected', bytes = 0): void {
    this.uploads.inc({ result });
    if (bytes) this.uploadBytes.inc(bytes);
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
