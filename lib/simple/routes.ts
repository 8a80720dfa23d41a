// The Simple API routes: /simple/ and /simple/<project>/ in HTML or JSON (PEP 503/691),
// with PEP 503 redirects to the normalized, slash-terminated URL and the fallback for
// unknown projects.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { httpError } from '../core/errors.js';
import { isNormalizedName, normalizeName } from '../core/names.js';
import { location, redirect, searchOf, sendPage, writePage, type UrlBase } from '../http/respond.js';
import { HTML_V1, JSON_V1, negotiateRequest, TEXT_HTML, type SimpleType } from './negotiate.js';
import type { RenderedPage } from '../http/rendered-page.js';
import type { PageFormat, ProjectPages } from './pages.js';

export interface SimpleDeps {
  pages: ProjectPages;
  base: UrlBase;
  fallbackUrl: string | null;
}

function formatOf(type: SimpleType): PageFormat {
  return type === JSON_V1 ? 'json' : 'html';
}

/** The Content-Types: constants, so that a page's header lists are found by identity, not built per request. */
const HTML_V1_TYPE = `${HTML_V1}; charset=utf-8`;
const TEXT_HTML_TYPE = `${TEXT_HTML}; charset=utf-8`;

function contentTypeOf(type: SimpleType): string {
  return type === JSON_V1 ? JSON_V1 : type === HTML_V1 ? HTML_V1_TYPE : TEXT_HTML_TYPE;
}

/**
 * The `format` query parameter. A `+` stays a `+` (not a space as in form encoding): users type
 * `?format=application/vnd.pypi.simple.v1+json` unencoded, and no media type contains a space.
 */
function formatParam(url: string | undefined): string | undefined {
  const q = searchOf(url);
  if (!q.includes('format=')) return undefined;
  for (const pair of q.slice(1).split('&')) {
    if (!pair.startsWith('format=')) continue;
    try {
      return decodeURIComponent(pair.slice('format='.length));
    } catch {
      return pair.slice('format='.length);
    }
  }
  return undefined;
}

/** Exactly the names that normalizeName leaves unchanged and isNormalizedName accepts. */
const CANONICAL_NAME = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

type Resolution =
  | { kind: 'page'; type: SimpleType; page: RenderedPage }
  | { kind: 'pending'; type: SimpleType; project: string }
  | { kind: 'redirect'; status: 301 | 303; to: string }
  | { kind: 'error'; code: 'NOT_ACCEPTABLE' | 'PROJECT_NOT_FOUND' }
  | { kind: 'skip' };

/**
 * Decide what a /simple request gets without waiting. Shared by the Express route and the
 * fast path in front of Express (lib/http/fast-path.ts), so both answer identically.
 */
export function resolveSimple(deps: SimpleDeps, req: IncomingMessage, pathname: string): Resolution {
  if (pathname === '/simple') return { kind: 'redirect', status: 301, to: location(deps.base, '/simple/', searchOf(req.url)) };
  if (!pathname.startsWith('/simple/')) return { kind: 'skip' };
  const type = negotiateRequest(req.headers.accept, formatParam(req.url));
  const rest = pathname.slice('/simple/'.length);
  if (rest === '') {
    if (!type) return { kind: 'error', code: 'NOT_ACCEPTABLE' };
    return { kind: 'page', type, page: deps.pages.root(formatOf(type)) };
  }
  const slash = rest.indexOf('/');
  if (slash !== -1 && slash !== rest.length - 1) return { kind: 'error', code: 'PROJECT_NOT_FOUND' };
  const segment = slash === -1 ? rest : rest.slice(0, -1);
  let raw: string;
  try {
    raw = segment.includes('%') ? decodeURIComponent(segment) : segment;
  } catch {
    return { kind: 'error', code: 'PROJECT_NOT_FOUND' };
  }
  // The common case, a normalized name, is its own normalization (and needs no second test).
  const canonical = CANONICAL_NAME.test(raw);
  const name = canonical ? raw : normalizeName(raw);
  if (!canonical && !isNormalizedName(name)) return { kind: 'error', code: 'PROJECT_NOT_FOUND' };
  if (name !== raw || slash === -1) {
    return { kind: 'redirect', status: 301, to: location(deps.base, `/simple/${name}/`, searchOf(req.url)) };
  }
  const cached = type ? deps.pages.cached(name, formatOf(type)) : deps.pages.cached(name, 'html');
  if (cached === null) {
    if (deps.fallbackUrl) return { kind: 'redirect', status: 303, to: `${deps.fallbackUrl.replace(/\/+$/, '')}/${name}/` };
    return { kind: 'error', code: 'PROJECT_NOT_FOUND' };
  }
  if (!type) return { kind: 'error', code: 'NOT_ACCEPTABLE' };
  if (cached) return { kind: 'page', type, page: cached };
  return { kind: 'pending', type, project: name };
}

export function sendSimplePage(req: IncomingMessage, res: ServerResponse, type: SimpleType, page: RenderedPage): void {
  sendPage(req, res, page, contentTypeOf(type));
}

/** The same answer for the fast path: writes nothing on req or res, returns the body bytes sent. */
export function writeSimplePage(req: IncomingMessage, res: ServerResponse, type: SimpleType, page: RenderedPage): number {
  return writePage(req, res, page, contentTypeOf(type));
}

/** Express handler for /simple, /simple/ and /simple/<project>[/] (GET, HEAD; see lib/routes.ts). */
export function simpleRoutes(deps: SimpleDeps) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const r = resolveSimple(deps, req, req.path);
    switch (r.kind) {
      case 'skip':
        return next();
      case 'redirect':
        if (r.status === 301) res.setHeader('Vary', 'Accept');
        return redirect(res, r.status, r.to);
      case 'error':
        res.setHeader('Vary', 'Accept');
        throw httpError(r.code);
      case 'page':
        req.routeName = 'simple';
        return sendSimplePage(req, res, r.type, r.page);
      case 'pending': {
        req.routeName = 'simple';
        const page = await deps.pages.project(r.project, formatOf(r.type));
        if (!page) throw httpError('PROJECT_NOT_FOUND');
        return sendSimplePage(req, res, r.type, page);
      }
    }
  };
}


/**
 * First path segments that belong to the app (its routes, the web UI's, and files browsers
 * ask for): `/<segment>/` with one of these is never taken for a project name.
 */
export const RESERVED_SEGMENTS: ReadonlySet<string> = new Set([
  'simple', 'packages', 'pypi', 'api', 'health', 'metrics', 'legacy', 'project', 'search',
  'static', 'assets', 'favicon.ico', 'robots.txt',
]);

/** A PEP 508 project name, as typed (any case, `.`, `_` or `-` inside). */
const PROJECT_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/;

/**
 * pypiserver compatibility: `--index-url http://box:8080/` (without /simple/) makes pip ask for
 * `/<project>/`, which pypiserver redirects to `/simple/<project>/`. Same here: a single
 * segment that is a valid project name and none of the app's own first segments gets a 301
 * to the normalized Simple page, query kept. Unknown projects are redirected too (as
 * pypiserver does): /simple/ then answers with its own rules (access control, fallback, 404),
 * so the redirect itself reveals nothing. Declared after every other GET route (lib/routes.ts).
 */
export function bareProjectRedirect(deps: { base: UrlBase; reserved?: Iterable<string> }) {
  const reserved = new Set([...RESERVED_SEGMENTS, ...(deps.reserved ?? [])].map((s) => s.toLowerCase()));
  return (req: Request, res: Response, next: NextFunction): void => {
    const m = /^\/([^/]+)\/?$/.exec(req.path);
    if (!m) return next();
    let raw: string;
    try {
      raw = decodeURIComponent(m[1]);
    } catch {
      return next();
    }
    if (!PROJECT_NAME.test(raw) || reserved.has(raw.toLowerCase())) return next();
    res.setHeader('Vary', 'Accept');
    redirect(res, 301, location(deps.base, `/simple/${normalizeName(raw)}/`, searchOf(req.url)));
  };
}
