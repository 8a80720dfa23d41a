// Keeps the Catalog in step with the package roots: the initial scan, the watcher's changes,
// hashing and metadata reading in the background (through the HashPool), and the persistent
// DigestCache that makes restarts instant. Knows nothing of HTTP.

import { createReadStream, lstatSync, promises as fsp, type Stats } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Logger } from 'pino';
import { Catalog, type DistFile, type Project } from './catalog.js';
import { DigestCache, cacheFileFor, sameStamp, type FileStamp } from './cache.js';
import { isDistFilename, parseFilename, type ParsedFilename } from './filename.js';
import { HashPool, type HashResult } from './hash-pool.js';
import { normalizeName } from './names.js';
import { RootWatcher, isHiddenPath } from './watcher.js';
import { corrupt } from '../metadata/archive-errors.js';
import { archiveKindOf, type MetadataSummary } from '../metadata/types.js';
import type { YankStore } from './yank.js';

export interface IndexerOptions {
  roots: string[];
  cacheDir: string | null;
  workers: number;
  /** Watch the roots with fs.watch (inotify); false in --poll mode. */
  watch: boolean;
  /**
   * Full rescan of every root this often (0: never). The safety net for changes the watcher
   * cannot see (network file systems, inotify limits, queue overflows); the only source of
   * changes in --poll mode. Unchanged files cost one lstat each and are never rehashed.
   */
  rescanIntervalMs?: number;
}

/** The stamp of an indexed file (what the "unchanged" test compares). */
function stampOf(f: DistFile): FileStamp | null {
  return f.identity ? { size: f.size, mtimeMs: f.mtimeMs, ino: f.identity.ino, ctimeMs: f.identity.ctimeMs } : null;
}

/** Is the file on disk (an lstat, or what a hash worker saw) still the one that was indexed? */
function unchanged(f: DistFile, st: FileStamp & { dev: number }): boolean {
  const stamp = stampOf(f);
  return stamp !== null && f.identity?.dev === st.dev && sameStamp(stamp, st);
}

/**
 * The project name shown until the metadata's Name is known. Wheel and egg file names escape
 * the name (`Foo.Bar` -> `foo_bar`), and so do modern sdists: showing that would flip to the
 * real name once the metadata is read. So: the normalized name, except for an sdist whose file
 * name keeps a spelling that is no escape (`Foo.Bar-1.0.tar.gz`, made by older setuptools).
 */
export function provisionalDisplayName(parsed: ParsedFilename): string {
  if (parsed.kind === 'sdist' && !parsed.name.includes('_')) return parsed.name;
  return parsed.project;
}

export function toRelPath(root: string, absPath: string): string {
  // The common case without path.relative (a hot spot at 100,000 files): a normalized path
  // below the root, whose tail is then already the answer.
  if (path.sep === '/' && absPath.length > root.length + 1 && absPath.startsWith(root) && absPath.charCodeAt(root.length) === 47) {
    const rel = absPath.slice(root.length + 1);
    if (!NOT_NORMALIZED.test(rel)) return rel;
  }
  return path.relative(root, absPath).split(path.sep).join('/');
}

/** An empty, '.' or '..' segment: path.relative would normalize it away. */
const NOT_NORMALIZED = /(^|\/)\.{0,2}(\/|$)/;

export class Indexer {
  readonly catalog: Catalog;
  private readonly pool: HashPool;
  private readonly caches = new Map<string, DigestCache>();
  /** Files handed to the pool, with a promise settled once their result is applied. */
  private readonly inflight = new Map<DistFile, Promise<void>>();
  /** Files waiting for their turn (FIFO in hashQueue from queueHead on). */
  private readonly queued = new Map<DistFile, { appeared: boolean; done: Promise<void>; release: () => void }>();
  private hashQueue: DistFile[] = [];
  private queueHead = 0;
  private readonly warned = new Set<string>();
  private watcher: RootWatcher | null = null;
  private loaded = false;
  /**
   * Files whose hashing failed for a reason other than the file (a worker died twice), with
   * when a rescan may try again: a minute after the failure, the wait doubling up to an hour
   * (a file that kills the worker every time must not keep a --poll server busy).
   */
  private readonly hashFailed = new Map<DistFile, { retryAt: number; waitMs: number }>();
  private readonly realRoots = new Map<string, string>();
  private watchLimitWarned = false;
  private rescanTimer: NodeJS.Timeout | null = null;
  private rescanning: Promise<void> | null = null;
  /** Directories to rescan after a watcher event that named no file. */
  private readonly dirRescans = new Map<string, string>();
  private dirRescanTimer: NodeJS.Timeout | null = null;
  private readonly rechecks = new Set<NodeJS.Timeout>();
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  yanks: YankStore | null = null;

  constructor(
    private readonly opts: IndexerOptions,
    private readonly log: Logger,
    catalog = new Catalog(),
  ) {
    this.catalog = catalog;
    this.pool = new HashPool(opts.workers, (reason, orphans) =>
      this.log.error({ reason, files: orphans }, 'a hashing worker died; replaced it and retrying its files once'),
    );
  }

  /** True once the initial scan has listed every file (hashing may still run). */
  get isLoaded(): boolean {
    return this.loaded;
  }

  /** Files still waiting for their digest or metadata. */
  get backlog(): number {
    return this.inflight.size + this.queued.size;
  }

  /**
   * Listed files whose hashing failed for a reason other than the file itself (the worker
   * died twice). They stay in the index (downloadable, but not on pages without a digest) and
   * are hashed again when they change, or by a rescan once their retry wait is over.
   */
  get hashFailures(): number {
    for (const f of this.hashFailed.keys()) if (this.catalog.fileAt(f.relPath) !== f) this.hashFailed.delete(f); // replaced or gone
    return this.hashFailed.size;
  }

  /** Hashing workers that died and were replaced since the start. */
  get workerRestarts(): number {
    return this.pool.restarts;
  }

  cacheFor(root: string): DigestCache | undefined {
    return this.caches.get(root);
  }

  async start(): Promise<void> {
    for (const root of this.opts.roots) {
      const cache = new DigestCache(cacheFileFor(root, this.opts.cacheDir), (msg, err) => this.warnOnce(msg, err));
      await cache.load();
      this.caches.set(root, cache);
    }
    if (this.opts.watch) {
      this.watcher = new RootWatcher(this.opts.roots, {
        onPath: (root, abs, st) => void this.reconcileChecked(root, abs, st),
        onDirAdded: (root, dir) => void this.scanDir(root, dir),
        onDirRemoved: (root, dir) => this.dropDir(root, dir),
        onRescan: (root, dir) => this.rescanDirSoon(root, dir),
        onWatchLimit: (err, dir) => this.watchLimitReached(err, dir),
        onError: (err) => this.log.warn({ err }, 'watcher error'),
      });
      // Watching starts before the scan so that nothing changed during the scan is missed.
      void this.watcher.start().then(() => this.log.debug('watcher ready'));
    }
    for (const root of this.opts.roots) await this.scanDir(root, root);
    // Entries of files that are gone would otherwise stay in the journal forever.
    for (const [root, cache] of this.caches) cache.retain((rel) => this.catalog.fileAt(rel)?.root === root);
    this.loaded = true;
    this.log.info({ ...this.catalog.size, hashing: this.backlog }, 'catalog loaded');
    const every = this.opts.rescanIntervalMs ?? 0;
    if (every > 0 && !this.closed) {
      this.rescanTimer = setInterval(() => void this.rescan(), every);
      this.rescanTimer.unref();
    }
  }

  /**
   * Walk every root and reconcile the index with what is on disk: new and changed files are
   * indexed (a changed one rehashed), files that are gone are dropped, unchanged files cost one
   * lstat. Also retries files whose hashing failed, and (with the watcher on) watches
   * directories that have no watch yet. One rescan at a time; resolves when it is done.
   */
  rescan(): Promise<void> {
    if (this.closed || !this.loaded) return Promise.resolve();
    this.rescanning ??= (async () => {
      try {
        for (const root of this.opts.roots) {
          if (this.closed) return;
          await this.scanDir(root, root, true).catch((err: unknown) => this.warnOnce(`cannot rescan ${root}`, err));
        }
      } finally {
        this.rescanning = null;
      }
    })();
    return this.rescanning;
  }

  /** A watcher event without a file name: rescan that directory (batched, off the event). */
  private rescanDirSoon(root: string, dir: string): void {
    if (this.closed) return;
    this.dirRescans.set(dir, root);
    this.dirRescanTimer ??= setTimeout(() => {
      this.dirRescanTimer = null;
      const dirs = [...this.dirRescans];
      this.dirRescans.clear();
      void (async () => {
        for (const [d, r] of dirs) if (!this.closed) await this.scanDir(r, d, true).catch(() => {});
      })();
    }, 200);
  }

  private watchLimitReached(err: NodeJS.ErrnoException, dir: string): void {
    const every = this.opts.rescanIntervalMs ?? 0;
    const fallback = every > 0 ? `changes there are only seen by the periodic rescan (every ${Math.round(every / 1000)} s)` : 'changes there are NOT seen (the periodic rescan is off: --rescan-interval 0)';
    const fix =
      err.code === 'EMFILE'
        ? 'raise the limit: sudo sysctl fs.inotify.max_user_instances=1024 (persist it in /etc/sysctl.d/), or run with --poll'
        : 'raise the limit: sudo sysctl fs.inotify.max_user_watches=524288 (persist it in /etc/sysctl.d/), or run with --poll';
    // Once: with thousands of directories past the limit, one line per directory would flood the log.
    if (this.watchLimitWarned) return;
    this.watchLimitWarned = true;
    this.log.warn({ dir, code: err.code }, `cannot watch every directory: out of inotify watches (${err.code}); ${fallback}. To fix, ${fix}`);
  }

  /** Resolves when every known file has its digest and metadata. */
  whenIdle(): Promise<void> {
    if (this.backlog === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
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
        if (f.sha256 !== null && f.metadata !== undefined) continue;
        if (this.queued.has(f)) this.startHash(f, true);
        else this.pool.promote(f.absPath);
        const p = this.inflight.get(f);
        if (p) waits.push(p);
      }
      if (!waits.length) return;
      await Promise.all(waits);
    }
  }

  /**
   * Index every distribution file under dir. `reconcile` (a rescan): skip unchanged files,
   * and drop the indexed files under dir that were not found (gone, or below a directory that
   * is now a symbolic link).
   */
  private async scanDir(root: string, dir: string, reconcile = false): Promise<void> {
    const relDir = dir === root ? '' : toRelPath(root, dir);
    // Files indexed before the walk started: only those can be dropped for not being seen
    // (a file added meanwhile, by an upload or the watcher, is a new object).
    const before = reconcile ? this.catalog.filesUnder(root, relDir) : [];
    const seen = new Set<string>();
    /** Directories that could not be read (not gone): their files are kept, not dropped. */
    const unreadable: string[] = [];
    const stack = [dir];
    while (stack.length) {
      if (this.closed) return;
      const current = stack.pop()!;
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fsp.readdir(current, { withFileTypes: true });
      } catch (err) {
        if (current === root) throw err;
        this.warnOnce(`cannot read directory ${current}`, err);
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR') unreadable.push(`${toRelPath(root, current)}/`);
        continue;
      }
      if (reconcile) this.watcher?.ensureWatched(current);
      const files: { abs: string; name: string }[] = [];
      const prefix = current.endsWith(path.sep) ? current : current + path.sep;
      for (const e of entries) {
        if (e.name.startsWith('.')) continue;
        const abs = prefix + e.name;
        // Symbolic links are never followed: a link could lead outside the roots.
        if (e.isDirectory()) stack.push(abs);
        else if (e.isFile()) files.push({ abs, name: e.name });
        else if (e.isSymbolicLink() && isDistFilename(e.name)) this.warnOnce(`skipping symbolic link ${abs} (links are not followed)`);
      }
      // Synchronous lstat, in slices of ~10 ms between which the event loop runs: on a local
      // file system that costs ~3 us a file, against ~20 us of CPU plus a thread-pool round trip
      // with the promise API (100,000 files: 0.3 s instead of 2-4 s).
      for (let i = 0; i < files.length; ) {
        const until = performance.now() + 10;
        do {
          const { abs, name } = files[i++];
          const parsed = this.consider(root, abs, name);
          if (!parsed) continue;
          try {
            const st = lstatSync(abs);
            if (reconcile) {
              const rel = toRelPath(root, abs);
              seen.add(rel);
              const existing = this.catalog.fileAt(rel);
              if (existing && existing.root !== root) continue; // an earlier root serves this path
              if (existing && unchanged(existing, st)) {
                // Retry what hashing could not finish (a worker died twice, a result for
                // another file than the indexed one was discarded).
                const failed = this.hashFailed.get(existing);
                const unfinished = existing.sha256 === null || existing.metadata === undefined;
                if (failed ? Date.now() >= failed.retryAt : unfinished && !this.inflight.has(existing) && !this.queued.has(existing)) this.hash(existing);
                continue;
              }
              const file = this.addFromStat(root, abs, st, parsed);
              if (file) this.log.info({ file: rel, project: file.project }, existing ? 'file changed (found by rescan)' : 'file added (found by rescan)');
            } else {
              this.addFromStat(root, abs, st, parsed);
            }
          } catch (err) {
            this.warnOnce(`cannot stat ${abs}`, err);
          }
        } while (i < files.length && performance.now() < until);
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    if (!reconcile || this.closed) return;
    for (const f of before) {
      if (seen.has(f.relPath) || this.catalog.fileAt(f.relPath) !== f) continue;
      if (unreadable.some((prefix) => f.relPath.startsWith(prefix))) continue;
      this.catalog.remove(root, f.relPath);
      this.hashFailed.delete(f);
      this.log.info({ file: f.relPath }, 'file removed (found by rescan)');
    }
  }

  /** Is this a distribution file name we serve? Logs unparseable names once. */
  private consider(root: string, abs: string, name = path.basename(abs)): ParsedFilename | null {
    if (!isDistFilename(name)) return null;
    const parsed = parseFilename(name);
    if (!parsed) {
      this.warnOnce(`skipping ${path.relative(root, abs)}: not a valid distribution file name`);
      return null;
    }
    return parsed;
  }

  private reconcile(root: string, abs: string, st: Stats | null): void {
    if (this.closed) return;
    const relPath = toRelPath(root, abs);
    const existing = this.catalog.fileAt(relPath);
    if (!st || !st.isFile()) {
      if (existing && existing.root === root) {
        this.catalog.remove(root, relPath);
        this.log.info({ file: relPath }, 'file removed');
      }
      return;
    }
    if (existing && existing.root === root && unchanged(existing, st)) return;
    const parsed = this.consider(root, abs);
    if (!parsed) return;
    const file = this.addFromStat(root, abs, st, parsed);
    if (file) this.log.info({ file: relPath, project: file.project }, existing ? 'file changed' : 'file added');
  }

  /**
   * reconcile(), but a new or changed file is only indexed if no directory on its path is a
   * symbolic link (lstat follows those): a directory swapped for a link must not bring the
   * files it leads to into the index.
   */
  private async reconcileChecked(root: string, abs: string, st: Stats | null): Promise<void> {
    if (st?.isFile()) {
      const existing = this.catalog.fileAt(toRelPath(root, abs));
      if (!(existing && existing.root === root && unchanged(existing, st)) && !(await this.realDirectory(root, abs))) st = null;
    }
    this.reconcile(root, abs, st);
  }

  /** Is the directory holding abs reached from the root without a symbolic link? */
  private async realDirectory(root: string, abs: string): Promise<boolean> {
    try {
      let realRoot = this.realRoots.get(root);
      if (realRoot === undefined) {
        realRoot = await fsp.realpath(root);
        this.realRoots.set(root, realRoot);
      }
      const relDir = path.relative(root, path.dirname(abs));
      return (await fsp.realpath(path.dirname(abs))) === (relDir === '' ? realRoot : path.join(realRoot, relDir));
    } catch {
      return false;
    }
  }

  private recheckLater(root: string, abs: string, delayMs: number): void {
    const t = setTimeout(() => {
      this.rechecks.delete(t);
      if (this.closed) return;
      fsp.lstat(abs).then(
        (st) => this.reconcileChecked(root, abs, st),
        () => this.reconcile(root, abs, null),
      );
    }, delayMs);
    this.rechecks.add(t);
  }

  private dropDir(root: string, dir: string): void {
    for (const f of this.catalog.filesUnder(root, toRelPath(root, dir))) this.catalog.remove(root, f.relPath);
  }

  /** `parsed`: parseFilename of the basename, when the caller has it already. */
  private addFromStat(root: string, abs: string, st: Stats, parsed: ParsedFilename | null = parseFilename(path.basename(abs))): DistFile | undefined {
    if (!st.isFile() || isHiddenPath(root, abs)) return undefined;
    if (!parsed) return undefined;
    const relPath = toRelPath(root, abs);
    const cached = this.caches.get(root)?.lookup(relPath, st);
    const file: DistFile = {
      root,
      relPath,
      absPath: abs,
      filename: parsed.filename,
      parsed,
      project: parsed.project,
      displayName: provisionalDisplayName(parsed),
      version: parsed.version,
      size: st.size,
      mtimeMs: st.mtimeMs,
      identity: { dev: st.dev, ino: st.ino, ctimeMs: st.ctimeMs },
      sha256: cached?.sha256 ?? null,
      metadata: cached ? cached.metadata : undefined,
      metadataError: cached?.metadataError,
      yank: null,
    };
    const mdName = this.metadataName(file);
    if (mdName) {
      file.project = normalizeName(mdName);
      file.displayName = mdName;
    }
    file.yank = this.yanks?.lookup(root, parsed, file.project, file.version) ?? null;
    this.catalog.upsert(file);
    if (file.sha256 === null || file.metadata === undefined) this.hash(file);
    return file;
  }

  /** Record a file that an upload just wrote and hashed (no second read needed). */
  addUploaded(root: string, abs: string, st: Stats, digests: { sha256: string; md5?: string; blake2b256?: string }, metadata: MetadataSummary | null, metadataError?: string): DistFile | undefined {
    const relPath = toRelPath(root, abs);
    this.caches.get(root)?.set(relPath, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs, ...digests, metadata, metadataError });
    return this.addFromStat(root, abs, st);
  }

  /**
   * Queue a file for hashing. Files wait here, not in the pool, and at most HASH_WINDOW are
   * handed to the pool at once: at a cold start over 100,000 files that keeps 100,000 pending
   * promises and messages out of memory. A page that needs a queued file starts it at once.
   */
  private hash(file: DistFile): void {
    if (this.inflight.has(file) || this.queued.has(file)) return;
    // A file that appears while we run may still be being written (scp, a slow copy). A
    // truncated zip or wheel fails to open, but a truncated sdist often still yields its
    // PKG-INFO, so a new .tar.gz is only accepted once its whole gzip stream decodes.
    const appeared = this.loaded;
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    this.queued.set(file, { appeared, done, release });
    this.hashQueue.push(file);
    this.pumpHashes();
  }

  private pumpHashes(): void {
    while (this.inflight.size < HASH_WINDOW && this.queueHead < this.hashQueue.length) {
      const file = this.hashQueue[this.queueHead++];
      if (this.queued.has(file)) this.startHash(file, false);
    }
    if (this.queueHead > 4096 && this.queueHead * 2 > this.hashQueue.length) {
      this.hashQueue = this.hashQueue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  private startHash(file: DistFile, urgent: boolean): void {
    const q = this.queued.get(file);
    if (!q) return;
    this.queued.delete(file);
    const verifyGzip = q.appeared && (file.parsed.extension === '.tar.gz' || file.parsed.extension === '.tgz');
    const p = this.pool
      .run({ path: file.absPath, archive: archiveKindOf(file.parsed) }, urgent)
      .then(async (r) => {
        if (verifyGzip && r.ok && !r.metadataError && this.catalog.fileAt(file.relPath) === file && !(await gzipComplete(file.absPath, r.size))) {
          const cut = corrupt('gzip', 'unexpected end of file');
          r = { ...r, metadata: null, metadataError: cut.error, metadataErrorCode: cut.code };
        }
        this.applyHash(file, r, q.appeared);
      })
      .finally(() => {
        this.inflight.delete(file);
        q.release();
        this.pumpHashes();
        if (this.backlog === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
    this.inflight.set(file, q.done);
    void p;
  }

  /** `appeared`: the file showed up while we were running (not found by the initial scan). */
  private applyHash(file: DistFile, r: HashResult, appeared = false): void {
    if (this.catalog.fileAt(file.relPath) !== file) return; // replaced or removed meanwhile
    if (!r.ok) {
      if (r.transient) {
        // Nothing is known against the file: keep it listed, retry at the next rescan.
        if (this.closed) return;
        const waitMs = Math.min(HASH_RETRY_MAX_MS, 2 * (this.hashFailed.get(file)?.waitMs ?? HASH_RETRY_MIN_MS / 2));
        this.hashFailed.set(file, { retryAt: Date.now() + waitMs, waitMs });
        this.log.error({ file: file.relPath, error: r.error, retryInSeconds: waitMs / 1000 }, 'cannot hash a file (kept in the index; retried by a later rescan, or when it changes)');
        return;
      }
      this.warnOnce(`cannot read ${file.relPath}: ${r.error}`);
      this.catalog.remove(file.root, file.relPath);
      return;
    }
    this.hashFailed.delete(file);
    if (file.identity && (r.dev !== file.identity.dev || r.ino !== file.identity.ino)) {
      // The path leads to another file than the one indexed (renamed over, or a directory on
      // the way swapped): never give the indexed file that file's digest. Look at it again.
      this.recheckLater(file.root, file.absPath, 0);
      return;
    }
    if (r.metadataErrorCode === 'TRUNCATED' && appeared) {
      const age = Date.now() - r.mtimeMs;
      if (age < SETTLE_FOR_TRUNCATED_MS) {
        // Most likely still being written (a slow copy that paused): never list it with the
        // digest of a partial file. Look again once it has not changed for a while; then a
        // still-broken archive is listed without metadata, like any corrupt one. Not cached.
        this.catalog.remove(file.root, file.relPath);
        this.recheckLater(file.root, file.absPath, SETTLE_FOR_TRUNCATED_MS - age + 50);
        return;
      }
    }
    if (!unchanged(file, r)) {
      // Changed while we read it: the watcher will report it again once it settles.
      file.size = r.size;
      file.mtimeMs = r.mtimeMs;
      file.identity = { dev: r.dev, ino: r.ino, ctimeMs: r.ctimeMs };
    }
    file.sha256 = r.sha256;
    file.metadata = r.metadata ?? null;
    file.metadataError = r.metadataError;
    if (r.metadataError) this.warnOnce(`no metadata for ${file.relPath}: ${r.metadataError}`);
    this.caches.get(file.root)?.set(file.relPath, {
      size: r.size,
      mtimeMs: r.mtimeMs,
      ino: r.ino,
      ctimeMs: r.ctimeMs,
      sha256: r.sha256,
      metadata: file.metadata,
      ...(r.metadataError ? { metadataError: r.metadataError } : {}),
    });
    const mdName = this.metadataName(file);
    if (mdName) this.catalog.regroup(file, mdName);
    // The digest and metadata are new either way: the project's pages must be re-rendered.
    this.catalog.changed(file);
    file.yank = this.yanks?.lookup(file.root, file.parsed, file.project, file.version) ?? null;
  }

  /**
   * The metadata's Name, which wins over the file name for grouping (resolves ambiguous
   * sdists); when the two disagree, the metadata's Version is taken too (logged once).
   */
  private metadataName(file: DistFile): string | null {
    const mdName = file.metadata?.name;
    if (!mdName) return null;
    if (normalizeName(mdName) !== file.parsed.project) {
      this.warnOnce(`${file.relPath}: file name says project "${file.parsed.project}" but its metadata says "${mdName}"; using the metadata`);
      if (file.metadata?.version) file.version = file.metadata.version;
    }
    return mdName;
  }

  /** Re-apply the yank state of a root after its yank file changed. */
  refreshYanks(root: string): void {
    for (const f of this.catalog.filesOfRoot(root)) {
      const y = this.yanks?.lookup(root, f.parsed, f.project, f.version) ?? null;
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
    const r = await this.pool.run({ path: file.absPath, extraDigests: true }, true);
    if (!r.ok || !r.md5 || !r.blake2b256) return null;
    // Cached only for the very file that was indexed (not one renamed over it or changed).
    if (unchanged(file, r) && r.sha256 === file.sha256) cache?.update(file.relPath, { md5: r.md5, blake2b256: r.blake2b256 });
    return { md5: r.md5, blake2b256: r.blake2b256 };
  }

  warnOnce(msg: string, err?: unknown): void {
    if (this.warned.has(msg)) return;
    if (this.warned.size > 100_000) this.warned.clear();
    this.warned.add(msg);
    if (err) this.log.warn({ err }, msg);
    else this.log.warn(msg);
  }

  async flush(): Promise<void> {
    await Promise.all([...this.caches.values()].map((c) => c.flush()));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    if (this.dirRescanTimer) clearTimeout(this.dirRescanTimer);
    for (const t of this.rechecks) clearTimeout(t);
    this.rechecks.clear();
    for (const q of this.queued.values()) q.release();
    this.queued.clear();
    this.watcher?.close();
    await this.pool.close();
    await this.flush();
  }
}

/** A file whose hashing failed (worker died twice) is retried after this, doubling up to the max. */
const HASH_RETRY_MIN_MS = 60_000;
const HASH_RETRY_MAX_MS = 3_600_000;

/** Files in the hashing pool at once (enough to keep every worker busy). */
const HASH_WINDOW = 256;

/** A truncated archive modified less than this long ago is taken as still being written. */
const SETTLE_FOR_TRUNCATED_MS = 2000;

/** Metadata errors that mean the archive ends early (a file cut off, or still being written). */
/** Above this much output a gzip stream is taken as complete (bounds the work on a bomb). */
const GZIP_VERIFY_LIMIT = 256 * 1024 ** 2;

/** Does the file's first `size` bytes hold a complete gzip stream? Decoded off the main thread. */
async function gzipComplete(absPath: string, size: number): Promise<boolean> {
  if (size === 0) return false;
  let out = 0;
  const tooBig = new Error('limit');
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.length;
      cb(out > GZIP_VERIFY_LIMIT ? tooBig : null);
    },
  });
  try {
    await pipeline(createReadStream(absPath, { start: 0, end: size - 1 }), createGunzip(), sink);
    return true;
  } catch (err) {
    return err === tooBig;
  }
}
