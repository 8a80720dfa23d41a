// The UI's in-memory view of every project: latest version, last update, summary and keywords,
// kept up to date from the catalog's change events. The home page and search read only this
// (no directory scan, no disk access per request). Version facts come from the catalog at
// once; summary and keywords come from the latest release's core metadata, read in the
// background, one archive at a time, the first time a release is seen (and again only when
// that release's files change).

import type { CatalogView, DistFile, Project } from '../catalog/catalog.js';
import { openIndexed } from '../catalog/still-indexed.js';
import { normalizeName } from '../core/names.js';
import { extractMetadata } from '../metadata/extract.js';
import { archiveKindOf } from '../metadata/types.js';
import { parseMetadata } from '../metadata/parse.js';
import { releasesOf } from '../pypi-json/routes.js';

export interface ProjectEntry {
  name: string;
  displayName: string;
  /** PyPI's "latest": newest stable non-yanked release (see pickLatest). */
  latest: string;
  releases: number;
  files: number;
  /** Newest file mtime of the project. */
  updatedMs: number;
  summary: string | null;
  keywords: string | null;
  /** Lower-cased summary + keywords, for search. */
  text: string;
  /** Which file the summary was read from (path, size, mtime); null = none read yet. */
  metaKey: string | null;
}

export interface SearchResult {
  total: number;
  entries: ProjectEntry[];
}

/** The file's metadata, read through its store (null: its key leads to other bytes now). */
async function readMetadata(file: DistFile): Promise<Awaited<ReturnType<typeof extractMetadata>> | null> {
  const local = await openIndexed(file);
  if (!local) return null;
  try {
    return await extractMetadata(local.path, archiveKindOf(file.parsed));
  } finally {
    await local.release();
  }
}

const MAX_SUMMARY = 512;
const MAX_KEYWORDS = 512;

function fileKey(f: DistFile): string {
  return `${f.root}\0${f.relPath}\0${f.size}\0${f.mtimeMs}`;
}

/** The file whose metadata describes a release best: a wheel if one has metadata, else any. */
function metadataSource(files: DistFile[]): DistFile | null | undefined {
  let pending = false;
  for (const kind of ['wheel', 'sdist']) {
    for (const f of files) {
      if ((f.parsed.kind === 'wheel') !== (kind === 'wheel')) continue;
      if (f.metadata) return f;
      if (f.metadata === undefined) pending = true;
    }
  }
  return pending ? undefined : null;
}

export class ProjectIndex {
  private readonly entries = new Map<string, ProjectEntry>();
  private readonly dirty = new Set<string>();
  private byUpdate: ProjectEntry[] | null = null;
  /** Shorter names first, then alphabetical: the order of results within a search rank. */
  private byName: ProjectEntry[] | null = null;
  private readonly queue = new Map<string, DistFile>();
  /** The file whose summary is being read, per project. */
  private readonly reading = new Map<string, string>();
  /** The summary read in progress, per project. */
  private readonly inFlight = new Map<string, Promise<void>>();
  private loading = false;
  private timer: NodeJS.Timeout | null = null;
  private idleWaiters: (() => void)[] = [];
  private readonly unsubscribe: () => void;

  constructor(private readonly catalog: CatalogView) {
    for (const p of catalog.projects()) this.dirty.add(p.name);
    this.unsubscribe = catalog.onChange((name) => this.markDirty(name));
    this.schedule();
  }

  close(): void {
    this.unsubscribe();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue.clear();
  }

  private markDirty(name: string): void {
    this.dirty.add(name);
    this.schedule();
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.refresh();
    }, 50);
    this.timer.unref();
  }

  /** Bring the entries of changed projects up to date (memory only; summaries are queued). */
  refresh(): void {
    if (this.dirty.size === 0) return;
    for (const name of this.dirty) {
      const p = this.catalog.project(name);
      if (p) this.update(p);
      else {
        this.entries.delete(name);
        this.queue.delete(name);
      }
    }
    this.dirty.clear();
    this.byUpdate = null;
    this.byName = null;
    void this.drain();
  }

  private update(p: Project): void {
    const files = [...p.files.values()];
    const { versions, releaseOf, latest } = releasesOf(files, this.catalog.versionsOf(p));
    const old = this.entries.get(p.name);
    const entry: ProjectEntry = {
      name: p.name,
      displayName: p.displayName,
      latest,
      releases: versions.length,
      files: files.length,
      updatedMs: p.lastModifiedMs,
      summary: old?.summary ?? null,
      keywords: old?.keywords ?? null,
      text: old?.text ?? '',
      metaKey: old?.metaKey ?? null,
    };
    this.entries.set(p.name, entry);
    const source = metadataSource(files.filter((f) => releaseOf(f.version) === latest));
    if (source === null) {
      Object.assign(entry, { summary: null, keywords: null, text: '', metaKey: '' });
      this.queue.delete(p.name);
    } else if (source && fileKey(source) !== entry.metaKey) {
      this.queue.set(p.name, source);
    }
  }

  /**
   * Read now the summaries of these entries that are still waiting (the ones a page is about to
   * show: at most a page's worth, the first time they are shown), so that the first visitor
   * does not see a list without summaries while the background reader works through the rest.
   */
  async prioritize(entries: ProjectEntry[]): Promise<void> {
    const jobs: Promise<void>[] = [];
    for (const e of entries) {
      const file = this.queue.get(e.name);
      if (file) {
        this.queue.delete(e.name);
        jobs.push(this.load(e.name, file));
      } else {
        // The background reader may have taken this one a moment ago: wait for it too.
        const busy = this.inFlight.get(e.name);
        if (busy) jobs.push(busy);
      }
    }
    await Promise.all(jobs);
  }

  private load(name: string, file: DistFile): Promise<void> {
    const job = this.read(name, file).finally(() => {
      if (this.inFlight.get(name) === job) this.inFlight.delete(name);
    });
    this.inFlight.set(name, job);
    return job;
  }

  private async read(name: string, file: DistFile): Promise<void> {
    const key = fileKey(file);
    this.reading.set(name, key);
    const r = await readMetadata(file).catch(() => null);
    // A newer file of this project was read meanwhile (or is being read): that one wins.
    if (this.reading.get(name) !== key) return;
    this.reading.delete(name);
    const entry = this.entries.get(name);
    if (!entry) return;
    const md = r && r.ok ? parseMetadata(r.bytes) : null;
    entry.summary = md?.summary ? md.summary.slice(0, MAX_SUMMARY) : null;
    entry.keywords = md?.keywords ? md.keywords.slice(0, MAX_KEYWORDS) : null;
    entry.text = `${entry.summary ?? ''}\n${entry.keywords ?? ''}`.toLowerCase();
    entry.metaKey = key;
  }

  /** Read queued summaries one archive at a time. */
  private async drain(): Promise<void> {
    if (this.loading) return;
    this.loading = true;
    try {
      while (this.queue.size > 0) {
        const first = this.queue.entries().next();
        if (first.done) break;
        const [name, file] = first.value;
        this.queue.delete(name);
        await this.load(name, file);
      }
    } finally {
      this.loading = false;
    }
    if (this.dirty.size === 0 && this.queue.size === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Resolves once every change seen so far is reflected, summaries included (for tests). */
  whenIdle(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.refresh();
    if (!this.loading && this.queue.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  get size(): number {
    this.refresh();
    return this.entries.size;
  }

  get(name: string): ProjectEntry | undefined {
    this.refresh();
    return this.entries.get(name);
  }

  /** Every project, most recently updated first (then by name). */
  recent(): ProjectEntry[] {
    this.refresh();
    if (!this.byUpdate) {
      this.byUpdate = [...this.entries.values()].sort((a, b) => b.updatedMs - a.updatedMs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    }
    return this.byUpdate;
  }

  /**
   * Projects matching a query: the exact (normalized) name first, then names starting with it,
   * then names containing it, then projects whose summary or keywords contain every word.
   */
  search(query: string, limit: number): SearchResult {
    this.refresh();
    const q = query.trim().toLowerCase();
    if (!q) return { total: 0, entries: [] };
    const norm = normalizeName(q.replace(/\s+/g, '-'));
    const words = q.split(/\s+/).filter(Boolean);
    const wordNames = words.map((w) => normalizeName(w));
    if (!this.byName) {
      this.byName = [...this.entries.values()].sort((a, b) => a.name.length - b.name.length || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    }
    // One pass over the entries in result order, into one bucket per rank: no sort per query.
    const buckets: ProjectEntry[][] = [[], [], [], []];
    for (const e of this.byName) {
      if (e.name === norm) buckets[0].push(e);
      else if (e.name.startsWith(norm)) buckets[1].push(e);
      else if (e.name.includes(norm)) buckets[2].push(e);
      else {
        let all = true;
        for (let i = 0; i < words.length && all; i++) all = e.text.includes(words[i]) || e.name.includes(wordNames[i]);
        if (all) buckets[3].push(e);
      }
    }
    const total = buckets[0].length + buckets[1].length + buckets[2].length + buckets[3].length;
    const entries: ProjectEntry[] = [];
    for (const b of buckets) {
      if (entries.length >= limit) break;
      entries.push(...b.slice(0, limit - entries.length));
    }
    return { total, entries };
  }
}
