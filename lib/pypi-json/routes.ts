// The Warehouse-compatible JSON API: GET /pypi/<project>/json and /pypi/<project>/<version>/json,
// in the shape PyPI serves, for pip-audit, renovate, poetry and friends.

import type { NextFunction, Request, Response } from 'express';
import type { Config } from '../core/config.js';
import type { CatalogView, DistFile } from '../catalog/catalog.js';
import type { IndexService } from '../catalog/indexer.js';
import { normalizeName } from '../core/names.js';
import { compareVersions, isPrerelease, normalizeVersion, versionsEqual } from '../catalog/version.js';
import { httpError } from '../core/errors.js';
import { decodeNameVersion, location, redirect, searchOf, type UrlBase } from '../http/respond.js';
import type { MetadataSource } from '../metadata/reader.js';
import { serverUrl } from '../ops/welcome.js';
import { buildProjectJson, buildReleaseJson } from './build.js';

export interface PypiJsonDeps {
  catalog: CatalogView;
  indexer: IndexService;
  metadata: MetadataSource<DistFile>;
  base: UrlBase;
  config: Config;
}

/** Express handler for GET/HEAD /pypi/<project>[/<version>]/json[/] (see lib/routes.ts). */
export function pypiJsonRoutes(deps: PypiJsonDeps) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const m = /^\/pypi\/([^/]+)(?:\/([^/]+))?\/json\/?$/.exec(req.path);
    if (!m) return next();
    const decoded = decodeNameVersion(m[1], m[2]);
    if (!decoded) throw httpError('PROJECT_NOT_FOUND');
    const { rawName, rawVersion } = decoded;
    const name = normalizeName(rawName);
    if (name !== rawName) {
      const tail = rawVersion === undefined ? 'json' : `${encodeURIComponent(rawVersion)}/json`;
      return redirect(res, 301, location(deps.base, `/pypi/${name}/${tail}`, searchOf(req.url)));
    }
    const project = deps.catalog.project(name);
    if (!project) throw httpError('PROJECT_NOT_FOUND');
    await deps.indexer.ensureHashed(project);
    const files = deps.catalog.filesOf(project);
    const { versions, releaseOf, latest, find } = releasesOf(files, deps.catalog.versionsOf(project));
    const ctx = { files, versions, releaseOf, baseUrl: serverUrl(req, deps.config), indexer: deps.indexer, metadata: deps.metadata, projectName: project.displayName };
    let body: unknown;
    if (rawVersion === undefined) {
      body = await buildProjectJson(ctx, latest);
    } else {
      const version = find(rawVersion);
      if (!version) throw httpError('NOT_FOUND', `${project.displayName} has no version ${rawVersion}`);
      body = await buildReleaseJson(ctx, version);
    }
    const text = JSON.stringify(body);
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Cache-Control', 'max-age=0, must-revalidate');
    res.setHeader('Content-Length', Buffer.byteLength(text));
    res.end(req.method === 'HEAD' ? undefined : text);
  };
}

/**
 * One release per version: PEP 440-equal spellings found in file names (1.0 / 1.0.0, 2.0rc1 /
 * 2.0-RC1) are one release, named by the canonical spelling when a file uses it, else by the
 * first. `sorted` is in PEP 440 order, so equal versions are adjacent.
 */
function groupReleases(sorted: string[]): { versions: string[]; releaseOf: (version: string) => string } {
  const key = new Map<string, string>();
  const versions: string[] = [];
  let group: string[] = [];
  const flush = (): void => {
    if (group.length === 0) return;
    const name = group.find((v) => normalizeVersion(v) === v) ?? group[0];
    versions.push(name);
    for (const v of group) key.set(v, name);
    group = [];
  };
  for (const v of sorted) {
    if (group.length > 0 && !versionsEqual(group[0], v)) flush();
    group.push(v);
  }
  flush();
  return { versions, releaseOf: (v) => key.get(v) ?? v };
}

export interface Releases {
  /** One per release (see groupReleases), in PEP 440 order. */
  versions: string[];
  releaseOf: (version: string) => string;
  /** PyPI's "latest" (see pickLatest). */
  latest: string;
  /** The release a typed version names: that exact spelling, else a PEP 440-equal one. */
  find: (typed: string) => string | undefined;
}

/** A project's releases from its files and their versions in PEP 440 order (Catalog.versionsOf). */
export function releasesOf(files: readonly DistFile[], sortedVersions: string[]): Releases {
  const { versions, releaseOf } = groupReleases(sortedVersions);
  const latest = pickLatest(versions, files.filter((f) => !f.yank).map((f) => releaseOf(f.version)));
  const find = (typed: string): string | undefined => versions.find((v) => v === typed) ?? versions.find((v) => versionsEqual(v, typed));
  return { versions, releaseOf, latest, find };
}

/** PyPI's "latest": the newest stable, non-yanked version; else the newest non-yanked; else the newest. */
function pickLatest(versions: string[], unyanked: string[]): string {
  const live = new Set(unyanked);
  const sorted = [...versions].sort(compareVersions).reverse();
  return sorted.find((v) => live.has(v) && !isPrerelease(v)) ?? sorted.find((v) => live.has(v)) ?? sorted[0];
}
