// Builds the Warehouse JSON documents from the catalog and the distributions' core metadata.
// Field names and shapes follow what pypi.org serves at /pypi/<project>/json.

import type { DistFile } from '../catalog/catalog.js';
import type { IndexService } from '../catalog/indexer.js';
import { encodePath } from '../simple/render.js';
import type { MetadataSource } from '../metadata/reader.js';
import { parseMetadata, type CoreMetadata } from '../metadata/parse.js';

export interface JsonContext {
  files: DistFile[];
  /** One spelling per release (see groupReleases). */
  versions: string[];
  /** The release a file's version belongs to (PEP 440-equal spellings are one release). */
  releaseOf: (version: string) => string;
  baseUrl: string;
  projectName: string;
  indexer: IndexService;
  metadata: MetadataSource<DistFile>;
}

export interface JsonFileInfo {
  comment_text: string;
  digests: { md5: string | null; sha256: string | null; blake2b_256: string | null };
  downloads: number;
  filename: string;
  has_sig: boolean;
  md5_digest: string | null;
  packagetype: string;
  python_version: string;
  requires_python: string | null;
  size: number;
  upload_time: string;
  upload_time_iso_8601: string;
  url: string;
  yanked: boolean;
  yanked_reason: string | null;
}

async function fileInfo(ctx: JsonContext, f: DistFile): Promise<JsonFileInfo> {
  const extra = await ctx.indexer.extraDigests(f);
  const iso = new Date(f.mtimeMs).toISOString();
  return {
    comment_text: '',
    digests: { md5: extra?.md5 ?? null, sha256: f.sha256, blake2b_256: extra?.blake2b256 ?? null },
    downloads: -1,
    filename: f.filename,
    has_sig: false,
    md5_digest: extra?.md5 ?? null,
    packagetype: f.parsed.packagetype,
    python_version: f.parsed.pythonTag,
    requires_python: f.metadata?.requiresPython ?? null,
    size: f.size,
    upload_time: iso.slice(0, 19),
    upload_time_iso_8601: iso.replace(/\.(\d{3})Z$/, '.$1000Z'),
    url: `${ctx.baseUrl}/packages/${encodePath(f.relPath)}`,
    yanked: f.yank !== null,
    yanked_reason: f.yank ? f.yank.reason || null : null,
  };
}

/** The metadata of a release: from a wheel if there is one (richest), else the sdist. */
async function releaseMetadata(ctx: JsonContext, files: DistFile[]): Promise<CoreMetadata | null> {
  const ordered = [...files].sort((a, b) => (a.parsed.kind === 'wheel' ? 0 : 1) - (b.parsed.kind === 'wheel' ? 0 : 1));
  for (const f of ordered) {
    if (!f.metadata) continue;
    const bytes = await ctx.metadata.read(f);
    if (bytes) return parseMetadata(bytes);
  }
  return null;
}

const orNull = (s: string | null | undefined): string | null => (s === undefined || s === null || s === '' || s === 'UNKNOWN' ? null : s);

export async function info(ctx: JsonContext, version: string, files: DistFile[]) {
  const md = await releaseMetadata(ctx, files);
  const yanked = files.length > 0 && files.every((f) => f.yank !== null);
  const name = md?.name ?? ctx.projectName;
  const base = `${ctx.baseUrl}/project/${encodeURIComponent(name)}`;
  return {
    author: orNull(md?.author),
    author_email: orNull(md?.authorEmail),
    bugtrack_url: null,
    classifiers: md?.classifiers ?? [],
    description: md?.description ?? '',
    description_content_type: orNull(md?.descriptionContentType),
    docs_url: null,
    download_url: orNull(md?.downloadUrl),
    downloads: { last_day: -1, last_month: -1, last_week: -1 },
    dynamic: md && md.dynamic.length ? md.dynamic : null,
    home_page: orNull(md?.homePage),
    keywords: orNull(md?.keywords),
    license: orNull(md?.license),
    license_expression: orNull(md?.licenseExpression),
    maintainer: orNull(md?.maintainer),
    maintainer_email: orNull(md?.maintainerEmail),
    name,
    package_url: `${base}/`,
    platform: md && md.platforms.length ? md.platforms.join(', ') : null,
    project_url: `${base}/`,
    project_urls: md && Object.keys(md.projectUrls).length ? md.projectUrls : null,
    provides_extra: md && md.providesExtra.length ? md.providesExtra : null,
    release_url: `${base}/${encodeURIComponent(version)}/`,
    requires_dist: md && md.requiresDist.length ? md.requiresDist : null,
    requires_python: orNull(md?.requiresPython),
    summary: orNull(md?.summary),
    version,
    yanked,
    yanked_reason: yanked ? files.find((f) => f.yank?.reason)?.yank?.reason ?? null : null,
  };
}

function lastSerial(files: DistFile[]): number {
  return Math.floor(Math.max(0, ...files.map((f) => f.mtimeMs)) / 1000);
}

export async function buildProjectJson(ctx: JsonContext, latest: string) {
  const releases: Record<string, JsonFileInfo[]> = {};
  for (const v of ctx.versions) releases[v] = [];
  for (const f of ctx.files) releases[ctx.releaseOf(f.version)].push(await fileInfo(ctx, f));
  const latestFiles = ctx.files.filter((f) => ctx.releaseOf(f.version) === latest);
  return {
    info: await info(ctx, latest, latestFiles),
    last_serial: lastSerial(ctx.files),
    releases,
    urls: await Promise.all(latestFiles.map((f) => fileInfo(ctx, f))),
    vulnerabilities: [],
  };
}

export async function buildReleaseJson(ctx: JsonContext, version: string) {
  const files = ctx.files.filter((f) => ctx.releaseOf(f.version) === version);
  return {
    info: await info(ctx, version, files),
    last_serial: lastSerial(ctx.files),
    urls: await Promise.all(files.map((f) => fileInfo(ctx, f))),
    vulnerabilities: [],
  };
}
