// Upstream project pages: fetched on demand, kept in memory and on disk, served for --upstream-ttl
// seconds, then revalidated with the upstream's ETag / Last-Modified. When the upstream cannot be
// reached, a cached page is served as it is (and that is logged); a project never seen gets a
// quick 502/504. After a network failure the upstream counts as down for a few seconds, during
// which nothing waits for it.

import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { httpError } from '../core/errors.js';
import type { ListedFile, ProjectSource, SourceListing } from '../simple/listing.js';
import { fetchPage, UpstreamError, type UpstreamAuth } from './client.js';
import { PageParseError, parseHtmlPage, parseJsonPage, type UpstreamFile, type UpstreamPage } from './parse.js';
import type { UpstreamMetrics } from './metrics.js';

export interface UpstreamPagesOptions {
  /** The index URL, ending in '/' (without credentials: see splitCredentials). */
  url: string;
  /** Basic auth for the index's origin, from credentials in the configured URL. */
  auth?: UpstreamAuth | null;
  /** Cache directory (pages/ is created under it). */
  dir: string;
  ttlMs: number;
  timeoutMs: number;
  /** Largest page accepted. */
  maxPageBytes?: number;
  /** Pages kept in memory (least recently used go; the disk copy stays). */
  maxMemoryPages?: number;
}

interface Entry {
  fetchedAt: number;
  etag: string | null;
  lastModified: string | null;
  /** Files that can be proxied (listed with a sha256), by file name. */
  byName: Map<string, UpstreamFile>;
  listing: SourceListing;
}

interface DiskPage {
  v: 1;
  fetchedAt: number;
  etag: string | null;
  lastModified: string | null;
  files: UpstreamFile[];
  versions: string[];
}

const PAGE_MAX = 20 * 1024 * 1024;
const SHADOW_CHECKS = 4;

export type UpstreamState = { state: 'unknown' | 'up' } | { state: 'down'; error: string; since: string };

/** URL of an upstream file relative to our project page at /simple/<project>/. */
export function proxiedFileUrl(project: string, filename: string): string {
  return `../../packages/~upstream/${encodeURIComponent(project)}/${encodeURIComponent(filename)}`;
}

export class UpstreamPages implements ProjectSource {
  private readonly memory = new Map<string, Entry>();
  private readonly absent = new Map<string, number>();
  private readonly inflight = new Map<string, Promise<Entry | null>>();
  private readonly pagesDir: string;
  private downUntil = 0;
  /** Projects whose page timed out since the last answer from the upstream. */
  private readonly timedOut = new Set<string>();
  private status: UpstreamState = { state: 'unknown' };
  /** Local names: when each was last checked upstream, and which were found there. */
  private readonly shadowChecked = new Map<string, number>();
  private readonly shadowing = new Set<string>();
  private shadowRunning = 0;
  private readonly staleLogged = new Map<string, number>();

  constructor(
    private readonly opts: UpstreamPagesOptions,
    private readonly log: Logger,
    private readonly metrics: UpstreamMetrics | null,
  ) {
    // One directory per upstream URL: switching upstreams never serves the other one's pages.
    const key = createHash('sha256').update(opts.url).digest('hex').slice(0, 16);
    this.pagesDir = path.join(opts.dir, 'pages', key);
  }

  async init(): Promise<void> {
    await fsp.mkdir(this.pagesDir, { recursive: true });
  }

  get state(): UpstreamState {
    return this.status;
  }

  /** Local projects the upstream also has (their upstream files are never served). */
  get shadowedCount(): number {
    return this.shadowing.size;
  }

  private fresh(e: Entry): boolean {
    return Date.now() - e.fetchedAt < this.opts.ttlMs;
  }

  peek(name: string): SourceListing | null | undefined {
    const e = this.memory.get(name);
    if (e) return this.fresh(e) ? e.listing : undefined;
    const until = this.absent.get(name);
    if (until !== undefined && until > Date.now()) return null;
    return undefined;
  }

  async get(name: string): Promise<SourceListing | null> {
    const e = await this.entry(name, true);
    return e ? e.listing : null;
  }

  /**
   * A proxiable file of a project: from the page as cached (of any age: a listed file stays
   * fetchable while the upstream is down), fetching the page only when none is cached.
   */
  async file(name: string, filename: string): Promise<UpstreamFile | null> {
    const e = (this.memory.get(name) ?? (await this.loadDisk(name))) || (await this.entry(name, true));
    return e?.byName.get(filename) ?? null;
  }

  private entry(name: string, refresh: boolean): Promise<Entry | null> {
    const e = this.memory.get(name);
    if (e && (this.fresh(e) || !refresh)) return Promise.resolve(e);
    let p = this.inflight.get(name);
    if (!p) {
      p = this.refresh(name).finally(() => this.inflight.delete(name));
      this.inflight.set(name, p);
    }
    return p;
  }

  private async refresh(name: string): Promise<Entry | null> {
    const until = this.absent.get(name);
    if (until !== undefined && until > Date.now()) return null;
    const entry = this.memory.get(name) ?? (await this.loadDisk(name));
    if (entry && this.fresh(entry)) return entry;
    if (Date.now() < this.downUntil && this.status.state === 'down') {
      if (entry) return this.stale(name, entry, this.status.error);
      throw httpError('UPSTREAM_UNAVAILABLE', `${this.status.error} (retrying in a few seconds)`);
    }
    const url = `${this.opts.url}${name}/`;
    try {
      const ans = await fetchPage(url, {
        timeoutMs: this.opts.timeoutMs,
        maxBytes: this.opts.maxPageBytes ?? PAGE_MAX,
        auth: this.opts.auth,
        etag: entry?.etag,
        lastModified: entry?.lastModified,
      });
      this.up();
      if (ans.status === 'not-modified') {
        if (!entry) throw new UpstreamError('bad', `${url} answered 304 to an unconditional request`);
        entry.fetchedAt = Date.now();
        this.metrics?.page('not_modified');
        await this.saveDisk(name, entry);
        return entry;
      }
      if (ans.status === 'not-found') {
        this.metrics?.page('not_found');
        this.memory.delete(name);
        this.absent.set(name, Date.now() + this.opts.ttlMs);
        if (this.absent.size > 10_000) this.absent.delete(this.absent.keys().next().value!);
        await fsp.rm(this.diskPath(name), { force: true });
        return null;
      }
      let page: UpstreamPage;
      try {
        if (ans.contentType === 'application/vnd.pypi.simple.v1+json' || ans.contentType === 'application/json') page = parseJsonPage(ans.body.toString('utf8'), ans.url);
        else if (ans.contentType === 'text/html' || ans.contentType === 'application/vnd.pypi.simple.v1+html') page = await parseHtmlPage(ans.body.toString('utf8'), ans.url);
        else throw new UpstreamError('bad', `${url} answered with Content-Type "${ans.contentType}", not a Simple API page`);
      } catch (err) {
        if (err instanceof PageParseError) throw new UpstreamError('bad', `${url}: ${err.message}`);
        throw err;
      }
      const fresh = this.makeEntry(name, { v: 1, fetchedAt: Date.now(), etag: ans.etag, lastModified: ans.lastModified, files: page.files, versions: page.versions });
      this.metrics?.page('ok');
      this.remember(name, fresh);
      await this.saveDisk(name, fresh);
      return fresh;
    } catch (err) {
      if (!(err instanceof UpstreamError)) throw err;
      this.metrics?.page('error');
      // Unreachable: the whole upstream is down. A timeout may be one slow (or hostile) page: only
      // when a second project times out too before anything succeeds is the upstream taken as down
      // (so that a hung upstream costs each miss one timeout at most twice, not forever).
      if (err.kind === 'unavailable') this.down(err.message);
      else if (err.kind === 'timeout') {
        this.timedOut.add(name);
        if (this.timedOut.size >= 2) this.down(err.message);
      }
      if (entry) return this.stale(name, entry, err.message);
      if (err.kind === 'bad') this.log.warn({ project: name, err: err.message }, 'upstream page unusable');
      throw httpError(err.kind === 'timeout' ? 'UPSTREAM_TIMEOUT' : err.kind === 'bad' ? 'UPSTREAM_BAD_RESPONSE' : 'UPSTREAM_UNAVAILABLE', err.message);
    }
  }

  private stale(name: string, entry: Entry, why: string): Entry {
    // One log line per project and minute while the upstream stays unreachable.
    const logged = this.staleLogged.get(name);
    if (logged === undefined || Date.now() - logged > 60_000) {
      this.staleLogged.set(name, Date.now());
      if (this.staleLogged.size > 10_000) this.staleLogged.delete(this.staleLogged.keys().next().value!);
      this.log.warn({ project: name, age_s: Math.round((Date.now() - entry.fetchedAt) / 1000), err: why }, 'upstream unreachable: serving the cached page');
    }
    this.metrics?.stale();
    this.remember(name, entry);
    return entry;
  }

  private up(): void {
    this.timedOut.clear();
    if (this.status.state === 'down') this.log.info({ upstream: this.opts.url }, 'upstream reachable again');
    this.status = { state: 'up' };
    this.metrics?.setUp(true);
  }

  private down(error: string): void {
    if (this.status.state !== 'down') {
      this.log.warn({ upstream: this.opts.url, err: error }, 'upstream unreachable');
      this.status = { state: 'down', error, since: new Date().toISOString() };
    } else this.status = { ...this.status, error };
    this.downUntil = Date.now() + Math.min(5_000, this.opts.timeoutMs);
    this.metrics?.setUp(false);
  }

  private makeEntry(name: string, d: DiskPage): Entry {
    const byName = new Map<string, UpstreamFile>();
    const files: ListedFile[] = [];
    for (const f of d.files) {
      // Only files listed with a sha256 are offered: nothing unverifiable enters the cache.
      if (!f.hashes.sha256 || f.hashes.sha256.length !== 64) continue;
      byName.set(f.filename, f);
      files.push({ ...f, url: proxiedFileUrl(name, f.filename) });
    }
    const lastModified = new Date(d.lastModified && !Number.isNaN(Date.parse(d.lastModified)) ? Date.parse(d.lastModified) : d.fetchedAt).toUTCString();
    return { fetchedAt: d.fetchedAt, etag: d.etag, lastModified: d.lastModified, byName, listing: { name, displayName: name, files, versions: d.versions, lastModified } };
  }

  private remember(name: string, e: Entry): void {
    this.memory.delete(name);
    this.memory.set(name, e);
    this.absent.delete(name);
    if (this.memory.size > (this.opts.maxMemoryPages ?? 2_000)) this.memory.delete(this.memory.keys().next().value!);
  }

  private diskPath(name: string): string {
    return path.join(this.pagesDir, `${name}.json`);
  }

  private async loadDisk(name: string): Promise<Entry | null> {
    let text: string;
    try {
      text = await fsp.readFile(this.diskPath(name), 'utf8');
    } catch {
      return null;
    }
    try {
      const d = JSON.parse(text) as Partial<DiskPage>;
      if (d.v !== 1 || typeof d.fetchedAt !== 'number' || !Array.isArray(d.files) || !Array.isArray(d.versions)) return null;
      const e = this.makeEntry(name, d as DiskPage);
      this.remember(name, e);
      return e;
    } catch {
      return null;
    }
  }

  private async saveDisk(name: string, e: Entry): Promise<void> {
    const d: DiskPage = { v: 1, fetchedAt: e.fetchedAt, etag: e.etag, lastModified: e.lastModified, files: [...e.byName.values()], versions: e.listing.versions };
    const tmp = `${this.diskPath(name)}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await fsp.writeFile(tmp, JSON.stringify(d));
      await fsp.rename(tmp, this.diskPath(name));
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      this.log.warn({ project: name, err: (err as Error).message }, 'cannot write the upstream page cache');
    }
  }

  shadowed(name: string): void {
    const last = this.shadowChecked.get(name);
    const now = Date.now();
    if ((last !== undefined && now - last < Math.max(this.opts.ttlMs, 1_000)) || this.shadowRunning >= SHADOW_CHECKS) return;
    this.shadowChecked.set(name, now);
    this.shadowRunning++;
    void this.checkShadow(name).finally(() => this.shadowRunning--);
  }

  /** Does the upstream list files under a private name? Nothing of its answer is kept or served. */
  private async checkShadow(name: string): Promise<void> {
    try {
      const ans = await fetchPage(`${this.opts.url}${name}/`, { timeoutMs: this.opts.timeoutMs, maxBytes: this.opts.maxPageBytes ?? PAGE_MAX, auth: this.opts.auth });
      if (ans.status !== 'ok' || this.shadowing.has(name)) return;
      const page = ans.contentType.includes('json') ? parseJsonPage(ans.body.toString('utf8'), ans.url) : await parseHtmlPage(ans.body.toString('utf8'), ans.url);
      if (page.files.length === 0) return;
      this.shadowing.add(name);
      this.metrics?.shadowed();
      this.log.warn(
        { project: name, upstream: this.opts.url, upstream_versions: page.versions.slice(-5) },
        'the upstream index also has this private project name: only the local files are served (its upstream files never are); if that is not your own release, someone may be attempting dependency confusion',
      );
    } catch (err) {
      this.log.debug({ project: name, err: (err as Error).message }, 'upstream shadowing check failed');
    }
  }
}
