// The application factory: builds the Express app from a Config and its collaborators. It does
// not listen and reads no globals, so tests can build as many apps as they like.

import express, { type NextFunction, type Request, type Response } from 'express';
import type { Config } from './core/config.js';
import { httpError } from './core/errors.js';
import { compileTrust } from './http/client-address.js';
import { errorHandler } from './http/error-handler.js';
import { observeRequest, type RequestMetrics } from './http/observe.js';
import { securityHeaders } from './http/security.js';
import { declareRoutes, mountRoutes, routeHandlers, type AppDeps, type Route } from './routes.js';
import './http/types.js';

export type { AppDeps } from './routes.js';

const mounted = new WeakMap<express.Express, readonly Route[]>();

/** The route table an app was built with (lib/routes.ts), for the fast path's switch and the tests. */
export function routesOf(app: express.Express): readonly Route[] {
  return mounted.get(app) ?? [];
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
  // Every route, its methods and the access it needs: lib/routes.ts.
  const routes = declareRoutes(config, routeHandlers(config, deps));
  mounted.set(app, routes);
  app.use(mountRoutes(routes, deps.auth));

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(httpError('NOT_FOUND', req.method === 'GET' || req.method === 'HEAD' ? undefined : `${req.method} ${req.path}`));
  });
  app.use(errorHandler(deps.log));
  return app;
}
