// Small response helpers shared by the routes: cached pages with ETag/gzip, redirects that
// respect --base-url, and the conditional-request checks.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RenderedPage } from './rendered-page.js';

/** Does an If-None-Match header match one of our ETags? */
export function etagMatches(ifNoneMatch: string | undefined, ...etags: string[]): boolean {
  if (!ifNoneMatch) return false;
  if (ifNoneMatch.trim() === '*') return true;
  for (const raw of ifNoneMatch.split(',')) {
    const tag = raw.trim().replace(/^W\//, '');
    if (etags.includes(tag)) return true;
  }
  return false;
}

/** Does the client accept gzip (and not refuse it with q=0)? */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  for (const part of header.split(',')) {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    if (coding !== 'gzip' && coding !== '*') continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (q && Number(q.slice(2)) === 0) return coding === '*' ? false : false;
    return true;
  }
  return false;
}

/** Bytes of the body we sent, for the request log (writeHead with an array leaves no getHeader). */
export const BODY_BYTES = Symbol('bodyBytes');
export type CountedResponse = ServerResponse & { [BODY_BYTES]?: number };

/**
 * The headers of a page's 200 answer as a flat [name, value, ...] list, security headers
 * included: the one list that the Express route and the fast path in front of Express
 * (lib/simple/fast-path.ts) both send. Built once per page and variant: do not change it.
 */
export function pageHeaders(page: RenderedPage, contentType: string, gzip: boolean): string[] {
  return page.variant(contentType, gzip).ok;
}

/**
 * Answer with a cached page (ETag -> 304, gzip when asked), its whole header list in one
 * writeHead; returns the body bytes sent (0 for a 304 or HEAD). Touches nothing on req or res:
 * objects that keep the shape Node gave them keep Node's own code on its fast path (the fast
 * path's answers go through here).
 */
export function writePage(req: IncomingMessage, res: ServerResponse, page: RenderedPage, contentType: string): number {
  const headers = req.headers;
  const gzip = acceptsGzip(headers['accept-encoding']);
  const variant = page.variant(contentType, gzip);
  const inm = headers['if-none-match'];
  if (inm && etagMatches(inm, page.etag, page.gzipEtag)) {
    res.writeHead(304, variant.notModified);
    res.end();
    return 0;
  }
  res.writeHead(200, variant.ok);
  if (req.method === 'HEAD') {
    res.end();
    return 0;
  }
  const body = gzip ? page.gzip : page.body;
  res.end(body);
  return body.length;
}

/**
 * Send a cached page as writePage does, for the Express routes (which count the body bytes on
 * res). Headers set before (Express's route has the security headers already) are replaced by
 * the list's.
 */
export function sendPage(req: IncomingMessage, res: ServerResponse, page: RenderedPage, contentType: string): void {
  const bytes = writePage(req, res, page, contentType);
  if (bytes) (res as CountedResponse)[BODY_BYTES] = bytes;
}

export interface UrlBase {
  basePath: string;
  baseOrigin: string | null;
}

/** A Location for a path of ours, with the reverse proxy's prefix (and origin if configured). */
export function location(base: UrlBase, pathname: string, search = ''): string {
  return `${base.baseOrigin ?? ''}${base.basePath}${pathname}${search}`;
}

export function redirect(res: ServerResponse, status: 301 | 302 | 303 | 307 | 308, to: string): void {
  res.statusCode = status;
  res.setHeader('Location', to);
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  const body = `Redirecting to ${to}\n`;
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

/** The query string of a request URL, including its '?', or ''. */
export function searchOf(url: string | undefined): string {
  const i = url?.indexOf('?') ?? -1;
  return i >= 0 ? url!.slice(i) : '';
}

/** A project name and optional version taken from a URL path, decoded; null for a bad escape. */
export function decodeNameVersion(name: string, version: string | undefined): { rawName: string; rawVersion: string | undefined } | null {
  try {
    return { rawName: decodeURIComponent(name), rawVersion: version === undefined ? undefined : decodeURIComponent(version) };
  } catch {
    return null;
  }
}
