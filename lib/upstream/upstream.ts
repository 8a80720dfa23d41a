// The upstream proxy (issue 11): its page cache, its file cache, and what /health and /metrics
// report of it. Built by the server only with --upstream.

import { splitCredentials } from './client.js';
import { constants as fsConstants, promises as fsp } from 'node:fs';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../core/config.js';
import { FileCache } from './files.js';
import type { UpstreamMetrics } from './metrics.js';
import { UpstreamPages } from './pages.js';

/** The upstream cache directory cannot be used (the CLI reports it as a usage error). */
export class UpstreamCacheError extends Error {}

/** Check (creating it if needed) that the cache directory is usable, before anything else starts. */
export async function prepareUpstreamCache(dir: string): Promise<void> {
  try {
    await fsp.mkdir(dir, { recursive: true });
    await fsp.access(dir, fsConstants.W_OK | fsConstants.R_OK | fsConstants.X_OK);
  } catch (err) {
    throw new UpstreamCacheError(`cannot use the upstream cache ${dir}: ${(err as Error).message}`);
  }
}

/** The upstream proxy as the routes use it (Upstream is the implementation). */
export interface UpstreamService {
  readonly pages: UpstreamPages;
  readonly files: FileCache;
  /** For /health: the upstream's state; `brief`: the state only (-a list). */
  health(brief: boolean): Record<string, unknown>;
}

export class Upstream implements UpstreamService {
  private constructor(
    readonly url: string,
    readonly pages: UpstreamPages,
    readonly files: FileCache,
  ) {}

  static async open(config: Config & { upstream: string; upstreamCache: string }, log: Logger, registry: Registry | null): Promise<Upstream> {
    // Credentials in the URL (user:token@) go into an Authorization header, never into logs,
    // /health, error messages or the cache's directory name.
    const { url, auth } = splitCredentials(config.upstream);
    let files: FileCache | null = null;
    // prom-client loads with the metrics (lib/ops/metrics.ts), not at start.
    const metrics: UpstreamMetrics | null = registry ? new (await import('./metrics.js')).UpstreamMetrics(registry, () => files?.bytes ?? 0) : null;
    const pages = new UpstreamPages(
      { url, auth, dir: config.upstreamCache, ttlMs: config.upstreamTtl * 1000, timeoutMs: config.upstreamTimeout * 1000 },
      log,
      metrics,
    );
    files = new FileCache(config.upstreamCache, { maxBytes: config.upstreamCacheMax, idleTimeoutMs: config.upstreamTimeout * 1000, auth }, log, metrics);
    await pages.init();
    await files.init();
    log.info({ upstream: url, cache: config.upstreamCache, ttl: config.upstreamTtl, merge: [...config.upstreamMerge] }, 'proxying the upstream index for names the package directories do not have');
    return new Upstream(url, pages, files);
  }

  /** At shutdown: stop the running downloads (their temporary files are removed). */
  close(): Promise<void> {
    return this.files.close();
  }

  /** For /health: the upstream's state (never makes /health fail); `brief`: the state only (-a list). */
  health(brief: boolean): Record<string, unknown> {
    const s = this.pages.state;
    if (brief) return { state: s.state };
    return { url: this.url, ...(s.state === 'down' ? { state: 'down', error: s.error, since: s.since } : { state: s.state }), cached_bytes: this.files.bytes, shadowed: this.pages.shadowedCount };
  }
}
