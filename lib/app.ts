// The application factory: builds the Express app from a Config and its collaborators. It does
// not listen and reads no globals, so tests can build as many apps as they like.

import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { Catalog } from './catalog/catalog.js';
import type { Indexer } from './catalog/indexer.js';
import { httpError } from './errors.js';
import { fileRoutes } from './files/routes.js';
import { errorHandler } from './http/error-handler.js';
import { observeRequest, type RequestMetrics } from './http/observe.js';
import { securityHeaders } from './http/security.js';
import type { MetadataReader } from './metadata/reader.js';
import { simpleRoutes } from './simple/routes.js';
import type { PageCache } from './simple/pages.js';
import type { AuthGuard } from './auth/guard.js';
import { uploadRoutes, type Uploader } from './upload/routes.js';
import { opsRoutes, type Metrics } from './ops/routes.js';
import { pypiJsonRoutes } from './pypi-json/routes.js';
import { adminRoutes } from './admin/routes.js';
import { uiRoutes } from './ui/routes.js';
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
}

export function createApp(config: Config, deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', false);
  app.set('query parser', 'simple');

  const requestMetrics: RequestMetrics | null = deps.metrics;
  app.use((req: Request, res: Response, next: NextFunction) => {
    req.id = observeRequest(req, res, deps.log, requestMetrics);
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

  app.use(uiRoutes(config, deps));
  app.use(opsRoutes(config, { catalog: deps.catalog, indexer: deps.indexer, metrics: deps.metrics }));
  app.use('/simple', deps.auth.require('list'));
  app.use(simpleRoutes({ pages: deps.pages, base, fallbackUrl: config.fallbackUrl }));
  app.use('/packages', deps.auth.require('download'));
  app.use(fileRoutes({ catalog: deps.catalog, metadata: deps.metadata }));
  app.use('/pypi', deps.auth.require('list'));
  app.use(pypiJsonRoutes({ catalog: deps.catalog, indexer: deps.indexer, metadata: deps.metadata, base, config }));
  app.use(uploadRoutes(config, { auth: deps.auth, uploader: deps.uploader }));
  app.use(adminRoutes({ auth: deps.auth, catalog: deps.catalog, roots: config.roots, reloadYanks: deps.reloadYanks }));

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(httpError('NOT_FOUND', req.method === 'GET' || req.method === 'HEAD' ? undefined : `${req.method} ${req.path}`));
  });
  app.use(errorHandler(deps.log));
  return app;
}
