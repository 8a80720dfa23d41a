// Per-request bookkeeping shared by Express and the fast path: a request id, one log line per
// request (method, path, status, bytes, ms, user, client address by the --trust-proxy rule;
// never headers or query strings), and the metrics hook. This runs for every request: nothing
// here allocates more than the line's fields and the one 'close' listener (lib/log.ts's
// logRequest writes the line without redaction and in batches).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { logRequest, type Logger } from '../core/log.js';
import { clientAddress, type TrustFunction } from './client-address.js';
import { BODY_BYTES, type CountedResponse } from './respond.js';

export interface RequestMetrics {
  observe(route: string, method: string, status: number, seconds: number, bytes: number): void;
}

interface Observed {
  id?: string;
  user?: string;
  routeName?: string;
}

let counter = 0;
const PREFIX = `${process.pid.toString(36)}-`;

export function nextRequestId(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return PREFIX + counter.toString(36);
}

export function pathOnly(url: string | undefined): string {
  if (!url) return '/';
  const q = url.indexOf('?');
  const p = q === -1 ? url : url.slice(0, q);
  return p.length > 512 ? `${p.slice(0, 509)}...` : p;
}

export function observeRequest(req: IncomingMessage, res: ServerResponse, log: Logger, metrics: RequestMetrics | null, trust: TrustFunction): string {
  const r = req as IncomingMessage & Observed;
  const id = r.id ?? nextRequestId();
  r.id = id;
  // Now, while the socket is open: a closed socket may no longer know its peer.
  const logging = log.isLevelEnabled('info');
  const remote = logging ? clientAddress(req, trust) : undefined;
  const start = performance.now();
  res.on('close', () => {
    const ms = performance.now() - start;
    const counted = (res as CountedResponse)[BODY_BYTES];
    const status = res.writableFinished ? res.statusCode : 499;
    // Body bytes actually sent: none for HEAD (Content-Length announces the GET body's size),
    // 204 and 304, or an unfinished response.
    const bodyless = req.method === 'HEAD' || status === 204 || status === 304;
    const bytes = !res.writableFinished || bodyless ? 0 : counted ?? (Number(res.getHeader('content-length') ?? 0) || 0);
    metrics?.observe(r.routeName ?? 'other', req.method ?? 'GET', status, ms / 1000, bytes);
    if (logging) logRequest(log, { reqId: id, method: req.method, path: pathOnly(req.url), status, bytes, ms: Math.round(ms * 100) / 100, user: r.user, remote });
  });
  return id;
}

/**
 * observeRequest for an answer already written by the fast path (lib/simple/fast-path.ts): the
 * same log line and metrics (route 'simple', no user), from arguments instead of fields on req
 * and res. `start`: performance.now() before the answer; `bytes`: the body bytes written. An
 * answer whose bytes are all with the kernel already (the usual case: one writev) is recorded
 * now; one still buffered (a slow reader) when the response closes, as observeRequest does.
 */
export function observePage(req: IncomingMessage, res: ServerResponse, log: Logger, metrics: RequestMetrics | null, trust: TrustFunction, start: number, bytes: number): void {
  const logging = log.isLevelEnabled('info');
  if (!logging && !metrics) return;
  const remote = logging ? clientAddress(req, trust) : undefined;
  if (res.writableEnded && res.writableLength === 0) {
    recordPage(req, res.statusCode, bytes, start, log, logging, metrics, remote);
    return;
  }
  res.on('close', () => {
    const finished = res.writableFinished;
    recordPage(req, finished ? res.statusCode : 499, finished ? bytes : 0, start, log, logging, metrics, remote);
  });
}

function recordPage(req: IncomingMessage, status: number, bytes: number, start: number, log: Logger, logging: boolean, metrics: RequestMetrics | null, remote: string | undefined): void {
  const ms = performance.now() - start;
  metrics?.observe('simple', req.method ?? 'GET', status, ms / 1000, bytes);
  if (logging) logRequest(log, { reqId: nextRequestId(), method: req.method, path: pathOnly(req.url), status, bytes, ms: Math.round(ms * 100) / 100, user: undefined, remote });
}
