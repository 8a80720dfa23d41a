// The handlers of the web UI (declared, with their access, in the route table lib/routes.ts):
//   GET /                          home: projects (most recently updated first) and how to use the index
//   GET /search?q=...              projects by name (exact, prefix, substring), summary and keywords
//   GET /project/<name>/           the latest release of a project
//   GET /project/<name>/<version>/ one release
//   GET /static/ui.css, ui.js      the stylesheet and the optional copy-to-clipboard script
//   GET /packages/                 every file as a flat link list (pypiserver's --find-links page;
//                                  served with --no-ui too)
// Access follows one rule (README, "Access control"): names, versions and hashes need `list`;
// metadata (READMEs, summaries, authors, dependencies) needs `download` too, as the JSON API.
// So /packages/ needs `list`, and the pages, which show metadata, `list` and `download`. The
// file links point at /packages/<file>, which needs `download`. Pages come from memory (the catalog, the UI's project
// index, a bounded cache of release details); handlers only gather data, the render-*.ts
// modules build the HTML.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Request, RequestHandler, Response } from 'express';
import type { CatalogView, DistFile, Project } from '../catalog/catalog.js';
import type { IndexService } from '../catalog/indexer.js';
import { normalizeName } from '../core/names.js';
import type { Config } from '../core/config.js';
import { httpError, toReasonPhrase, type ErrorCode } from '../core/errors.js';
import { decodeNameVersion, etagMatches, location, redirect, searchOf } from '../http/respond.js';
import type { MetadataSource } from '../metadata/reader.js';
import { serverUrl } from '../ops/welcome.js';
import { releasesOf } from '../pypi-json/routes.js';
import { html } from '../simple/render.js';
import { indexUrls } from './install.js';
import { Lru } from './lru.js';
import { ProjectIndex } from './project-index.js';
import { ReleaseDetailsCache } from './release.js';
import { PAGE_SIZE, SEARCH_LIMIT, renderHome, renderSearch } from './render-home.js';
import { notFoundPage, type PageContext } from './render-layout.js';
import { renderPackagesIndex } from './render-packages.js';
import { releaseRow, renderProject } from './render-project.js';

export interface UiDeps {
  catalog: CatalogView;
  indexer: IndexService;
  metadata: MetadataSource<DistFile>;
}

export interface UiHandlers {
  /** GET /packages/: served with --no-ui too. */
  packagesIndex: RequestHandler;
  /** The pages; null with --no-ui. */
  pages: { css: RequestHandler; js: RequestHandler; home: RequestHandler; search: RequestHandler; project: RequestHandler } | null;
}

/** The UI pages' CSP: only our own stylesheet and script, README images from http(s), forms to us. */
export const UI_CSP =
  "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' https: http:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const MAX_QUERY = 200;

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
  version: string;
}

function loadAsset(file: string, type: string): Asset {
  const body = readFileSync(new URL(`../../../lib/ui/static/${file}`, import.meta.url));
  const digest = createHash('sha256').update(body).digest('hex');
  return { body, type, etag: `"${digest.slice(0, 32)}"`, version: digest.slice(0, 12) };
}

function sendHtml(res: Response, body: string | Buffer, status = 200, code?: ErrorCode, detail?: string): void {
  res.statusCode = status;
  if (code) res.statusMessage = toReasonPhrase(httpError(code, detail).message);
  res.setHeader('Content-Security-Policy', UI_CSP);
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-cache');
  res.setHeader('Content-Length', typeof body === 'string' ? Buffer.byteLength(body) : body.length);
  res.end(body);
}

function queryString(req: Request, key: string): string {
  const v = req.query[key];
  const s = typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : '';
  return s.slice(0, MAX_QUERY);
}

export function uiRoutes(config: Config, deps: UiDeps): UiHandlers {
  let changes = 0;
  deps.catalog.onChange(() => changes++);

  // pypiserver's /packages/ page: rebuilt only when the catalog changed.
  let packagesPage: { serial: number; body: Buffer } | null = null;
  const packagesIndex = (_req: Request, res: Response): void => {
    if (!packagesPage || packagesPage.serial !== changes) {
      const files: DistFile[] = [];
      for (const p of deps.catalog.projects()) for (const f of p.files.values()) files.push(f);
      files.sort((a, b) => (a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : a.relPath < b.relPath ? -1 : 1));
      packagesPage = { serial: changes, body: renderPackagesIndex(files) };
    }
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('Content-Length', packagesPage.body.length);
    res.end(packagesPage.body);
  };

  if (!config.ui) return { packagesIndex, pages: null };

  // Built on the first visit to the home page or search: a server nobody browses pays nothing
  // (the summaries are read from every project's latest release in the background).
  let index: ProjectIndex | null = null;
  const projects = (): ProjectIndex => (index ??= new ProjectIndex(deps.catalog));
  const releases = new ReleaseDetailsCache({ indexer: deps.indexer, metadata: deps.metadata });
  // Rendered project pages, valid while their project is the same object at the same generation
  // (every change to a project's files, hashes, metadata or yanks bumps it).
  const pageCache = new Lru<{ project: Project; generation: number; body: Buffer }>(32 * 1024 * 1024, 4000);

  const css = loadAsset('ui.css', 'text/css; charset=utf-8');
  const js = loadAsset('ui.js', 'text/javascript; charset=utf-8');
  const ctx: PageContext = {
    basePath: config.basePath,
    cssHref: `${config.basePath}/static/ui.css?v=${css.version}`,
    jsHref: `${config.basePath}/static/ui.js?v=${js.version}`,
  };
  const urlsFor = (req: Request) => indexUrls(serverUrl(req, config), config.fallbackUrl !== null || config.upstream !== null);

  const serveAsset = (asset: Asset) => (req: Request, res: Response): void => {
    res.setHeader('Content-Type', asset.type);
    res.setHeader('ETag', asset.etag);
    res.setHeader('Cache-Control', queryString(req, 'v') === asset.version ? 'public, max-age=31536000, immutable' : 'no-cache');
    if (etagMatches(req.headers['if-none-match'], asset.etag)) {
      res.statusCode = 304;
      res.end();
      return;
    }
    res.setHeader('Content-Length', asset.body.length);
    res.end(asset.body);
  };

  const home = async (req: Request, res: Response) => {
    const index = projects();
    const all = index.recent();
    const pages = Math.max(1, Math.ceil(all.length / PAGE_SIZE));
    const asked = Number.parseInt(queryString(req, 'page') || '1', 10);
    const page = Number.isFinite(asked) ? Math.min(Math.max(1, asked), pages) : 1;
    const entries = all.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE);
    await index.prioritize(entries);
    const body = renderHome(ctx, {
      entries,
      totalProjects: all.length,
      totalFiles: deps.catalog.size.files,
      page,
      pages,
      urls: urlsFor(req),
    });
    sendHtml(res, body);
  };
  const search = async (req: Request, res: Response) => {
    const query = queryString(req, 'q').trim();
    const index = projects();
    const found = index.search(query, SEARCH_LIMIT);
    await index.prioritize(found.entries);
    sendHtml(res, renderSearch(ctx, { query, total: found.total, entries: found.entries }));
  };

  // /project/<name>[/<version>][/]; the route table matches without decoding, this decodes.
  const project = async (req: Request, res: Response) => {
    const m = /^\/project\/([^/]+)(?:\/([^/]+))?(\/?)$/.exec(req.path)!;
    const decoded = decodeNameVersion(m[1], m[2]);
    if (!decoded) return sendHtml(res, notFoundPage(ctx, 'Project not found', html`That address does not name a project.`, ''), 404, 'PROJECT_NOT_FOUND');
    const { rawName, rawVersion } = decoded;
    const name = normalizeName(rawName);
    const canonical = (version?: string) => `/project/${encodeURIComponent(name)}/${version === undefined ? '' : `${encodeURIComponent(version)}/`}`;
    if (name !== rawName || m[3] !== '/') return redirect(res, 301, location(config, canonical(rawVersion), searchOf(req.url)));
    const project = deps.catalog.project(name);
    if (!project) {
      const message = html`There is no project named “${rawName}” on this index. Names are matched after normalization (case, <code>-</code>, <code>_</code> and <code>.</code> do not matter).`;
      return sendHtml(res, notFoundPage(ctx, 'Project not found', message, rawName), 404, 'PROJECT_NOT_FOUND', rawName);
    }
    const urls = urlsFor(req);
    const pageKey = `${name}\0${rawVersion ?? ''}\0${urls.server}`;
    const cached = pageCache.get(pageKey);
    if (cached && cached.project === project && cached.generation === project.generation) return sendHtml(res, cached.body);
    await deps.indexer.ensureHashed(project);
    const generation = project.generation;
    const files = deps.catalog.filesOf(project);
    const { versions, releaseOf, latest, find } = releasesOf(files, deps.catalog.versionsOf(project));
    const byRelease = new Map<string, DistFile[]>();
    for (const f of files) {
      const r = releaseOf(f.version);
      const group = byRelease.get(r);
      if (group) group.push(f);
      else byRelease.set(r, [f]);
    }
    let version = latest;
    if (rawVersion !== undefined) {
      const found = find(rawVersion);
      if (!found) {
        const message = html`${project.displayName} has no release ${rawVersion}. See the <a href="${ctx.basePath}${canonical()}#history">release history</a>.`;
        return sendHtml(res, notFoundPage(ctx, 'Version not found', message, ''), 404, 'NOT_FOUND', `${project.displayName} has no version ${rawVersion}`);
      }
      if (found !== rawVersion) return redirect(res, 301, location(config, canonical(found)));
      version = found;
    }
    const releaseFiles = byRelease.get(version) ?? [];
    const details = await releases.get(project.displayName, version, releaseFiles);
    const body = Buffer.from(renderProject(ctx, {
      name,
      displayName: project.displayName,
      version,
      latest,
      pinned: rawVersion !== undefined,
      details,
      releases: [...versions].reverse().map((v) => releaseRow(v, byRelease.get(v) ?? [])),
      files: releaseFiles,
      urls,
    }));
    if (deps.catalog.project(name) === project && project.generation === generation) pageCache.set(pageKey, { project, generation, body }, body.length);
    sendHtml(res, body);
  };

  return { packagesIndex, pages: { css: serveAsset(css), js: serveAsset(js), home, search, project } };
}
