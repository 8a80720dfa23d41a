// Rendered Simple API pages, cached per project and representation together with their
// ETag and a gzip copy. A page is rendered once after each change to its project, so serving
// it costs a map lookup; a change to one project never invalidates another's pages.

import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { versionsIn, type Catalog } from '../catalog/catalog.js';
import type { Indexer } from '../catalog/indexer.js';
import { renderIndexHtml, renderIndexJson, renderProjectHtml, renderProjectJson, type IndexEntry } from './render.js';

export type PageFormat = 'html' | 'json';

export class RenderedPage {
  private gz: Buffer | null = null;
  readonly etag: string;
  readonly gzipEtag: string;

  constructor(
    readonly body: Buffer,
    readonly lastModified: string,
  ) {
    const tag = createHash('sha1').update(body).digest('base64url');
    this.etag = `"${tag}"`;
    this.gzipEtag = `"${tag}-gz"`;
  }

  private readonly blocks = new Map<string, string[]>();

  /** The response headers for this page as a flat [name, value, ...] list, built once. */
  headerBlock(contentType: string, gzip: boolean): string[] {
    const key = `${gzip ? 'g' : 'i'}${contentType}`;
    let block = this.blocks.get(key);
    if (!block) {
      const body = gzip ? this.gzip : this.body;
      block = [
        'Content-Type', contentType,
        'Vary', 'Accept, Accept-Encoding',
        'ETag', gzip ? this.gzipEtag : this.etag,
        'Last-Modified', this.lastModified,
        'Cache-Control', 'max-age=0, must-revalidate',
        'Content-Length', String(body.length),
      ];
      if (gzip) block.push('Content-Encoding', 'gzip');
      this.blocks.set(key, block);
    }
    return block;
  }

  /** The gzip-compressed body, compressed on first use. */
  get gzip(): Buffer {
    if (!this.gz) this.gz = gzipSync(this.body, { level: 6 });
    return this.gz;
  }
}

export class PageCache {
  private readonly projectPages = new Map<string, { generation: number; html?: RenderedPage; json?: RenderedPage }>();
  private index: { generation: number; html?: RenderedPage; json?: RenderedPage; entries?: IndexEntry[] } | null = null;

  constructor(
    private readonly catalog: Catalog,
    private readonly indexer: Indexer,
  ) {
    catalog.onChange((project) => this.projectPages.delete(project));
  }

  /** A project's page, or null if there is no such project. Waits for the project's own hashes only. */
  async project(name: string, format: PageFormat): Promise<RenderedPage | null> {
    const cached = this.cached(name, format);
    if (cached !== undefined) return cached;
    const p = this.catalog.project(name);
    if (!p) return null;
    await this.indexer.ensureHashed(p);
    return this.render(name, format);
  }

  /** The page if it can be served right now without waiting (undefined: must call project()). */
  cached(name: string, format: PageFormat): RenderedPage | null | undefined {
    const p = this.catalog.project(name);
    if (!p) return null;
    const entry = this.projectPages.get(name);
    if (entry && entry.generation === p.generation) return entry[format];
    return undefined;
  }

  private render(name: string, format: PageFormat): RenderedPage | null {
    const p = this.catalog.project(name);
    if (!p) return null;
    let entry = this.projectPages.get(name);
    if (!entry || entry.generation !== p.generation) {
      entry = { generation: p.generation };
      this.projectPages.set(name, entry);
    }
    const existing = entry[format];
    if (existing) return existing;
    // A file is listed only with its digest: one still being hashed (it appeared while this page
    // waited) shows up on the next render, which its digest triggers. Such a page is not cached.
    const all = this.catalog.filesOf(p);
    const files = all.filter((f) => f.sha256 !== null);
    const data = { name: p.name, displayName: p.displayName, files, versions: versionsIn(files) };
    const lastModified = new Date(p.lastModifiedMs || Date.now()).toUTCString();
    const page = new RenderedPage(format === 'json' ? renderProjectJson(data) : renderProjectHtml(data), lastModified);
    if (files.length === all.length) entry[format] = page;
    return page;
  }

  /** The project list (/simple/). */
  root(format: PageFormat): RenderedPage {
    const gen = this.catalog.generation;
    if (!this.index || this.index.generation !== gen) this.index = { generation: gen };
    const existing = this.index[format];
    if (existing) return existing;
    if (!this.index.entries) {
      this.index.entries = [...this.catalog.projects()]
        .map((p) => ({ name: p.name, displayName: p.displayName }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    }
    const page = new RenderedPage(
      format === 'json' ? renderIndexJson(this.index.entries) : renderIndexHtml(this.index.entries),
      new Date().toUTCString(),
    );
    this.index[format] = page;
    return page;
  }
}
