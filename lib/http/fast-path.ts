// The fast path in front of Express for the hottest requests: a Simple API page that is
// already rendered. It answers exactly as the Express route would (it calls the same
// resolveSimple), minus Express's per-request overhead, which measured at several times the
// cost of sending a cached page. Anything else (including every error) goes to Express.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { PageCache } from '../simple/pages.js';
import { resolveSimple, sendSimplePage } from '../simple/routes.js';
import { compileTrust } from './client-address.js';
import { observeRequest, type RequestMetrics } from './observe.js';
import { SECURITY_HEADERS } from './security.js';

export function fastPath(config: Config, deps: { pages: PageCache; log: Logger; metrics: RequestMetrics | null }) {
  const simple = { pages: deps.pages, base: { basePath: config.basePath, baseOrigin: config.baseOrigin }, fallbackUrl: config.fallbackUrl };
  const enabled = !config.authenticate.has('list');
  const prefix = `${config.basePath}/simple/`;
  const trust = compileTrust(config.trustProxy);
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (!enabled || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    const url = req.url ?? '';
    if (!url.startsWith(prefix)) return false;
    const q = url.indexOf('?');
    const pathname = (q === -1 ? url : url.slice(0, q)).slice(config.basePath.length);
    if (pathname.length > 300) return false;
    const decision = resolveSimple(simple, req, pathname);
    if (decision.kind !== 'page') return false;
    (req as IncomingMessage & { routeName?: string }).routeName = 'simple';
    observeRequest(req, res, deps.log, deps.metrics, trust);
    sendSimplePage(req, res, decision.type, decision.page, SECURITY_HEADERS);
    return true;
  };
}
