// Prometheus metrics of the upstream proxy, registered in the server's registry (lib/ops/metrics.ts).

import { Counter, Gauge, type Registry } from 'prom-client';

export class UpstreamMetrics {
  private readonly pages: Counter<'result'>;
  private readonly files: Counter<'kind' | 'result'>;
  private readonly staleServed: Counter;
  private readonly shadowedTotal: Counter;
  private readonly upGauge: Gauge;

  constructor(registry: Registry, cacheBytes: () => number) {
    const registers = [registry];
    this.pages = new Counter({ name: 'pypi_lite_upstream_page_fetches_total', help: 'Upstream page requests by result (ok, not_modified, not_found, error)', labelNames: ['result'], registers });
    this.files = new Counter({
      name: 'pypi_lite_upstream_file_fetches_total',
      help: 'Upstream downloads (file or metadata) by result (ok, mismatch, error)',
      labelNames: ['kind', 'result'],
      registers,
    });
    this.staleServed = new Counter({ name: 'pypi_lite_upstream_stale_pages_total', help: 'Cached upstream pages served because the upstream could not be reached', registers });
    this.shadowedTotal = new Counter({
      name: 'pypi_lite_upstream_shadowed_projects_total',
      help: 'Local (private) projects whose name the upstream index also has (possible dependency confusion; upstream files never served)',
      registers,
    });
    this.upGauge = new Gauge({ name: 'pypi_lite_upstream_up', help: '1 if the last upstream request reached it, 0 if not', registers });
    this.upGauge.set(1);
    new Gauge({ name: 'pypi_lite_upstream_cache_bytes', help: 'Bytes of verified upstream files in the cache', registers, collect() { this.set(cacheBytes()); } });
  }

  page(result: 'ok' | 'not_modified' | 'not_found' | 'error'): void {
    this.pages.inc({ result });
  }

  file(kind: 'file' | 'metadata', result: 'ok' | 'mismatch' | 'error'): void {
    this.files.inc({ kind, result });
  }

  stale(): void {
    this.staleServed.inc();
  }

  shadowed(): void {
    this.shadowedTotal.inc();
  }

  setUp(up: boolean): void {
    this.upGauge.set(up ? 1 : 0);
  }
}
