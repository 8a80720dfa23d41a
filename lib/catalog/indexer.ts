// The policy that keeps the Catalog in step with the package stores (roots): what a listed
// file becomes in the index, what a hash result means, which name and yank state a file gets,
// and the persistent DigestCache that makes restarts instant. The jobs are its parts: scanning
// a store (scan.ts), applying a store's change feed (reconcile.ts), and scheduling the hashing
// (hash-scheduler.ts). Knows nothing of HTTP, nor of paths: files are (store, key).

import path from 'node:path';
import type { Logger } from 'pino';
import { columns, isSha256Hex } from './file-columns.js';
import { Catalog, IndexedFile, isDigested, metadataNameOf, type DistFile, type Project } from './catalog.js';
import { FileDigestCache, cacheFileFor, sameStamp, type DigestCache, type FileStamp, type FsStamp, type StringMaker } from './cache.js';
import { describeName, isDistFilename, type NameFacts } from './filename.js';
import { HashScheduler } from './hash-scheduler.js';
import type { HashResult } from './hash-pool.js';
import { normalizeName } from '../core/names.js';
import { StoreReconciler } from './reconcile.js';
import { scanStore, type IndexPolicy } from './scan.js';
import type { MetadataSummary } from '../metadata/types.js';
import type { PackageStore, StoreEntry, StoreWatch } from '../store/types.js';
import type { YankStore } from './yank.js';

export interface IndexerOptions {
  /** The package roots, in order: the first one serves a key held by several. */
  stores: PackageStore[];
  cacheDir: string | null;
  /** Where the journals of stores that are not local directories (S3) live when cacheDir is null. */
  remoteCacheDir?: string;
  workers: number;
  /** Follow the stores' change feeds (FsStore: fs.watch, inotify); false in --poll mode. */
  watch: boolean;
  /**
   * Full rescan of every root this often (0: never). The safety net for changes the watcher
   * cannot see (network file systems, inotify limits, queue overflows); the only source of
   * changes in --poll mode. Unchanged files cost one lstat each and are never rehashed.
   */
  rescanIntervalMs?: number;
}

/** The stamp of an indexed file (what the "unchanged" test compares); null: none known. */
function stampOf(f: DistFile): FileStamp | null {
  if (f.identity) return { size: f.size, mtimeMs: f.mtimeMs, ino: f.identity.ino, ctimeMs: f.identity.ctimeMs };
  return f.etag !== undefined ? { size: f.size, etag: f.etag } : null;
}

/** Is the file on disk (an lstat, or what a hash worker saw) still the one that was indexed? */
function unchanged(f: DistFile, st: FileStamp & { dev?: number }): boolean {
  const stamp = stampOf(f);
  if (stamp === null) return false;
  if (stamp.etag === undefined && f.identity?.dev !== st.dev) return false;
  return sameStamp(stamp, st);
}

/**
 * The cache stamp of a stored entry (null: the store gives neither a file identity nor an ETag).
 * `into`: an object to fill instead of a new one (for a stamp only read before the caller
 * returns: a warm start makes one per file, ~150 bytes of garbage each with its boxed numbers).
 */
function entryStamp(e: StoreEntry, into?: FsStamp & { dev?: number }): (FileStamp & { dev?: number }) | null {
  if (e.identity) {
    if (!into) return { size: e.size, mtimeMs: e.mtimeMs, dev: e.identity.dev, ino: e.identity.ino, ctimeMs: e.identity.ctimeMs };
    into.size = e.size;
    into.mtimeMs = e.mtimeMs;
    into.dev = e.identity.dev;
    into.ino = e.identity.ino;
    into.ctimeMs = e.identity.ctimeMs;
    return into;
  }
  return e.etag !== undefined ? { size: e.size, etag: e.etag } : null;
}

/** Are the bytes buf[start, end) the ASCII string s? (Never for a non-ASCII s: those are decoded.) */
function isAscii(buf: Buffer, start: number, end: number, s: string): boolean {
  if (s.length !== end - start) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== buf[start + i] || c > 0x7f) return false;
  }
  return true;
}

/** One copy of the short strings many files share (versions, Requires-Python, names). */
class Interner implements StringMaker {
  private readonly map = new Map<string, string>();
  /**
   * The last strings returned, tried before the map: a file's metadata Version is mostly its
   * file name's, interned just before, and neighbours share a Requires-Python. (A lookup in
   * the map costs a cache miss or two: ~1 s of a warm start at a million files.)
   */
  private readonly recent = ['', '', '', ''];
  private next = 0;
  /** Strings the next lookups are likely to be (see hint). */
  private hintA: string | null = null;
  private hintB: string | null = null;
  /**
   * Try these first until the next hint: a file's metadata Name is mostly its project's
   * display name, its Version the file name's (a comparison instead of a lookup in the map).
   */
  hint(a: string | null, b: string | null): void {
    this.hintA = a;
    this.hintB = b;
  }
  /**
   * A record's string: the hints and the last strings are compared with its bytes, so that
   * the usual one is found without making a string (a warm start reads three per file).
   */
  decode(buf: Buffer, start: number, end: number): string {
    if (this.hintA !== null && isAscii(buf, start, end, this.hintA)) return this.hintA;
    if (this.hintB !== null && isAscii(buf, start, end, this.hintB)) return this.hintB;
    const r = this.recent;
    for (let i = 0; i < 4; i++) if (isAscii(buf, start, end, r[i])) return r[i];
    return this.get(buf.toString('utf8', start, end));
  }
  get(s: string): string;
  get(s: string | null): string | null;
  get(s: string | null): string | null {
    if (s === null || s.length > 64) return s;
    if (s === this.hintA) return this.hintA;
    if (s === this.hintB) return this.hintB;
    const r = this.recent;
    for (let i = 0; i < 4; i++) if (r[i] === s) return r[i];
    let have = this.map.get(s);
    if (have === undefined) {
      if (this.map.size >= 100_000) this.map.clear();
      this.map.set(s, s);
      have = s;
    }
    r[this.next] = have;
    this.next = (this.next + 1) & 3;
    return have;
  }
}

/** What the application layer (routes, pages, health) uses of the indexer. */
export interface IndexService {
  readonly catalog: Catalog;
  /** True once the initial scan has listed every file (hashing may still run). */
  readonly isLoaded: boolean;
  /** Files still waiting for their digest or metadata. */
  readonly backlog: number;
  /** Listed files whose hashing failed for a reason other than the file itself. */
  readonly hashFailures: number;
  /** Hashing workers that died and were replaced since the start. */
  readonly workerRestarts: number;
  /** Make sure every file of the project is hashed (a page waits for this). */
  ensureHashed(project: Project): Promise<void>;
  /** md5/blake2b digests on demand (the JSON API). */
  extraDigests(file: DistFile): Promise<{ md5: string; blake2b256: string } | null>;
  /** Re-apply the yank state of a root (by its id) after its yank file changed. */
  refreshYanks(root: string): void;
  /** Resolves when every known file has its digest and metadata. */
  whenIdle(): Promise<void>;
}

/** What the uploader needs: put a stored file into the index, take a removed one out. */
export interface UploadIndex {
  readonly catalog: Catalog;
  addUploaded(store: PackageStore, entry: StoreEntry, digests: { sha256: string; md5?: string; blake2b256?: string }, metadata: MetadataSummary | null, metadataError?: string): DistFile | undefined;
  forget(file: DistFile): void;
}

export class Indexer implements IndexService, UploadIndex, IndexPolicy {
  readonly catalog: Catalog;
  private readonly hashes: HashScheduler;
  private readonly caches = new Map<string, DigestCache>();
  private readonly strings = new Interner();
  private readonly normalizedNames = new Map<string, string>();
  /** The stamp add() hands the digest cache (filled per file: the cache keeps none). */
  private readonly scratchStamp: FsStamp & { dev?: number } = { size: 0, mtimeMs: 0, dev: 0, ino: 0, ctimeMs: 0 };
  private readonly reconcilers = new Map<string, StoreReconciler>();
  private readonly watches: StoreWatch[] = [];
  private readonly warned = new Set<string>();
  private readonly log: Logger;
  private loaded = false;
  private unwatchedWarned = false;
  private rescanTimer: NodeJS.Timeout | null = null;
  private rescanning: Promise<void> | null = null;
  closed = false;
  yanks: YankStore | null = null;
  /** Files read for their digest and metadata (a hash result applied) since the start. */
  filesHashed = 0;

  constructor(
    private readonly opts: IndexerOptions,
    log: Logger,
    catalog = new Catalog(),
  ) {
    this.catalog = catalog;
    this.log = log;
    this.hashes = new HashScheduler(opts.workers, log, {
      isCurrent: (f) => this.catalog.fileAt(f.relPath) === f,
      apply: (f, r, appeared) => this.applyHash(f, r, appeared),
    });
    for (const store of opts.stores) this.reconcilers.set(store.id, new StoreReconciler(store, this, this.log));
  }

  get isLoaded(): boolean {
    return this.loaded;
  }

  get backlog(): number {
    return this.hashes.backlog;
  }

  /**
   * Listed files whose hashing failed for a reason other than the file itself (the worker
   * died twice). They stay in the index (downloadable, but not on pages without a digest) and
   * are hashed again when they change, or by a rescan once their retry wait is over.
   */
  get hashFailures(): number {
    return this.hashes.failures;
  }

  get workerRestarts(): number {
    return this.hashes.restarts;
  }

  /** The digest cache of a root (by store id). */
  cacheFor(root: string): DigestCache | undefined {
    return this.caches.get(root);
  }

  /**
   * Load the catalog: watch the stores, list them, index what they hold (from the digest
   * caches, else hashed). `indexAfter`: index nothing before it settles (the listing and the
   * caches' reads start at once): the server has its HTTP side up first.
   */
  async start(opts: { indexAfter?: Promise<unknown> } = {}): Promise<void> {
    const loadCaches = async (): Promise<void> => {
      for (const store of this.opts.stores) {
        if (this.closed) return;
        // By default the cache of a store lives in its root (or --cache-dir), keyed by its id;
        // that of an object store in the local cache directory, never "inside" the bucket.
        const local = path.isAbsolute(store.id);
        const cacheFile = cacheFileFor(store.id, this.opts.cacheDir ?? (local ? null : (this.opts.remoteCacheDir ?? null)));
        const cache = new FileDigestCache(cacheFile, { scope: store.id, log: this.log.child({ cache: store.id }) });
        await cache.load();
        this.caches.set(store.id, cache);
        columns.reserve(cache.size);
      }
    };
    if (this.opts.watch) {
      for (const store of this.opts.stores) {
        const reconciler = this.reconcilers.get(store.id)!;
        // Watching starts before the scan so that nothing changed during the scan is missed.
        const w = store.watch?.((event) => reconciler.handle(event));
        if (!w) continue;
        this.watches.push(w);
        void w.ready.then(() => this.log.debug({ root: store.id }, 'watcher ready'));
      }
    }
    // The first store's listing starts before the caches are read (its worker reads and stats
    // the directory meanwhile); nothing is indexed before they are. (Reading them is main-thread
    // work, the parse of their snapshots, ~0.1 s at 100,000 files: after indexAfter too.)
    const [first, ...rest] = this.opts.stores;
    const cachesLoaded = opts.indexAfter ? opts.indexAfter.then(loadCaches, loadCaches) : loadCaches();
    if (first) await scanStore(first, this, this.log, { after: cachesLoaded });
    await cachesLoaded;
    for (const store of rest) await scanStore(store, this, this.log);
    // Entries of files that are gone would otherwise stay in the journal forever.
    for (const [root, cache] of this.caches) cache.retain((rel) => this.catalog.fileAt(rel)?.root === root);
    // (A long tail read at the load is folded into the snapshot now, not during the scan; the
    // tail a cold start writes, once every file is hashed: not at the next start.)
    for (const cache of this.caches.values()) void cache.flush();
    void this.whenIdle().then(() => {
      if (!this.closed) for (const cache of this.caches.values()) cache.settle();
    });
    this.loaded = true;
    this.log.info({ ...this.catalog.size, hashing: this.backlog }, 'catalog loaded');
    const every = this.opts.rescanIntervalMs ?? 0;
    if (every > 0 && !this.closed) {
      this.rescanTimer = setInterval(() => void this.rescan(), every);
      this.rescanTimer.unref();
    }
  }

  /**
   * List every store and reconcile the index with what it holds: new and changed files are
   * indexed (a changed one rehashed), files that are gone are dropped, unchanged files cost one
   * lstat. Also retries files whose hashing failed, and (with the watcher on) watches
   * directories that have no watch yet. One rescan at a time; resolves when it is done.
   */
  rescan(): Promise<void> {
    if (this.closed || !this.loaded) return Promise.resolve();
    this.rescanning ??= (async () => {
      try {
        for (const store of this.opts.stores) {
          if (this.closed) return;
          await scanStore(store, this, this.log, { reconcile: true }).catch((err: unknown) => this.warnOnce(`cannot rescan ${store.id}`, err));
        }
      } finally {
        this.rescanning = null;
      }
    })();
    return this.rescanning;
  }

  /** IndexPolicy: the store cannot report changes below dirKey; said once, with the fix. */
  unwatched(store: PackageStore, code: string, dirKey: string): void {
    // Once: with thousands of directories past the limit, one line per directory would flood the log.
    if (this.unwatchedWarned) return;
    this.unwatchedWarned = true;
    const every = this.opts.rescanIntervalMs ?? 0;
    const fallback = every > 0 ? `changes there are only seen by the periodic rescan (every ${Math.round(every / 1000)} s)` : 'changes there are NOT seen (the periodic rescan is off: --rescan-interval 0)';
    const fix =
      code === 'EMFILE'
        ? 'raise the limit: sudo sysctl fs.inotify.max_user_instances=1024 (persist it in /etc/sysctl.d/), or run with --poll'
        : 'raise the limit: sudo sysctl fs.inotify.max_user_watches=524288 (persist it in /etc/sysctl.d/), or run with --poll';
    const dir = dirKey === '' ? store.id : path.join(store.id, ...dirKey.split('/'));
    this.log.warn({ dir, code }, `cannot watch every directory: out of inotify watches (${code}); ${fallback}. To fix, ${fix}`);
  }

  /** Resolves when every known file has its digest and metadata. */
  whenIdle(): Promise<void> {
    return this.hashes.whenIdle();
  }

  /**
   * Make sure every file of the project is hashed, jumping the queue; a page waits for this.
   * Files added while waiting are waited for too (bounded, so a stream of new files cannot
   * hold a page forever).
   */
  async ensureHashed(project: Project): Promise<void> {
    for (let round = 0; round < 20; round++) {
      const current = this.catalog.project(project.name) ?? project;
      const waits: Promise<void>[] = [];
      for (const f of current.files.values()) {
        if (isDigested(f)) continue;
        const p = this.hashes.urgent(f);
        if (p) waits.push(p);
      }
      if (!waits.length) return;
      await Promise.all(waits);
    }
  }

  /** IndexPolicy: is this a distribution file name we serve (its facts)? Logs unparseable names once. */
  consider(key: string): NameFacts | null {
    const name = key.slice(key.lastIndexOf('/') + 1);
    const facts = describeName(name);
    // (Parsed first: the extension test is only needed to tell the two kinds of failure apart.)
    if (!facts && isDistFilename(name)) this.warnOnce(`skipping ${key}: not a valid distribution file name`);
    return facts;
  }

  /** IndexPolicy: is the stored entry still the indexed file? */
  unchanged(file: DistFile, entry: StoreEntry): boolean {
    // Object stores: the same bytes are the same ETag (and size).
    if (file.etag !== undefined || entry.etag !== undefined) return file.etag === entry.etag && file.size === entry.size;
    const st = entryStamp(entry);
    return st !== null && unchanged(file, st);
  }

  /** IndexPolicy: a rescan saw the file unchanged. */
  seenUnchanged(file: DistFile): void {
    this.hashes.retryIfDue(file);
  }

  /** IndexPolicy: the file is gone from its store. */
  drop(file: DistFile): void {
    this.catalog.remove(file.root, file.relPath);
    this.hashes.forget(file);
  }

  /** The uploader removed the file: out of the index and the digest cache. */
  forget(file: DistFile): void {
    this.drop(file);
    this.caches.get(file.root)?.delete(file.relPath);
  }

  /** IndexPolicy: index the stored file (`name`: the facts of its file name, describeName's). */
  add(store: PackageStore, entry: StoreEntry, name: NameFacts): DistFile | undefined {
    const [project, , displayName] = name;
    const stamp = entryStamp(entry, this.scratchStamp);
    const file = new IndexedFile(store, entry.key, name, entry.size, entry.mtimeMs);
    file.version = this.strings.get(file.version);
    const named = this.hintMetadata(project, file.version);
    file.displayName = displayName;
    if (entry.identity) file.identity = entry.identity;
    if (entry.etag !== undefined) file.etag = entry.etag;
    const cache = stamp ? this.caches.get(store.id) : undefined;
    // The digest cache's record is copied straight into the file's row (no strings made).
    const filled = stamp !== null && cache !== undefined && cache.fill(entry.key, stamp, file, this.strings);
    // What the store already knows (an object store's in-bucket index: hashed once, by
    // whichever replica saw the object first) saves reading the object.
    const cached = filled ? undefined : store.recall?.(entry);
    // (What a bucket's index says is checked: a digest that is not one is not taken, the object is read.)
    if (cached && isSha256Hex(cached.sha256) && (!cached.metadata || isSha256Hex(cached.metadata.sha256))) {
      file.sha256 = cached.sha256;
      file.metadata = cached.metadata === undefined ? undefined : this.compactMetadata(cached.metadata);
      if (cached.metadataError) file.metadataError = cached.metadataError;
    }
    this.strings.hint(null, null);
    const mdName = this.metadataName(file, project, named);
    if (mdName) {
      file.project = this.normalizedIn(mdName, named);
      file.displayName = mdName;
    }
    file.yank = this.yanks?.lookup(store.id, file.relPath, file.project, file.version) ?? null;
    this.catalog.upsert(file, named);
    // A file that appears while we run may still be being written (see HashScheduler).
    if (!isDigested(file)) this.hashes.schedule(file, this.loaded);
    return file;
  }

  /** Record a file that an upload just stored and hashed (no second read needed). */
  addUploaded(store: PackageStore, entry: StoreEntry, digests: { sha256: string; md5?: string; blake2b256?: string }, metadata: MetadataSummary | null, metadataError?: string): DistFile | undefined {
    const stamp = entryStamp(entry);
    if (stamp) this.caches.get(store.id)?.set(entry.key, { ...cacheStamp(stamp), ...digests, metadata, ...(metadataError ? { metadataError } : {}) });
    store.record?.(entry, { ...digests, metadata, ...(metadataError ? { metadataError } : {}) });
    const facts = describeName(entry.key.slice(entry.key.lastIndexOf('/') + 1));
    return facts ? this.add(store, entry, facts) : undefined;
  }

  /** A hash result for a current file (transient failures are the scheduler's). */
  private applyHash(file: DistFile, r: HashResult, appeared: boolean): void {
    if (!r.ok) {
      this.warnOnce(`cannot read ${file.relPath}: ${r.error}`);
      this.catalog.remove(file.root, file.relPath);
      return;
    }
    if (file.identity && (r.dev !== file.identity.dev || r.ino !== file.identity.ino)) {
      // The path leads to another file than the one indexed (renamed over, or a directory on
      // the way swapped): never give the indexed file that file's digest. Look at it again.
      this.reconcilers.get(file.root)?.recheckLater(file.relPath, 0);
      return;
    }
    if (r.metadataErrorCode === 'TRUNCATED' && appeared) {
      const age = Date.now() - r.mtimeMs;
      if (age < SETTLE_FOR_TRUNCATED_MS) {
        // Most likely still being written (a slow copy that paused): never list it with the
        // digest of a partial file. Look again once it has not changed for a while; then a
        // still-broken archive is listed without metadata, like any corrupt one. Not cached.
        this.catalog.remove(file.root, file.relPath);
        this.reconcilers.get(file.root)?.recheckLater(file.relPath, SETTLE_FOR_TRUNCATED_MS - age + 50);
        return;
      }
    }
    // (An object, known by its ETag: the worker read a copy, whose stat describes nothing.)
    if ((file.identity || file.etag === undefined) && !unchanged(file, r)) {
      // Changed while we read it: the watcher will report it again once it settles.
      file.size = r.size;
      file.mtimeMs = r.mtimeMs;
      file.identity = { dev: r.dev, ino: r.ino, ctimeMs: r.ctimeMs };
    }
    this.filesHashed++;
    // (Before the result's metadata replaces what the file had.)
    const movedByMetadata = metadataNameOf(file) !== null;
    file.sha256 = r.sha256;
    const named = this.hintMetadata(file.project, file.version);
    const metadata = r.metadata ? this.compactMetadata(r.metadata) : null;
    this.strings.hint(null, null);
    file.metadata = metadata;
    file.metadataError = r.metadataError;
    if (r.metadataError) this.warnOnce(`no metadata for ${file.relPath}: ${r.metadataError}`);
    // An object (ETag) is cached under its ETag: the worker read a copy whose inode means nothing.
    const stamp: FileStamp = file.etag !== undefined && !file.identity ? { size: file.size, etag: file.etag } : { size: r.size, mtimeMs: r.mtimeMs, ino: r.ino, ctimeMs: r.ctimeMs };
    this.caches.get(file.root)?.set(file.relPath, {
      ...stamp,
      sha256: r.sha256,
      metadata,
      ...(r.metadataError ? { metadataError: r.metadataError } : {}),
    });
    if (file.etag !== undefined) {
      // Shared with the other replicas (an object store's in-bucket index): they need not read it.
      file.store.record?.({ key: file.relPath, size: file.size, mtimeMs: file.mtimeMs, etag: file.etag }, { sha256: r.sha256, metadata, ...(r.metadataError ? { metadataError: r.metadataError } : {}) });
    }
    // The file name's project is the file's own until a metadata Name moves it (nothing else
    // sets it): an IndexedFile parses its name on each read of `parsed`, so only then (a cold
    // start parsed every name a second time here, ~0.4 s of the main thread at 100,000 files).
    const fileProject = movedByMetadata ? file.parsed.project : file.project;
    const mdName = this.metadataName(file, fileProject, named?.name === fileProject ? named : undefined);
    if (mdName) this.catalog.regroup(file, mdName, this.normalizedIn(mdName, named));
    // The digest and metadata are new either way: the project's pages must be re-rendered.
    this.catalog.changed(file);
    file.yank = this.yanks?.lookup(file.root, file.relPath, file.project, file.version) ?? null;
  }

  /**
   * The listed project of that name, if any; until the next hint the interner tries its display
   * name and `version` first: a file's metadata Name is mostly its project's display name, its
   * Version the file name's.
   */
  private hintMetadata(project: string, version: string): Project | undefined {
    const named = this.catalog.project(project);
    this.strings.hint(named?.displayName ?? null, version);
    return named;
  }

  /** normalizeName of a metadata Name: `named`'s name if it is that project's display name (which normalizes to it). */
  private normalizedIn(name: string, named: Project | undefined): string {
    return named !== undefined && name === named.displayName ? named.name : this.normalized(name);
  }

  /** normalizeName of a metadata Name (the same few thousand names, once per file at a start). */
  private normalized(name: string): string {
    let n = this.normalizedNames.get(name);
    if (n === undefined) {
      if (this.normalizedNames.size >= 100_000) this.normalizedNames.clear();
      n = normalizeName(name);
      this.normalizedNames.set(name, n);
    }
    return n;
  }

  /** The summary with its short strings shared between files. */
  private compactMetadata(md: MetadataSummary | null): MetadataSummary | null {
    if (!md) return md;
    return { sha256: md.sha256, size: md.size, name: this.strings.get(md.name), version: this.strings.get(md.version), requiresPython: this.strings.get(md.requiresPython), servable: md.servable };
  }

  /**
   * The metadata's Name, which wins over the file name for grouping (resolves ambiguous
   * sdists); when the two disagree, the metadata's Version is taken too (logged once).
   */
  private metadataName(file: DistFile, fileProject: string, named?: Project): string | null {
    const mdName = metadataNameOf(file);
    if (!mdName) return null;
    if (this.normalizedIn(mdName, named) !== fileProject) {
      this.warnOnce(`${file.relPath}: file name says project "${fileProject}" but its metadata says "${mdName}"; using the metadata`);
      if (file.metadata?.version) file.version = file.metadata.version;
    }
    return mdName;
  }

  /** Re-apply the yank state of a root after its yank file changed. */
  refreshYanks(root: string): void {
    for (const f of this.catalog.filesOfRoot(root)) {
      const y = this.yanks?.lookup(root, f.relPath, f.project, f.version) ?? null;
      if ((y?.reason ?? null) !== (f.yank?.reason ?? null)) {
        f.yank = y;
        this.catalog.changed(f);
      }
    }
  }

  /** Compute md5/blake2b digests on demand (the JSON API), cached with the sha256. */
  async extraDigests(file: DistFile): Promise<{ md5: string; blake2b256: string } | null> {
    const cache = this.caches.get(file.root);
    const stamp = stampOf(file);
    const cached = stamp ? cache?.lookup(file.relPath, stamp) : undefined;
    if (cached?.md5 && cached.blake2b256) return { md5: cached.md5, blake2b256: cached.blake2b256 };
    const r = await this.hashes.extraDigests(file);
    if (!r.ok || !r.md5 || !r.blake2b256) return null;
    // Cached only for the very file that was indexed (not one renamed over it or changed).
    const byEtag = file.etag !== undefined && !file.identity;
    if ((byEtag || unchanged(file, r)) && r.sha256 === file.sha256) cache?.update(file.relPath, { md5: r.md5, blake2b256: r.blake2b256 });
    return { md5: r.md5, blake2b256: r.blake2b256 };
  }

  warnOnce(msg: string, err?: unknown): void {
    if (this.warned.has(msg)) return;
    if (this.warned.size > 100_000) this.warned.clear();
    this.warned.add(msg);
    if (err) this.log.warn({ err }, msg);
    else this.log.warn(msg);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    for (const r of this.reconcilers.values()) r.close();
    for (const w of this.watches) w.close();
    await this.hashes.close();
    await Promise.all([...this.caches.values()].map((c) => c.close()));
  }
}

/** The part of a stamp the cache keeps (not the device). */
function cacheStamp(st: FileStamp): FileStamp {
  return st.etag !== undefined ? { size: st.size, etag: st.etag } : { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs };
}

/** A truncated archive modified less than this long ago is taken as still being written. */
const SETTLE_FOR_TRUNCATED_MS = 2000;

