// Prometheus metrics (prom-client): requests by route and status, a latency histogram,
// uploads and uploaded bytes, catalog size and the hashing backlog. Each server gets its own
// Registry, so tests can build several. Until /metrics is first read everything is counted in
// plain numbers (GC pauses and the event-loop delay by observers of our own, started with the
// server as prom-client would have started its own): prom-client and its dependencies
// (some 90 modules) load on that first read, not at start.

import { constants as perfConstants, monitorEventLoopDelay, PerformanceObserver, type IntervalHistogram } from 'node:perf_hooks';
import type * as PromClient from 'prom-client';
import type { Histogram, MetricObjectWithValues, MetricValueWithName, Registry } from 'prom-client';
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

/** prom-client's buckets for its nodejs_gc_duration_seconds, in seconds. */
const GC_BUCKETS = [0.001, 0.01, 0.1, 1, 2, 5];

/** GC kinds as prom-client names them (perf_hooks' entry.detail.kind). */
const GC_KINDS: Record<number, string> = {
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

/** A histogram counted in plain numbers: per bucket (not cumulative), sum and count. */
interface PlainHistogram {
  buckets: Float64Array;
  sum: number;
  count: number;
}

function plainHistogram(bounds: readonly number[]): PlainHistogram {
  return { buckets: new Float64Array(bounds.length), sum: 0, count: 0 };
}

function observeInto(h: PlainHistogram, bounds: readonly number[], value: number): void {
  for (let i = 0; i < bounds.length; i++) {
    if (value <= bounds[i]) {
      h.buckets[i]++;
      break;
    }
  }
  h.sum += value;
  h.count++;
}

/** What one route has answered since start: plain numbers, handed to prom-client when /metrics is read. */
interface RouteStats extends PlainHistogram {
  route: string;
  /** Requests by method, then status. */
  requests: Map<string, Map<number, { n: number; reported: number }>>;
  bytes: number;
  bytesReported: number;
}

/** A count read into a prom-client counter as it grows. */
interface Count {
  n: number;
  reported: number;
}

/**
 * A histogram read from plain counts when /metrics is read (the request latencies by route, GC
 * pauses by kind): prom-client hashes and validates the labels on every observe() (labelled child
 * or not), which cost more than the rest of serving a cached page (issue 13). Same name, labels
 * and text as prom-client's own Histogram (which this is, for the registry); its observe() is not
 * used. A class built from the loaded prom-client (it is not loaded before the first /metrics).
 */
function plainHistogramClass(prom: typeof PromClient) {
  return class PlainCountsHistogram<L extends string> extends prom.Histogram<L | 'le'> {
    /** The same metric, never observed: its get() gives the name, help, type and aggregator. */
    private readonly empty: Histogram<L>;

    private readonly bounds: readonly number[];

    constructor(
      config: { name: string; help: string; labelNames: L[]; buckets: number[] },
      private readonly label: L,
      private readonly series: () => Iterable<[string, PlainHistogram]>,
      registers: Registry[],
    ) {
      super({ ...config, registers });
      this.bounds = config.buckets;
      this.empty = new prom.Histogram({ ...config, registers: [] });
    }

    override async get(): Promise<MetricObjectWithValues<MetricValueWithName<L | 'le'>>> {
      const meta = await this.empty.get();
      const name = meta.name;
      const values: MetricValueWithName<L | 'le'>[] = [];
      const bounds = this.bounds;
      for (const [value, h] of this.series()) {
        const labels: Partial<Record<L | 'le', string | number>> = {};
        labels[this.label] = value;
        let acc = 0;
        bounds.forEach((le, i) => {
          acc += h.buckets[i];
          values.push({ labels: { le, ...labels }, value: acc, metricName: `${name}_bucket` });
        });
        values.push(
          { labels: { le: '+Inf', ...labels }, value: h.count, metricName: `${name}_bucket` },
          { labels: { ...labels }, value: h.sum, metricName: `${name}_sum` },
          { labels: { ...labels }, value: h.count, metricName: `${name}_count` },
        );
      }
      return { ...meta, values };
    }

    /** What the registry reads for the text format (prom-client's own reads its store, empty here). */
    getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<L | 'le'>>> {
      return this.get();
    }
  };
}

/** prom-client's content type for the text format (the registry's, without loading it). */
const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export class Metrics implements MetricsService {
  /** Per route, counted per request without prom-client (see plainHistogramClass). */
  private readonly routes = new Map<string, RouteStats>();
  private readonly uploads = new Map<string, Count>();
  private readonly uploadBytes: Count = { n: 0, reported: 0 };
  /** GC pauses by kind since the start (prom-client's nodejs_gc_duration_seconds, counted before it loads). */
  private readonly gc = new Map<string, PlainHistogram>();
  private readonly gcObserver: PerformanceObserver | null = null;
  /** The event-loop delay since the start, then since the previous /metrics (prom-client's nodejs_eventloop_lag_*_seconds). */
  private readonly loopDelay: IntervalHistogram | null = null;
  private built: Promise<Registry> | null = null;

  constructor(
    private readonly stats: CatalogStats,
    private readonly defaults = true,
  ) {
    if (defaults) {
      const gc = this.gc;
      this.gcObserver = new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) {
          const detail: unknown = 'detail' in entry ? entry.detail : undefined;
          const kindNo = typeof detail === 'object' && detail !== null && 'kind' in detail && typeof detail.kind === 'number' ? detail.kind : -1;
          const kind = GC_KINDS[kindNo] ?? 'unknown';
          let h = gc.get(kind);
          if (!h) gc.set(kind, (h = plainHistogram(GC_BUCKETS)));
          observeInto(h, GC_BUCKETS, entry.duration / 1000);
        }
      });
      this.gcObserver.observe({ entryTypes: ['gc'] });
      // prom-client's resolution (eventLoopMonitoringPrecision).
      this.loopDelay = monitorEventLoopDelay({ resolution: 10 });
      this.loopDelay.enable();
    }
  }

  get contentType(): string {
    return PROMETHEUS_CONTENT_TYPE;
  }

  /**
   * The registry, built (prom-client loaded) on the first call: the first /metrics, or a
   * component that registers metrics of its own (the upstream proxy) at start.
   */
  registry(): Promise<Registry> {
    this.built ??= import('prom-client').then((prom) => this.build(prom));
    return this.built;
  }

  private build(prom: typeof PromClient): Registry {
    const { Counter, Gauge } = prom;
    const registry = new prom.Registry();
    const registers = [registry];
    const { routes, uploads, uploadBytes, stats } = this;
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
    const PlainCountsHistogram = plainHistogramClass(prom);
    new PlainCountsHistogram(
      { name: 'pypi_lite_http_request_duration_seconds', help: 'Time to answer a request, by route', labelNames: ['route'], buckets: LATENCY_BUCKETS },
      'route',
      () => [...routes.values()].map((r): [string, PlainHistogram] => [r.route, r]),
      registers,
    );
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
    new Counter({
      name: 'pypi_lite_uploads_total',
      help: 'Uploads by result',
      labelNames: ['result'],
      registers,
      collect() {
        for (const [result, c] of uploads) {
          if (c.n > c.reported) this.inc({ result }, c.n - c.reported);
          c.reported = c.n;
        }
      },
    });
    new Counter({
      name: 'pypi_lite_upload_bytes_total',
      help: 'Bytes of accepted uploads',
      registers,
      collect() {
        if (uploadBytes.n > uploadBytes.reported) this.inc(uploadBytes.n - uploadBytes.reported);
        uploadBytes.reported = uploadBytes.n;
      },
    });
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
    if (this.defaults) {
      const prefix = 'pypi_lite_';
      prom.collectDefaultMetrics({ register: registry, prefix });
      // Its GC histogram counts from now; ours has counted since the start, under the same name.
      // (Its observer stays, feeding the unregistered histogram: a few additions per GC.)
      const gcName = `${prefix}nodejs_gc_duration_seconds`;
      const theirs = registry.getSingleMetric(gcName);
      if (theirs) {
        registry.removeSingleMetric(gcName);
        new PlainCountsHistogram(
          { name: gcName, help: 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.', labelNames: ['kind'], buckets: GC_BUCKETS },
          'kind',
          () => this.gc.entries(),
          registers,
        );
      }
      // Its event-loop delay statistics start now, and the first /metrics would read an empty
      // histogram; ours has run since the start (same names and help; its own
      // nodejs_eventloop_lag_seconds, measured at each read, stays).
      const delay = this.loopDelay;
      if (delay) {
        const stats: [string, string, (h: IntervalHistogram) => number][] = [
          ['min', 'The minimum recorded event loop delay.', (h) => h.min],
          ['max', 'The maximum recorded event loop delay.', (h) => h.max],
          ['mean', 'The mean of the recorded event loop delays.', (h) => h.mean],
          ['stddev', 'The standard deviation of the recorded event loop delays.', (h) => h.stddev],
          ['p50', 'The 50th percentile of the recorded event loop delays.', (h) => h.percentile(50)],
          ['p90', 'The 90th percentile of the recorded event loop delays.', (h) => h.percentile(90)],
          ['p99', 'The 99th percentile of the recorded event loop delays.', (h) => h.percentile(99)],
        ];
        const gauges: PromClient.Gauge[] = [];
        // The first gauge reads them all, then the histogram starts again (as prom-client's does).
        const read = (): void => {
          stats.forEach(([, , value], i) => gauges[i].set(value(delay) / 1e9));
          delay.reset();
        };
        stats.forEach(([stat, help], i) => {
          const name = `${prefix}nodejs_eventloop_lag_${stat}_seconds`;
          registry.removeSingleMetric(name);
          gauges.push(new Gauge({ name, help, registers, ...(i === 0 ? { collect: read } : {}) }));
        });
      }
    }
    return registry;
  }

  /** Per request: a few additions to plain numbers (route names, methods and statuses are few and fixed). */
  observe(route: string, method: string, status: number, seconds: number, bytes: number): void {
    let r = this.routes.get(route);
    if (!r) {
      r = { route, requests: new Map(), ...plainHistogram(LATENCY_BUCKETS), bytes: 0, bytesReported: 0 };
      this.routes.set(route, r);
    }
    let byStatus = r.requests.get(method);
    if (!byStatus) r.requests.set(method, (byStatus = new Map<number, Count>()));
    const c = byStatus.get(status);
    if (c) c.n++;
    else byStatus.set(status, { n: 1, reported: 0 });
    observeInto(r, LATENCY_BUCKETS, seconds);
    r.bytes += bytes;
  }

  upload(result: 'accepted' | 'identical' | 'rejected', bytes = 0): void {
    const c = this.uploads.get(result);
    if (c) c.n++;
    else this.uploads.set(result, { n: 1, reported: 0 });
    this.uploadBytes.n += bytes;
  }

  async render(): Promise<string> {
    return (await this.registry()).metrics();
  }

  /** Stops our observers (a server's metrics end with it). */
  close(): void {
    this.gcObserver?.disconnect();
    this.loopDelay?.disable();
  }
}
