// The application factory: builds the Express app from a Config and its collaborators. It does
// not listen and reads no globals, so tests can build as many apps as they like.

import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { Catalog } from './catalog/catalog.js';
import type { Indexer } from './catalog/indexer.js';
import { httpError } from './errors.js';
import { fileRoutes } from './files/routes.js';
import { compileTrust } from './http/client-address.js';
import { errorHandler } from './http/error-handler.js';
import { observeRequest, type RequestMetrics } from './http/observe.js';
import { securityHeaders } from './http/security.js';
import type { MetadataReader } from './metadata/reader.js';
import { bareProjectRedirect, simpleRoutes } from './simple/routes.js';
import type { PageCache } from './simple/pages.js';
import type { AuthGuard } from './auth/guard.js';
import { uploadRoutes, type Uploader } from './upload/routes.js';
import { opsRoutes, type Metrics } from './ops/routes.js';
import { pypiJsonRoutes } from './pypi-json/routes.js';
import { adminRoutes } from './admin/routes.js';
import { uiRoutes } from './ui/routes.js';
import { upstreamFileRoutes } from './upstream/routes.js';
import type { Upstream } from './upstream/upstream.js';
import './http/types.js';

export interface AppDeps {
  catalog: Catalog;
  indexer: Indexer;
  pages: PageCache;
  metadata: MetadataReader;
  auth: AuthGuard;
  uploader: Uploader;
  log: Logger;
  metrics: Metrics | null;
  /** Re-read the yank files now (after an HTTP yank). */
  reloadYanks: () => Promise<void>;
  /** The upstream proxy (--upstream), if any. */
  upstream?: Upstream | null;
}

export function createApp(config: Config, deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // req.ip (the failure throttle's key) and the access log follow the same --trust-proxy rule.
  const trust = compileTrust(config.trustProxy);
  app.set('trust proxy', trust);
  app.set('query parser', 'simple');

  const requestMetrics: RequestMetrics | null = deps.metrics;
  app.use((req: Request, res: Response, next: NextFunction) => {
    req.id = observeRequest(req, res, deps.log, requestMetrics, trust);
    securityHeaders(res);
    next();
  });

  const base = { basePath: config.basePath, baseOrigin: config.baseOrigin };

  // A reverse proxy that forwards its path prefix unchanged still reaches our routes.
  if (config.basePath) {
    app.use((req: Request, _res: Response, next: NextFunction) => {
      if (req.url === config.basePath) req.url = '/';
      else if (req.url.startsWith(`${config.basePath}/`) || req.url.startsWith(`${config.basePath}?`)) req.url = req.url.slice(config.basePath.length) || '/';
      next();
    });
  }

  // Every write (any method but GET/HEAD, on any path) needs a user when there is a password
  // file, before any route sees it: new write routes cannot forget it.
  app.use(deps.auth.requireWrites());
  app.use(uiRoutes(config, deps));
  app.use(opsRoutes(config, { catalog: deps.catalog, indexer: deps.indexer, metrics: deps.metrics, auth: deps.auth, upstream: deps.upstream }));
  app.use('/simple', deps.auth.require('list'));
  app.use(simpleRoutes({ pages: deps.pages, base, fallbackUrl: config.fallbackUrl }));
  app.use('/packages', deps.auth.require('download'));
  if (deps.upstream) app.use(upstreamFileRoutes({ upstream: deps.upstream, catalog: deps.catalog, merge: config.upstreamMerge }));
  app.use(fileRoutes({ catalog: deps.catalog, metadata: deps.metadata }));
  // The JSON API shows metadata (requires_dist, emails, the description): it needs `download`,
  // and `list` too, as it also names the versions.
  app.use('/pypi', deps.auth.require('list', 'download'));
  app.use(pypiJsonRoutes({ catalog: deps.catalog, indexer: deps.indexer, metadata: deps.metadata, base, config }));
  app.use(uploadRoutes(config, { auth: deps.auth, uploader: deps.uploader }));
  app.use(adminRoutes({ auth: deps.auth, catalog: deps.catalog, roots: config.roots, reloadYanks: deps.reloadYanks }));
  // pypiserver's /<project>/ -> /simple/<project>/ (after every other route)
  app.use(bareProjectRedirect({ base, reserved: [config.healthEndpoint.slice(1)] }));

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(httpError('NOT_FOUND', req.method === 'GET' || req.method === 'HEAD' ? undefined : `${req.method} ${req.path}`));
  });
  app.use(errorHandler(deps.log));
  return app;
}
