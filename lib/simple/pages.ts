// Rendered Simple API pages, cached per project and representation together with their
// ETag and a gzip copy. A page is rendered once after each change to its project, so serving
// it costs a map lookup; a change to one project never invalidates another's pages. The cache
// is bounded by bytes (default 48 MB; at 100,000 files every page of both formats would take
// ~80 MB): past the budget the least recently used pages are dropped (second chance: a page
// served since the last sweep stays) and rendered again on their next request, to the same
// bytes and so the same ETag. Each format has its own chance: a project whose JSON page pip
// keeps asking for does not keep its HTML page cached too, and the reverse.

import { RenderedPage } from '../http/rendered-page.js';
import { hasDigest, versionsIn, type CatalogView } from '../catalog/catalog.js';
import type { Indexer } from '../catalog/indexer.js';
import { compareVersions } from '../catalog/version.js';
import { listLocal, type ProjectSource, type SourceListing } from './listing.js';
import { renderIndexHtml, renderIndexJson, renderProjectHtml, renderProjectJson, type IndexEntry } from './render.js';

export type PageFormat = 'html' | 'json';

/** The Simple API pages as the routes and the fast path read them (PageCache is the implementation). */
export interface ProjectPages {
  /** A project's page, or null if there is no such project (waits for what the page needs). */
  project(name: string, format: PageFormat): Promise<RenderedPage | null>;
  /** The page if it can be served right now (null: no such project; undefined: call project()). */
  cached(name: string, format: PageFormat): RenderedPage | null | undefined;
  /** The project list (/simple/). */
  root(format: PageFormat): RenderedPage;
}

/** One cached page of a project. */
interface CachedPage {
  page: RenderedPage;
  /** Bytes it holds (body, an estimate of its headers, and its gzip copy once made). */
  bytes: number;
  /** Served since the last eviction sweep passed it. */
  used: boolean;
}

interface ProjectEntry {
  generation: number;
  html?: CachedPage;
  json?: CachedPage;
}

const FORMATS: readonly PageFormat[] = ['html', 'json'];
const entryBytes = (e: ProjectEntry): number => (e.html?.bytes ?? 0) + (e.json?.bytes ?? 0);

/** What a cached page costs when rendered: its body and its headers (its gzip copy is counted once made). */
const pageCost = (page: RenderedPage): number => page.body.length + 512;

export const DEFAULT_PAGE_BUDGET = 48 * 1024 * 1024;

export class PageCache implements ProjectPages {
  private readonly projectPages = new Map<string, ProjectEntry>();
  /** Bytes held by projectPages. */
  private pageBytes = 0;
  private index: { generation: number; html?: RenderedPage; json?: RenderedPage; entries?: IndexEntry[] } | null = null;
  /** Pages of projects listed by the source, per listing (a refreshed listing is a new object). */
  private readonly sourcePages = new WeakMap<SourceListing, { html?: RenderedPage; json?: RenderedPage }>();
  /** Pages of --upstream-merge projects: local files plus the source's other files. */
  private readonly mergedPages = new Map<string, { generation: number; listing: SourceListing; html?: RenderedPage; json?: RenderedPage }>();

  /**
   * `source` (the upstream index) is asked only for names the catalog does not have, except the
   * names in `merge`, whose pages list the catalog's files and the source's other files.
   */
  constructor(
    private readonly catalog: CatalogView,
    private readonly indexer: Indexer,
    private readonly source: ProjectSource | null = null,
    private readonly merge: ReadonlySet<string> = new Set(),
    private readonly budget = DEFAULT_PAGE_BUDGET,
  ) {
    catalog.onChange((project) => this.dropPages(project));
  }

  /** Bytes of rendered project pages held now (bounded by the budget). */
  get cachedBytes(): number {
    return this.pageBytes;
  }

  private dropPages(project: string): void {
    const e = this.projectPages.get(project);
    if (!e) return;
    this.pageBytes -= entryBytes(e);
    this.projectPages.delete(project);
  }

  /**
   * Keep the rendered pages within the budget: drop the least recently used (second chance,
   * per format: a project's pages not served since the last sweep go, the others stay).
   */
  private evict(keep: string): void {
    let passes = this.projectPages.size * 2;
    while (this.pageBytes > this.budget && passes-- > 0) {
      const first = this.projectPages.entries().next();
      if (first.done) return;
      const [name, e] = first.value;
      this.projectPages.delete(name);
      let kept = false;
      for (const format of FORMATS) {
        const c = e[format];
        if (!c) continue;
        if (c.used || name === keep) {
          c.used = false;
          kept = true;
        } else {
          this.pageBytes -= c.bytes;
          e[format] = undefined;
        }
      }
      if (kept) this.projectPages.set(name, e);
    }
  }

  /** A project's page, or null if there is no such project. Waits for the project's own hashes only. */
  async project(name: string, format: PageFormat): Promise<RenderedPage | null> {
    const cached = this.cached(name, format);
    if (cached !== undefined) return cached;
    const p = this.catalog.project(name);
    if (!p) return this.source ? (this.sourcePage(await this.source.get(name), format) ?? null) : null;
    await this.indexer.ensureHashed(p);
    if (this.source && this.merge.has(name)) {
      // Local files are listed even when the source cannot be reached.
      const listing = await this.source.get(name).catch(() => null);
      if (listing) return this.renderMerged(name, format, listing);
    }
    return this.render(name, format);
  }

  /** The page if it can be served right now without waiting (undefined: must call project()). */
  cached(name: string, format: PageFormat): RenderedPage | null | undefined {
    const p = this.catalog.project(name);
    if (!p) return this.source ? this.sourcePage(this.source.peek(name), format) : null;
    if (this.source) {
      if (this.merge.has(name)) {
        const m = this.mergedPages.get(name);
        const listing = this.source.peek(name);
        return m && m.generation === p.generation && m.listing === listing ? m[format] : undefined;
      }
      // A private name: never listed from the source, which may check whether it has it too.
      this.source.shadowed(name);
    }
    const entry = this.projectPages.get(name);
    if (entry && entry.generation === p.generation) {
      const c = entry[format];
      if (!c) return undefined;
      c.used = true;
      return c.page;
    }
    return undefined;
  }

  private render(name: string, format: PageFormat): RenderedPage | null {
    const p = this.catalog.project(name);
    if (!p) return null;
    let entry = this.projectPages.get(name);
    if (!entry || entry.generation !== p.generation) {
      this.dropPages(name);
      entry = { generation: p.generation };
      this.projectPages.set(name, entry);
    }
    const existing = entry[format];
    if (existing) return existing.page;
    // A file is listed only with its digest: one still being hashed (it appeared while this page
    // waited) shows up on the next render, which its digest triggers. Such a page is not cached.
    const all = this.catalog.filesOf(p);
    const files = all.filter(hasDigest);
    const data = { name: p.name, displayName: p.displayName, files: files.map(listLocal), versions: versionsIn(files) };
    const lastModified = new Date(p.lastModifiedMs || Date.now()).toUTCString();
    const page = new RenderedPage(format === 'json' ? renderProjectJson(data) : renderProjectHtml(data), lastModified);
    if (files.length === all.length) {
      const held: CachedPage = { page, bytes: pageCost(page), used: false };
      entry[format] = held;
      this.pageBytes += held.bytes;
      const owner = entry;
      // Most clients (pip) never ask for gzip: its copy counts only once a client does.
      page.onCompressed = (gz) => {
        if (this.projectPages.get(name) !== owner || owner[format] !== held) return;
        held.bytes += gz;
        this.pageBytes += gz;
        this.evict(name);
      };
      this.evict(name);
    }
    return page;
  }

  private sourcePage(listing: SourceListing | null | undefined, format: PageFormat): RenderedPage | null | undefined {
    if (!listing) return listing;
    let entry = this.sourcePages.get(listing);
    if (!entry) this.sourcePages.set(listing, (entry = {}));
    return (entry[format] ??= new RenderedPage(format === 'json' ? renderProjectJson(listing) : renderProjectHtml(listing), listing.lastModified));
  }

  /** A merged page: the local files, then the source's files of other names (local wins). */
  private renderMerged(name: string, format: PageFormat, listing: SourceListing): RenderedPage | null {
    const p = this.catalog.project(name);
    if (!p) return null;
    let entry = this.mergedPages.get(name);
    if (!entry || entry.generation !== p.generation || entry.listing !== listing) {
      entry = { generation: p.generation, listing };
      this.mergedPages.set(name, entry);
    }
    const existing = entry[format];
    if (existing) return existing;
    const all = this.catalog.filesOf(p);
    const local = all.filter(hasDigest);
    const names = new Set(all.map((f) => f.filename));
    const files = [...local.map(listLocal), ...listing.files.filter((f) => !names.has(f.filename))];
    const versions = [...new Set([...versionsIn(local), ...listing.versions])].sort((a, b) => compareVersions(a, b) || (a < b ? -1 : a > b ? 1 : 0));
    const data = { name: p.name, displayName: p.displayName, files, versions };
    const lastModified = new Date(p.lastModifiedMs || Date.now()).toUTCString();
    const page = new RenderedPage(format === 'json' ? renderProjectJson(data) : renderProjectHtml(data), lastModified);
    if (local.length === all.length) entry[format] = page;
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
