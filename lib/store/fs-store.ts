// The package store of a local directory: today's behaviour behind the PackageStore interface.
// Keys are paths below the root; the absolute path is derived here on demand and never kept
// per file. Symbolic links are never followed (a link could lead outside the root): the walk
// skips them, open() uses O_NOFOLLOW and compares device and inode with what was indexed, and
// stat() and the watcher refuse a file whose directory is reached through a link.

import { constants, lstatSync, promises as fsp, type Dir, type Dirent, type Stats } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
// One turn of the event loop: a listing lets requests and timers run between its batches.
import { setImmediate as turn } from 'node:timers/promises';
import type { Logger } from 'pino';
import { RootWatcher } from './watcher.js';
import { ACK, entryKind, NOT_A_FILE, STAT_FAILED, STAT_FIELDS, type Descriptions, type EntryKind, type ListRequest, type ListSlice } from './stat-messages.js';
import { checkKey, isValidKey, type ByteRange, type ListOptions, type LocalFile, type OpenOptions, type PackageStore, type PutResult, type PutSource, type StoreEntry, type StoreEvent, type StoreObject, type StoreWatch } from './types.js';

function entryOf(key: string, st: Stats): StoreEntry {
  return { key, size: st.size, mtimeMs: st.mtimeMs, identity: { dev: st.dev, ino: st.ino, ctimeMs: st.ctimeMs } };
}

class FsObject implements StoreObject {
  constructor(
    readonly entry: StoreEntry,
    private readonly fh: fsp.FileHandle,
  ) {}

  stream(range?: ByteRange): Readable {
    return this.fh.createReadStream({ start: range?.start ?? 0, ...(range ? { end: range.end } : {}), autoClose: false });
  }

  async read(buf: Buffer, offset: number, length: number, position: number): Promise<number> {
    return (await this.fh.read(buf, offset, length, position)).bytesRead;
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}

/**
 * A directory with at least this many entries is listed by a worker thread (stat-worker.ts): it
 * reads the directory and lstats the files, STAT_SLICE files a message, at most LIST_WINDOW
 * messages ahead of the main thread, which only indexes what it receives: a warm start over
 * 100,000 files then spends no main-thread time reading the directory or in lstat (~0.8 s).
 * Smaller ones are listed here (a worker costs a few ms and ~10 MB to start).
 *
 * The window lets the worker run ahead while the main thread starts the server and reads the
 * digest cache (the indexing waits for both: ~1.3 s at 1,000,000 files, ~50 slices of listing):
 * 48 slices (~400 KB each in flight at most) against 8 before, a 1,000,000-file warm start took
 * 8.6-8.7 s against 9.1-9.5 s (alternating probes); at 100,000 files the peak RSS of a warm and
 * of a cold start measured the same.
 */
const OFF_THREAD_MIN = 2048;
const STAT_SLICE = 4096;
const LIST_WINDOW = 48;
const STAT_WORKER_URL = new URL('./stat-worker.js', import.meta.url);

/**
 * A worker listing one directory (dirPrefix ends with the separator): next() answers its
 * slices in order, or null when the worker failed (the caller lists the directory itself).
 */
class ListThread {
  private readonly slices: ListSlice[] = [];
  private failed = false;
  private wake: (() => void) | null = null;
  private readonly worker: Worker;
  /** The strings of the descriptions so far (see Descriptions). */
  readonly strings: string[] = [];

  constructor(dirPrefix: string, describe: string | undefined) {
    // Small heaps: it holds a few slices at a time (the default young generation alone would
    // add ~15 MB to the peak RSS). Out of memory or dead: the caller lists the directory itself.
    this.worker = new Worker(STAT_WORKER_URL, { resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 16 } });
    const stop = (): void => {
      this.failed = true;
      this.wake?.();
    };
    this.worker.on('message', (s: ListSlice) => {
      this.slices.push(s);
      this.wake?.();
    });
    this.worker.on('error', stop);
    this.worker.on('exit', stop);
    const req: ListRequest = { dir: dirPrefix, slice: STAT_SLICE, window: LIST_WINDOW, ...(describe ? { describe } : {}) };
    this.worker.postMessage(req);
  }

  /** The next slice (then the worker may read one more), or null: the worker failed. */
  async next(): Promise<ListSlice | null> {
    while (!this.slices.length && !this.failed) await new Promise<void>((resolve) => (this.wake = resolve));
    this.wake = null;
    const s = this.slices.shift();
    if (!s) return null;
    this.worker.postMessage(ACK);
    const d = s.described;
    if (d) {
      if (d.reset) this.strings.length = 0;
      for (const str of d.strings) this.strings.push(str);
    }
    return s;
  }

  close(): void {
    this.worker.removeAllListeners('exit');
    void this.worker.terminate();
  }
}

/** A directory entry a listing looks at. */
interface Named {
  name: string;
  kind: EntryKind;
}

/** The directory a listing is in, and where it puts the subdirectories it finds. */
interface DirListing {
  dirKey: string;
  dir: string;
  keyPrefix: string;
  /** dir with a trailing separator. */
  dirPrefix: string;
  stack: string[];
}

const NO_RELEASE = (): Promise<void> => Promise.resolve();

export class FsStore implements PackageStore {
  readonly id: string;
  readonly stagingDir: string;
  private readonly log: Logger;
  /** The watcher, once it watches the whole tree (listings then add watches it lacks). */
  private watcher: RootWatcher | null = null;
  private realRoot: string | null = null;
  private readonly warned = new Set<string>();

  /** root: an absolute directory. */
  constructor(root: string, log: Logger) {
    this.id = path.resolve(root);
    this.stagingDir = this.id;
    this.log = log.child({ store: this.id });
  }

  /** The absolute path of a key (checked: never outside the root). */
  pathOf(key: string): string {
    checkKey(key);
    return path.sep === '/' ? `${this.id}/${key}` : path.join(this.id, ...key.split('/'));
  }

  /** The key of an absolute path below the root; null for the root itself, or a path no key names (outside, hidden). */
  keyOf(abs: string): string | null {
    const rel = path.relative(this.id, abs);
    if (rel === '' || path.isAbsolute(rel)) return null;
    const key = rel.split(path.sep).join('/');
    return isValidKey(key) ? key : null;
  }

  private dirPath(dirKey: string): string {
    return dirKey === '' ? this.id : this.pathOf(dirKey);
  }

  private warnOnce(msg: string, err?: unknown): void {
    if (this.warned.has(msg)) return;
    if (this.warned.size > 10_000) this.warned.clear();
    this.warned.add(msg);
    if (err) this.log.warn({ err }, msg);
    else this.log.warn(msg);
  }

  async *list(opts: ListOptions = {}): AsyncIterable<StoreEntry[]> {
    const top = opts.prefix ?? '';
    if (top !== '') checkKey(top);
    const stack: string[] = [top];
    while (stack.length) {
      const dirKey = stack.pop()!;
      const dir = this.dirPath(dirKey);
      let handle: Dir;
      try {
        handle = await fsp.opendir(dir, { bufferSize: 1024 });
      } catch (err) {
        if (dirKey === top) {
          if (dirKey === '') throw err;
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT' || code === 'ENOTDIR') return;
        }
        this.cannotRead(dirKey, dir, err, opts);
        continue;
      }
      // A directory found by a listing (a rescan) has a watch too: one missed by the watcher,
      // or one that could not be watched before the inotify limit was raised.
      this.watcher?.ensureWatched(dir);
      const where: DirListing = { dirKey, dir, keyPrefix: dirKey === '' ? '' : `${dirKey}/`, dirPrefix: dir.endsWith(path.sep) ? dir : dir + path.sep, stack };
      // The first entries tell a small directory (listed here) from a large one (by a worker).
      const first: Dirent[] = [];
      let done = false;
      try {
        while (first.length < OFF_THREAD_MIN) {
          const e = handle.readSync();
          if (e === null) {
            done = true;
            break;
          }
          first.push(e);
        }
      } catch (err) {
        done = true;
        this.cannotRead(dirKey, dir, err, opts, true);
      }
      await handle.close().catch(() => {});
      // A small directory is listed here from what was read; a large one by the worker, from its
      // start (nothing read here is used).
      yield* done ? this.listHere(where, first, null, opts) : this.listOffThread(where, opts);
    }
  }

  private cannotRead(dirKey: string, dir: string, err: unknown, opts: ListOptions, reading = false): void {
    this.warnOnce(`cannot read directory ${dir}`, err);
    const code = (err as NodeJS.ErrnoException).code;
    // Gone is no trouble (its files are dropped); anything else keeps what was listed before.
    if (reading || (code !== 'ENOENT' && code !== 'ENOTDIR')) opts.unreadable?.(dirKey);
  }

  /** Sort a directory's entries: subdirectories to list, files (the names), links (skipped). */
  private sortEntries(d: DirListing, names: Named[], opts: ListOptions): string[] {
    const files: string[] = [];
    for (const { name, kind } of names) {
      if (kind === 'dir') d.stack.push(d.keyPrefix + name);
      else if (opts.accept && !opts.accept(name)) continue;
      else if (kind === 'file') files.push(name);
      // Symbolic links are never followed: a link could lead outside the root.
      else this.warnOnce(`skipping symbolic link ${path.join(d.dir, name)} (links are not followed)`);
    }
    return files;
  }

  /**
   * List a directory here: `first` its entries read so far, then (from `handle`, if given) the
   * rest. The files are stat'ed here, in batches of ~10 ms between which the event loop runs
   * (synchronous lstat costs ~3 us a file on a local file system, against ~20 us of CPU plus a
   * thread-pool round trip with the promise API).
   */
  private async *listHere(d: DirListing, first: Dirent[], handle: Dir | null, opts: ListOptions): AsyncIterable<StoreEntry[]> {
    let entries = first;
    for (;;) {
      const named: Named[] = [];
      for (const e of entries) {
        const kind = entryKind(e);
        if (kind) named.push({ name: e.name, kind });
      }
      const files = this.sortEntries(d, named, opts);
      for (let i = 0; i < files.length; ) {
        const until = performance.now() + 10;
        const batch: StoreEntry[] = [];
        do batch.push(...this.statHere(d.dirPrefix, d.keyPrefix, [files[i++]]));
        while (i < files.length && performance.now() < until);
        yield batch;
        await turn();
      }
      if (!handle) return;
      entries = [];
      try {
        while (entries.length < STAT_SLICE) {
          const e = handle.readSync();
          if (e === null) break;
          entries.push(e);
        }
      } catch (err) {
        this.cannotRead(d.dirKey, d.dir, err, opts, true);
      }
      if (entries.length < STAT_SLICE) handle = null;
    }
  }

  /** List a large directory through a worker (see ListThread). */
  private async *listOffThread(d: DirListing, opts: ListOptions): AsyncIterable<StoreEntry[]> {
    const thread = new ListThread(d.dirPrefix, opts.describe);
    try {
      for (;;) {
        const s = await thread.next();
        if (s === null) {
          // The worker failed: list the directory here. Files listed already may be listed
          // again (a file listed twice is indexed once).
          thread.close();
          const handle = await fsp.opendir(d.dir, { bufferSize: 1024 }).catch((err: unknown) => {
            this.cannotRead(d.dirKey, d.dir, err, opts);
            return null;
          });
          if (handle) {
            try {
              yield* this.listHere(d, [], handle, opts);
            } finally {
              await handle.close().catch(() => {});
            }
          }
          return;
        }
        const names = s.files === '' ? [] : s.files.split('\0');
        this.sortEntries(d, [...s.dirs.map((name): Named => ({ name, kind: 'dir' })), ...s.links.map((name): Named => ({ name, kind: 'link' }))], opts);
        const batch = this.entriesOf(d.dirPrefix, d.keyPrefix, names, s.stats, opts.accept, s.described, thread.strings);
        // The event loop runs between batches, as in listHere. Without this a warm start never
        // gave it a turn: Node delivers the worker's queued messages in one go (up to 1,000),
        // and each slice's indexing ran in the microtasks of the previous one's delivery (at
        // 1,000,000 files the server answered nothing, /health included, for 13 s).
        // One turn a slice: a turn every 1,024 files cost 3 s more at 1,000,000.
        if (batch.length) yield batch;
        await turn();
        if (s.error) this.cannotRead(d.dirKey, d.dir, Object.assign(new Error(s.error.message), s.error.code ? { code: s.error.code } : {}), opts);
        if (s.done) return;
      }
    } finally {
      thread.close();
    }
  }

  /** The entries of the regular files among names (that `accept` takes), from the worker's numbers and descriptions. */
  private entriesOf(dirPrefix: string, keyPrefix: string, names: string[], stats: Float64Array, accept: ListOptions['accept'], described: Descriptions | undefined, strings: string[]): StoreEntry[] {
    const batch: StoreEntry[] = [];
    for (let i = 0, o = 0, at = 0; i < names.length; i++, o += STAT_FIELDS) {
      const n = described ? described.counts[i] : -1;
      let description: string[] | undefined;
      if (n >= 0) {
        description = new Array<string>(n);
        for (let k = 0; k < n; k++) description[k] = strings[described!.ids[at++]];
      }
      if (accept && !accept(names[i])) continue;
      const size = stats[o];
      if (size === STAT_FAILED) batch.push(...this.statHere(dirPrefix, keyPrefix, [names[i]]));
      else if (size !== NOT_A_FILE) {
        const identity = { dev: stats[o + 2], ino: stats[o + 3], ctimeMs: stats[o + 4] };
        const mtimeMs = stats[o + 1];
        const key = keyPrefix + names[i];
        batch.push(description ? { key, size, mtimeMs, identity, described: description } : { key, size, mtimeMs, identity });
      }
    }
    return batch;
  }

  /** lstat the names here (synchronously): the entries of the regular files among them. */
  private statHere(dirPrefix: string, keyPrefix: string, names: string[]): StoreEntry[] {
    const out: StoreEntry[] = [];
    for (const name of names) {
      try {
        const st = lstatSync(dirPrefix + name);
        if (st.isFile()) out.push(entryOf(keyPrefix + name, st));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.warnOnce(`cannot stat ${dirPrefix + name}`, err);
      }
    }
    return out;
  }

  async stat(key: string): Promise<StoreEntry | null> {
    const abs = this.pathOf(key);
    const st = await fsp.lstat(abs).catch(() => null);
    if (!st?.isFile() || !(await this.realDirectory(abs))) return null;
    return entryOf(key, st);
  }

  /** Is the directory holding abs reached from the root without a symbolic link? */
  private async realDirectory(abs: string): Promise<boolean> {
    try {
      this.realRoot ??= await fsp.realpath(this.id);
      const relDir = path.relative(this.id, path.dirname(abs));
      return (await fsp.realpath(path.dirname(abs))) === (relDir === '' ? this.realRoot : path.join(this.realRoot, relDir));
    } catch {
      return false;
    }
  }

  async open(key: string, opts: OpenOptions = {}): Promise<StoreObject | null> {
    // O_NOFOLLOW covers only the last component: a directory on the way swapped for a link
    // would still be followed, so the opened file must be the very file that was indexed
    // (device and inode, one fstat).
    const fh = await fsp.open(this.pathOf(key), constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => null);
    if (!fh) return null;
    try {
      const st = await fh.stat();
      const expect = opts.expect;
      if (!st.isFile() || (expect && (st.ino !== expect.ino || st.dev !== expect.dev))) {
        await fh.close().catch(() => {});
        return null;
      }
      return new FsObject(entryOf(key, st), fh);
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
  }

  async putIfAbsent(key: string, source: PutSource): Promise<PutResult> {
    const target = this.pathOf(key);
    await syncFile(source.path);
    await fsp.mkdir(path.dirname(target), { recursive: true });
    try {
      // A hard link never replaces an existing file: of two racing puts exactly one wins.
      await fsp.link(source.path, target);
      // The staged name goes before the stat: removing a link changes the file's ctime, and an
      // entry stat'ed before that would not match the file the watcher then finds (it would
      // take the upload for a changed file and hash all of it again).
      await fsp.unlink(source.path).catch(() => {});
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return { created: false, reason: 'exists' };
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP') throw err;
      // Staged on another file system (or one without hard links): an exclusive copy.
      try {
        await fsp.copyFile(source.path, target, constants.COPYFILE_EXCL);
      } catch (copyErr) {
        if ((copyErr as NodeJS.ErrnoException).code === 'EEXIST') return { created: false, reason: 'exists' };
        throw copyErr;
      }
      await syncFile(target);
    }
    await syncDir(path.dirname(target));
    return { created: true, entry: entryOf(key, await fsp.stat(target)) };
  }

  async put(key: string, source: PutSource): Promise<StoreEntry> {
    const target = this.pathOf(key);
    await syncFile(source.path);
    await fsp.mkdir(path.dirname(target), { recursive: true });
    try {
      await fsp.rename(source.path, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      // Another file system: copy beside the target (a dotfile, never listed), then rename.
      const temp = path.join(path.dirname(target), `.pypi-lite-put-${process.pid}-${path.basename(target)}`);
      await fsp.copyFile(source.path, temp);
      await syncFile(temp);
      await fsp.rename(temp, target);
    }
    await syncDir(path.dirname(target));
    return entryOf(key, await fsp.stat(target));
  }

  async remove(key: string): Promise<boolean> {
    try {
      await fsp.unlink(this.pathOf(key));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /** The file itself: readers report a file that is gone by then as they would any missing file. */
  localFile(key: string): Promise<LocalFile> {
    // An invalid key rejects (the executor's throw), as in every other method.
    return new Promise((resolve) => resolve({ path: this.pathOf(key), release: NO_RELEASE }));
  }

  localPath(key: string): string {
    return this.pathOf(key);
  }

  /**
   * One fs.watch per directory (see RootWatcher). A file is reported once settled, with the
   * entry it has then; null when it is gone, not a regular file, or reached through a
   * directory that is now a symbolic link (lstat follows those).
   */
  watch(listener: (event: StoreEvent) => void): StoreWatch {
    const dirKey = (abs: string): string | null => (abs === this.id ? '' : this.keyOf(abs));
    const watcher = new RootWatcher([this.id], {
      onPath: (_root, abs, st) => {
        const key = this.keyOf(abs);
        if (key === null) return;
        if (!st?.isFile()) return listener({ type: 'file', key, entry: null });
        void this.realDirectory(abs).then((real) => listener({ type: 'file', key, entry: real ? entryOf(key, st) : null }));
      },
      onDirAdded: (_root, dir) => {
        const k = dirKey(dir);
        if (k !== null) listener({ type: 'dir-added', dirKey: k });
      },
      onDirRemoved: (_root, dir) => {
        const k = dirKey(dir);
        if (k !== null) listener({ type: 'dir-removed', dirKey: k });
      },
      onRescan: (_root, dir) => {
        const k = dirKey(dir);
        if (k !== null) listener({ type: 'relist', dirKey: k });
      },
      onWatchLimit: (err, dir) => {
        const k = dirKey(dir);
        if (k !== null) listener({ type: 'unwatched', dirKey: k, code: err.code ?? 'ENOSPC' });
      },
      onError: (err) => this.log.warn({ err }, 'watcher error'),
    });
    let closed = false;
    const ready = watcher.start().then(() => {
      if (!closed) this.watcher = watcher;
    });
    return {
      ready,
      close: () => {
        closed = true;
        watcher.close();
        if (this.watcher === watcher) this.watcher = null;
      },
    };
  }
}

async function syncFile(file: string): Promise<void> {
  const fh = await fsp.open(file, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await fsp.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    /* not supported on every file system; the data itself is synced */
  }
}
