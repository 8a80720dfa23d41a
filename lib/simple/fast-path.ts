// The one exception to the route table (lib/routes.ts): a Simple API page that is already
// rendered is answered in front of Express, when the table's Simple API routes need no
// credentials (server.ts asks the table: simplePagesOpen). It answers exactly as the Express route would: the same resolver
// (resolveSimple) and the same header list (pageHeaders, security headers included), pinned
// byte for byte by test/fast-path.test.ts; test/route-table.test.ts checks access through it.
// Express's per-request overhead (its router, the middleware chain) costs more than sending a
// cached page: measured A B B A with npm run bench, the Router path took 2.6 to 4 times the
// CPU per page (HTML, JSON, gzipped root list). Anything else, including every redirect and
// error, goes to Express.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../core/config.js';
import type { ProjectPages } from './pages.js';
import { resolveSimple, writeSimplePage } from './routes.js';
import { compileTrust } from '../http/client-address.js';
import { observePage, type RequestMetrics } from '../http/observe.js';

/** `enabled`: the route table's Simple API routes need no credentials (simplePagesOpen). */
export function fastPath(config: Config, deps: { pages: ProjectPages; log: Logger; metrics: RequestMetrics | null; enabled: boolean }) {
  const simple = { pages: deps.pages, base: { basePath: config.basePath, baseOrigin: config.baseOrigin }, fallbackUrl: config.fallbackUrl };
  const enabled = deps.enabled;
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
    // No field is added to req or res (route name, request id, byte count): objects of one
    // shape keep Node's own code on its fast path; observePage takes them as arguments.
    const start = performance.now();
    const bytes = writeSimplePage(req, res, decision.type, decision.page);
    observePage(req, res, deps.log, deps.metrics, trust, start, bytes);
    return true;
  };
}
