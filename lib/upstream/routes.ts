// Downloads of proxied files: GET/HEAD /packages/~upstream/<project>/<filename>[.metadata].
// Only a file that the project's cached upstream page lists (with a sha256) can be fetched: the
// URL to fetch comes from that page, never from the request, so this is no open proxy. A name
// the package roots have is private: its upstream files are never fetched (unless merged).

import { promises as fsp } from 'node:fs';
import type { Request, Response } from 'express';
import type { CatalogView } from '../catalog/catalog.js';
import { httpError } from '../core/errors.js';
import { isNormalizedName } from '../core/names.js';
import { sendMetadata, serveDist } from '../files/routes.js';
import { isSafeFilename } from './parse.js';
import type { UpstreamService } from './upstream.js';

const METADATA_MAX = 16 * 1024 * 1024;

export interface UpstreamRouteDeps {
  upstream: UpstreamService;
  catalog: CatalogView;
  merge: ReadonlySet<string>;
}

function decode(seg: string): string | null {
  try {
    return decodeURIComponent(seg);
  } catch {
    return null;
  }
}

export function upstreamFileRoutes(deps: UpstreamRouteDeps) {
  const { pages, files } = deps.upstream;
  // Method, path prefix and access are the route table's (lib/routes.ts).
  return async (req: Request, res: Response): Promise<void> => {
    const m = /^\/packages\/~upstream\/([^/]+)\/([^/]+)$/.exec(req.path);
    const project = m && decode(m[1]);
    const filename = m && decode(m[2]);
    if (!project || !filename || !isNormalizedName(project) || !isSafeFilename(filename)) throw httpError('FILE_NOT_FOUND');
    // Private names win: the upstream's files of a local project are never fetched.
    if (deps.catalog.project(project) && !deps.merge.has(project)) throw httpError('FILE_NOT_FOUND');

    const file = await pages.file(project, filename);
    if (file) {
      const spec = { kind: 'file' as const, sha256: file.hashes.sha256, url: file.url, filename, size: file.size, maxBytes: Number.MAX_SAFE_INTEGER };
      let blob = await files.cached(spec.sha256);
      if (!blob) {
        // A plain GET that starts the download streams it; HEAD, ranges and concurrent
        // requests wait for the verified copy and are then served from the cache.
        if (req.method === 'GET' && !req.headers.range && !files.isDownloading(spec.sha256)) return files.fetch(spec, res);
        await files.fetch(spec, null);
        blob = await files.cached(spec.sha256);
        if (!blob) throw httpError('UPSTREAM_UNAVAILABLE', `${filename} could not be cached`);
      }
      return serveDist(req, res, { store: files.store, relPath: blob.key, filename, size: blob.size, mtimeMs: blob.mtimeMs, sha256: spec.sha256 });
    }

    const dist = filename.endsWith('.metadata') ? await pages.file(project, filename.slice(0, -'.metadata'.length)) : null;
    if (!dist?.coreMetadataSha256) throw httpError(filename.endsWith('.metadata') && dist ? 'METADATA_NOT_FOUND' : 'FILE_NOT_FOUND');
    req.routeName = 'upstream-metadata';
    const sha256 = dist.coreMetadataSha256;
    let blob = await files.cached(sha256);
    if (!blob) {
      await files.fetch({ kind: 'metadata', sha256, url: `${dist.url}.metadata`, filename, size: null, maxBytes: METADATA_MAX }, null);
      blob = await files.cached(sha256);
      if (!blob) throw httpError('UPSTREAM_UNAVAILABLE', `${filename} could not be cached`);
    }
    sendMetadata(req, res, sha256, await fsp.readFile(blob.path));
  };
}
