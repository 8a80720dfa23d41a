// Operations endpoints: /health (pypiserver's path, configurable), /metrics (Prometheus) and
// the welcome page at /. /health stays open for load balancers (without the catalog's counts
// when -a list); /metrics and / describe the index, so they need `list` like /simple/ (declared
// in the route table, lib/routes.ts).

import type { Request, RequestHandler, Response } from 'express';
import type { AccessPolicy } from '../auth/guard.js';
import type { Config } from '../core/config.js';
import type { CatalogView } from '../catalog/catalog.js';
import type { IndexService } from '../catalog/indexer.js';
import { renderWelcome } from './welcome.js';
import type { MetricsService } from './metrics.js';

export type { MetricsService } from './metrics.js';

export interface OpsDeps {
  catalog: CatalogView;
  indexer: IndexService;
  metrics: MetricsService | null;
  auth: AccessPolicy;
  /** The upstream proxy, reported in /health (which stays 200 when the upstream is down). */
  upstream?: { health(brief: boolean): Record<string, unknown> } | null;
  /** The object stores' states (S3 roots): /health says `degraded` (still 200) while one is unavailable. */
  stores?: (() => { root: string; state: string; error?: string }[]) | null;
}

/** The handlers of /health, /metrics (null when metrics are off) and the welcome page (see lib/routes.ts). */
export function opsRoutes(config: Config, deps: OpsDeps): { health: RequestHandler; metrics: RequestHandler | null; welcome: RequestHandler } {
  const health = (_req: Request, res: Response): void => {
    const { projects, files } = deps.catalog.size;
    const ready = deps.indexer.isLoaded;
    res.status(ready ? 200 : 503);
    res.setHeader('Cache-Control', 'no-store');
    const stores = deps.stores?.() ?? null;
    // Pages keep being served from memory while a store is down (downloads and uploads get 503).
    const status = !ready ? 'loading' : stores?.some((s) => s.state !== 'ok') ? 'degraded' : 'ok';
    const hashing = deps.indexer.backlog;
    // hash_failures (only when not 0): listed files that could not be hashed because a
    // hashing worker died twice; retried at the next rescan (see --rescan-interval).
    const failures = deps.indexer.hashFailures;
    const extra = { ...(failures ? { hash_failures: failures } : {}), ...(deps.upstream ? { upstream: deps.upstream.health(deps.auth.needs('list')) } : {}), ...(stores ? { stores: deps.auth.needs('list') ? stores.map((s) => ({ state: s.state })) : stores } : {}) };
    res.json(deps.auth.needs('list') ? { status, hashing, ...extra } : { status, projects, files, hashing, ...extra });
  };
  const metrics = deps.metrics;
  const metricsHandler = metrics
    ? async (_req: Request, res: Response): Promise<void> => {
        const text = await metrics.render();
        res.setHeader('Content-Type', metrics.contentType);
        res.setHeader('Cache-Control', 'no-store');
        res.end(text);
      }
    : null;
  const welcome = (req: Request, res: Response): void => {
    const body = renderWelcome(req, config, deps.catalog.size);
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.end(body);
  };
  return { health, metrics: metricsHandler, welcome };
}
