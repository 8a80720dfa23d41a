// The route table: every URL pypi-lite answers, the methods it takes there, the access it needs
// and the code that answers it, in one list (declareRoutes). createApp (lib/app.ts) mounts it on
// one express.Router: per entry a middleware naming the route (metrics), one access check built
// from the entry (AuthGuard.require), then the handler. A path of the table asked with a method
// no entry takes gets 405 with `Allow`; any other path falls through to the 404.
//
// Access (the rules are README "Access control"; -a decides what needs credentials):
//   open           nobody is asked
//   list           names and versions (Simple API, the flat /packages/ list, /metrics, /)
//   download       file contents and metadata (/packages/<file>, .metadata)
//   list+download  metadata that names versions too (the JSON API, the web UI's pages)
//   update         writes: with -P always a user; without -P refused unless `-a . -P .`
// In front of the table, requireWrites() asks any request that is not GET/HEAD for a user when
// there is a password file (the safety net: a write route cannot forget it), so an anonymous
// writer gets 401 before a 405 tells it anything.
//
// The one exception: cached Simple API pages, when `list` is open, are answered in front of
// Express by lib/http/fast-path.ts (same resolver, same headers; test/fast-path.test.ts pins
// that both answer byte for byte alike).

import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { Logger } from 'pino';
import type { CatalogView, DistFile } from './catalog/catalog.js';
import type { IndexService } from './catalog/indexer.js';
import type { MetadataSource } from './metadata/reader.js';
import type { ProjectPages } from './simple/pages.js';
import type { Uploader } from './upload/routes.js';
import type { MetricsService } from './ops/routes.js';
import { adminRoutes } from './admin/routes.js';
import type { AccessPolicy } from './auth/guard.js';
import type { AuthAction, Config } from './core/config.js';
import { httpError } from './core/errors.js';
import { fileRoutes } from './files/routes.js';
import { opsRoutes } from './ops/routes.js';
import { pypiJsonRoutes } from './pypi-json/routes.js';
import { bareProjectRedirect, simpleRoutes } from './simple/routes.js';
import { uiRoutes, type UiHandlers } from './ui/routes.js';
import { uploadRoutes } from './upload/routes.js';
import { upstreamFileRoutes } from './upstream/routes.js';
import type { UpstreamService } from './upstream/upstream.js';
import type { StoredTextFile } from './store/types.js';
import type { StoreHealth } from './store/s3-store.js';


/** The collaborators the routes are built from (interfaces: lib/server.ts picks the implementations). */
export interface AppDeps {
  catalog: CatalogView;
  indexer: IndexService;
  pages: ProjectPages;
  metadata: MetadataSource<DistFile>;
  auth: AccessPolicy;
  uploader: Uploader;
  log: Logger;
  metrics: MetricsService | null;
  /** Re-read the yank files now (after an HTTP yank). */
  reloadYanks: () => Promise<void>;
  /** Roots whose store keeps the yank list (S3: in the bucket), by root id. */
  yankLists?: ReadonlyMap<string, StoredTextFile>;
  /** The roots' ids for yanks (S3 roots by their store id), in order; default: --roots as given. */
  yankRoots?: string[];
  /** The upstream proxy (--upstream), if any. */
  upstream?: UpstreamService | null;
  /** The state of the object stores (S3 roots), for /health; null without any. */
  storeHealth?: (() => StoreHealth[]) | null;
}

export type Access = 'open' | 'list' | 'download' | 'list+download' | 'update';
/** GET also answers HEAD (Express does this). */
export type Method = 'GET' | 'POST';

export interface Route {
  methods: readonly Method[];
  /**
   * Express path syntax: `:name` is one segment, `*name` one or more, `{/}` an optional trailing
   * slash. Matched case-sensitively and without decoding: the handlers decode (a bad escape is
   * their 404, not a 400 from the router).
   */
  path: string;
  access: Access;
  /** The route's label in the metrics (a handler may refine it, e.g. `metadata`). */
  name: string;
  handler: RequestHandler | readonly RequestHandler[];
  /** Passes (next()) on what is not its own, and derives no 405: the bare /<project>/ redirect. */
  fallback?: true;
}

/** The code behind the routes, built once per app. */
export interface RouteHandlers {
  simple: RequestHandler;
  files: RequestHandler;
  pypiJson: RequestHandler;
  upload: RequestHandler;
  admin: { yank: RequestHandler[]; unyank: RequestHandler[] };
  ops: { health: RequestHandler; metrics: RequestHandler | null; welcome: RequestHandler };
  ui: UiHandlers;
  bareProject: RequestHandler;
  /** Proxied files (--upstream only). */
  upstreamFiles: RequestHandler | null;
}

export function routeHandlers(config: Config, deps: AppDeps): RouteHandlers {
  const base = { basePath: config.basePath, baseOrigin: config.baseOrigin };
  return {
    simple: simpleRoutes({ pages: deps.pages, base, fallbackUrl: config.fallbackUrl }),
    files: fileRoutes({ catalog: deps.catalog, metadata: deps.metadata, redirectSeconds: config.s3Redirect }),
    pypiJson: pypiJsonRoutes({ catalog: deps.catalog, indexer: deps.indexer, metadata: deps.metadata, base, config }),
    upload: uploadRoutes(config, { uploader: deps.uploader }),
    admin: adminRoutes({ catalog: deps.catalog, roots: deps.yankRoots ?? config.roots, reloadYanks: deps.reloadYanks, ...(deps.yankLists ? { yankLists: deps.yankLists } : {}) }),
    ops: opsRoutes(config, { catalog: deps.catalog, indexer: deps.indexer, metrics: deps.metrics, auth: deps.auth, upstream: deps.upstream, stores: deps.storeHealth ?? null }),
    ui: uiRoutes(config, { catalog: deps.catalog, indexer: deps.indexer, metadata: deps.metadata }),
    bareProject: bareProjectRedirect({ base, reserved: [config.healthEndpoint.slice(1)] }),
    upstreamFiles: deps.upstream ? upstreamFileRoutes({ upstream: deps.upstream, catalog: deps.catalog, merge: config.upstreamMerge }) : null,
  };
}

/** The table. Order matters only where paths overlap: the first entry that matches answers. */
export function declareRoutes(config: Config, h: RouteHandlers): Route[] {
  const ui = h.ui.pages;
  const metrics: Route[] = h.ops.metrics ? [{ methods: ['GET'], path: '/metrics', access: 'list', name: 'metrics', handler: h.ops.metrics }] : [];
  const home: Route[] = ui
    ? [
        { methods: ['GET'], path: '/', access: 'list+download', name: 'ui-home', handler: ui.home },
        { methods: ['GET'], path: '/index.html', access: 'list+download', name: 'ui-home', handler: ui.home },
        { methods: ['GET'], path: '/search', access: 'list+download', name: 'ui-search', handler: ui.search },
        { methods: ['GET'], path: '/project/:project{/}', access: 'list+download', name: 'ui-project', handler: ui.project },
        { methods: ['GET'], path: '/project/:project/:version{/}', access: 'list+download', name: 'ui-project', handler: ui.project },
        { methods: ['GET'], path: '/static/ui.css', access: 'open', name: 'ui-static', handler: ui.css },
        { methods: ['GET'], path: '/static/ui.js', access: 'open', name: 'ui-static', handler: ui.js },
      ]
    : [
        { methods: ['GET'], path: '/', access: 'list', name: 'welcome', handler: h.ops.welcome },
        { methods: ['GET'], path: '/index.html', access: 'list', name: 'welcome', handler: h.ops.welcome },
      ];
  // With --upstream: files listed on a proxied project's upstream page, fetched, verified, cached
  const upstreamFiles: Route[] = h.upstreamFiles
    ? [{ methods: ['GET'], path: '/packages/~upstream/*path', access: 'download', name: 'upstream', handler: h.upstreamFiles }]
    : [];
  return [
    // Operations (--health-endpoint moves /health; /metrics only without --no-metrics)
    { methods: ['GET'], path: config.healthEndpoint, access: 'open', name: 'health', handler: h.ops.health },
    ...metrics,
    // Simple API (PEP 503/691): /simple and /simple/<project> redirect to the slash-terminated,
    // normalized URL; a project the roots do not have is proxied with --upstream (lib/upstream/,
    // through the PageCache), else redirected to the fallback index (303), else 404
    { methods: ['GET'], path: '/simple', access: 'list', name: 'simple', handler: h.simple },
    { methods: ['GET'], path: '/simple/', access: 'list', name: 'simple', handler: h.simple },
    { methods: ['GET'], path: '/simple/:project', access: 'list', name: 'simple', handler: h.simple },
    { methods: ['GET'], path: '/simple/:project/', access: 'list', name: 'simple', handler: h.simple },
    // Files: the flat list (pypiserver's --find-links page, also with --no-ui), then each
    // distribution and its PEP 658 <file>.metadata
    { methods: ['GET'], path: '/packages/', access: 'list', name: 'packages-index', handler: h.ui.packagesIndex },
    ...upstreamFiles,
    { methods: ['GET'], path: '/packages/*path', access: 'download', name: 'packages', handler: h.files },
    // Warehouse JSON API
    { methods: ['GET'], path: '/pypi/:project/json{/}', access: 'list+download', name: 'pypi-json', handler: h.pypiJson },
    { methods: ['GET'], path: '/pypi/:project/:version/json{/}', access: 'list+download', name: 'pypi-json', handler: h.pypiJson },
    // Uploads and remove_pkg (the form's :action), at twine's URLs and pypiserver's
    { methods: ['POST'], path: '/', access: 'update', name: 'upload', handler: h.upload },
    { methods: ['POST'], path: '/legacy/', access: 'update', name: 'upload', handler: h.upload },
    { methods: ['POST'], path: '/legacy', access: 'update', name: 'upload', handler: h.upload },
    { methods: ['POST'], path: '/upload/', access: 'update', name: 'upload', handler: h.upload },
    { methods: ['POST'], path: '/upload', access: 'update', name: 'upload', handler: h.upload },
    // Yank / unyank (PEP 592)
    { methods: ['POST'], path: '/api/yank', access: 'update', name: 'admin', handler: h.admin.yank },
    { methods: ['POST'], path: '/api/unyank', access: 'update', name: 'admin', handler: h.admin.unyank },
    // The web UI (or, with --no-ui, the welcome page at /)
    ...home,
    // pypiserver's /<project>/ -> 301 /simple/<project>/ (valid names that are none of the
    // app's own first segments; /simple/ then applies its access rule): last
    { methods: ['GET'], path: '/:project{/}', access: 'open', name: 'bare-redirect', handler: h.bareProject, fallback: true },
  ];
}

const ACTIONS: Record<Access, readonly AuthAction[]> = {
  open: [],
  list: ['list'],
  download: ['download'],
  'list+download': ['list', 'download'],
  update: ['update'],
};

/** Does this access need credentials under the guard's configuration (-a, -P)? */
export function needsCredentials(auth: AccessPolicy, access: Access): boolean {
  return ACTIONS[access].some((a) => auth.needs(a));
}

/** May the fast path answer Simple API pages: do the table's `simple` routes need no credentials? */
export function simplePagesOpen(routes: readonly Route[], auth: AccessPolicy): boolean {
  const simple = routes.filter((r) => r.name === 'simple');
  return simple.length > 0 && !simple.some((r) => needsCredentials(auth, r.access));
}

/** The Express path syntax of the table as a RegExp without capture groups (nothing is decoded). */
export function compilePath(path: string): RegExp {
  let source = '';
  for (const part of path.split(/(\/:\w+|\/\*\w+|\{\/\})/)) {
    if (part.startsWith('/:')) source += '/[^/]+';
    else if (part.startsWith('/*')) source += '/.+';
    else if (part === '{/}') source += '/?';
    else source += part.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/** The `Allow` header for a set of methods (GET brings HEAD). */
export function allowHeader(methods: Iterable<Method>): string {
  const all = new Set<string>();
  for (const m of methods) {
    all.add(m);
    if (m === 'GET') all.add('HEAD');
  }
  return [...all].sort().join(', ');
}

function named(name: string): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    req.routeName = name;
    next();
  };
}

function methodNotAllowed(allow: string): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    next(httpError('METHOD_NOT_ALLOWED', `${req.method} ${req.path} (allowed: ${allow})`, { Allow: allow }));
  };
}

/** One express.Router answering the table, with the access of each entry applied in front of its handler. */
export function mountRoutes(routes: readonly Route[], auth: AccessPolicy): express.Router {
  const router = express.Router({ caseSensitive: true, strict: true });
  const methodsAt = new Map<string, Set<Method>>();
  for (const r of routes) {
    const actions = ACTIONS[r.access];
    const chain: RequestHandler[] = [named(r.name), ...(actions.length ? [auth.require(...actions)] : []), ...[r.handler].flat()];
    const route = router.route(compilePath(r.path));
    for (const m of r.methods) {
      if (m === 'GET') route.get(...chain);
      else route.post(...chain);
    }
    if (r.fallback) continue;
    const known = methodsAt.get(r.path) ?? new Set<Method>();
    for (const m of r.methods) known.add(m);
    methodsAt.set(r.path, known);
  }
  // After every route: a known path with a method nobody declared there.
  for (const [path, methods] of methodsAt) router.all(compilePath(path), methodNotAllowed(allowHeader(methods)));
  return router;
}
