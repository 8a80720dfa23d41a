// Placeholder: the Warehouse-compatible JSON API (/pypi/<project>/json) is built in lib/pypi-json/.
import type { NextFunction, Request, Response } from 'express';
import type { Catalog } from '../catalog/catalog.js';
import type { Indexer } from '../catalog/indexer.js';
import type { UrlBase } from '../http/respond.js';
import type { MetadataReader } from '../metadata/reader.js';

export interface PypiJsonDeps {
  catalog: Catalog;
  indexer: Indexer;
  metadata: MetadataReader;
  base: UrlBase;
  fallbackUrl: string | null;
}

export function pypiJsonRoutes(_deps: PypiJsonDeps) {
  return (_req: Request, _res: Response, next: NextFunction): void => next();
}
