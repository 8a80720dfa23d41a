// Rendering of the Simple API pages (PEP 503 HTML, PEP 691 JSON, PEP 658/700/592 fields).
// Pure functions from catalog data to bytes; every URL is relative to the page, so a page's
// bytes do not depend on the host name or a reverse proxy's path prefix and can be cached.

import type { DistFile } from '../catalog/catalog.js';
import type { ListedFile } from './listing.js';

export const API_VERSION = '1.1';

export interface ProjectPageData {
  name: string;
  displayName: string;
  files: ListedFile[];
  versions: string[];
}

export interface IndexEntry {
  name: string;
  displayName: string;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** A tagged template that HTML-escapes every interpolated value (use `raw()` for trusted markup). */
class Raw {
  constructor(readonly html: string) {}
}
export function raw(html: string): Raw {
  return new Raw(html);
}
export function html(strings: TemplateStringsArray, ...values: (string | number | Raw | Raw[])[]): Raw {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v instanceof Raw) out += v.html;
    else if (Array.isArray(v)) out += v.map((r) => r.html).join('');
    else out += escapeHtml(String(v));
    out += strings[i + 1];
  }
  return new Raw(out);
}

/** URL-encode each segment of a relative path (keeps '/'). */
export function encodePath(relPath: string): string {
  return relPath.split('/').map(encodeURIComponent).join('/');
}

/** URL of a file relative to a project page at <base>/simple/<project>/. */
export function fileUrl(file: DistFile): string {
  return `../../packages/${encodePath(file.relPath)}`;
}

function head(title: string): Raw {
  return html`<!DOCTYPE html>
<html>
  <head>
    <meta charset="utf-8">
    <meta name="pypi:repository-version" content="${API_VERSION}">
    <title>${title}</title>
  </head>
  <body>
`;
}

const FOOT = raw(`  </body>
</html>
`);

export function renderProjectHtml(page: ProjectPageData): Buffer {
  const links = page.files.map((f) => {
    const digest = f.hashes.sha256 !== undefined ? ['sha256', f.hashes.sha256] : Object.entries(f.hashes)[0];
    const href = digest ? `${f.url}#${digest[0]}=${digest[1]}` : f.url;
    const attrs: Raw[] = [];
    const rp = f.requiresPython;
    if (rp) attrs.push(html` data-requires-python="${rp}"`);
    if (f.yanked !== null) attrs.push(html` data-yanked="${f.yanked}"`);
    if (f.coreMetadataSha256) {
      attrs.push(html` data-core-metadata="sha256=${f.coreMetadataSha256}" data-dist-info-metadata="sha256=${f.coreMetadataSha256}"`);
    }
    return html`    <a href="${href}"${attrs}>${f.filename}</a><br>
`;
  });
  const doc = html`${head(`Links for ${page.displayName}`)}    <h1>Links for ${page.displayName}</h1>
${links}${FOOT}`;
  return Buffer.from(doc.html);
}

interface JsonFile {
  filename: string;
  url: string;
  hashes: Record<string, string>;
  'requires-python'?: string;
  'core-metadata': { sha256: string } | false;
  yanked: boolean | string;
  /** Absent only for upstream files whose page did not give them. */
  size?: number;
  'upload-time'?: string;
}

export function projectJson(page: ProjectPageData): { meta: { 'api-version': string }; name: string; files: JsonFile[]; versions: string[] } {
  return {
    meta: { 'api-version': API_VERSION },
    name: page.name,
    files: page.files.map((f) => {
      const j: JsonFile = {
        filename: f.filename,
        url: f.url,
        hashes: f.hashes,
        'core-metadata': f.coreMetadataSha256 ? { sha256: f.coreMetadataSha256 } : false,
        yanked: f.yanked === null ? false : f.yanked || true,
      };
      if (f.size !== null) j.size = f.size;
      if (f.uploadTime !== null) j['upload-time'] = f.uploadTime;
      const rp = f.requiresPython;
      if (rp) j['requires-python'] = rp;
      return j;
    }),
    versions: page.versions,
  };
}

export function renderProjectJson(page: ProjectPageData): Buffer {
  return Buffer.from(JSON.stringify(projectJson(page)));
}

export function renderIndexHtml(projects: IndexEntry[]): Buffer {
  const links = projects.map((p) => html`    <a href="${encodeURIComponent(p.name)}/">${p.displayName}</a><br>
`);
  return Buffer.from(html`${head('Simple index')}${links}${FOOT}`.html);
}

export function renderIndexJson(projects: IndexEntry[]): Buffer {
  return Buffer.from(
    JSON.stringify({ meta: { 'api-version': API_VERSION }, projects: projects.map((p) => ({ name: p.displayName })) }),
  );
}
