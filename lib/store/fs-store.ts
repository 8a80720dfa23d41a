// The package store of a local directory: today's behaviour behind the PackageStore interface.
// Keys are paths below the root; the absolute path is derived here on demand and never kept
// per file. Symbolic links are never followed (a link could lead outside the root): the walk
// skips them, open() uses O_NOFOLLOW and compares device and inode with what was indexed, and
// stat() and the watcher refuse a file whose directory is reached through a link.

import { constants, lstatSync, promises as fsp, type Dir, type Stats } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { RootWatcher } from './watcher.js';
import { NOT_A_FILE, STAT_FAILED, STAT_FIELDS, type StatRequest } from './stat-messages.js';
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
 * A directory with at least this many files is stat'ed by a worker thread (stat-worker.ts), in
 * slices of STAT_SLICE names, while the main thread reads the next slice and indexes the slices
 * already answered: a warm start over 100,000 files then spends no main-thread time in lstat
 * (~0.7 s). Smaller ones are stat'ed here (a worker costs a few ms and ~10 MB to start).
 */
const OFF_THREAD_MIN = 2048;
const STAT_SLICE = 4096;
const STAT_WORKER_URL = new URL('./stat-worker.js', import.meta.url);

/**
 * lstat names (of one directory, dirPrefix ending with the separator) in a worker thread, one
 * slice at a time: next() answers the slices in the order they were sent (see
 * stat-messages.ts), or null when the worker failed (the caller stats that slice itself).
 */
class StatThread {
  private readonly answers: Float64Array[] = [];
  private failed = false;
  private wake: (() => void) | null = null;
  private readonly worker: Worker;

  constructor(private readonly dirPrefix: string) {
    // Small heaps: it holds a slice or two at a time (the default young generation alone would
    // add ~15 MB to the peak RSS). Out of memory or dead: the caller stats the rest itself.
    this.worker = new Worker(STAT_WORKER_URL, { resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 16 } });
    const stop = (): void => {
      this.failed = true;
      this.wake?.();
    };
    this.worker.on('message', (a: Float64Array) => {
      this.answers.push(a);
      this.wake?.();
    });
    this.worker.on('error', stop);
    this.worker.on('exit', stop);
  }

  send(names: string[]): void {
    const req: StatRequest = { dir: this.dirPrefix, names: names.join('\0') };
    this.worker.postMessage(req);
  }

  async next(): Promise<Float64Array | null> {
    while (!this.answers.length && !this.failed) await new Promise<void>((resolve) => (this.wake = resolve));
    this.wake = null;
    return this.answers.shift() ?? null;
  }

  close(): void {
    this.worker.removeAllListeners('exit');
    void this.worker.terminate();
  }
}

/** Characters no key segment may hold (see isValidKey). */
const BAD_NAME = /[\\\u0000-\u001f\u007f]/;

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
        this.warnOnce(`cannot read directory ${dir}`, err);
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR') opts.unreadable?.(dirKey);
        continue;
      }
      // A directory found by a listing (a rescan) has a watch too: one missed by the watcher,
      // or one that could not be watched before the inotify limit was raised.
      this.watcher?.ensureWatched(dir);
      const keyPrefix = dirKey === '' ? '' : `${dirKey}/`;
      const dirPrefix = dir.endsWith(path.sep) ? dir : dir + path.sep;
      // The directory is read a slice at a time (never a million entries in one array: a
      // readdir of 1,000,000 names peaked 166 MB higher and took 3x as long), and each slice is
      // stat'ed while the next one is read.
      let done = false;
      const readSlice = (): string[] => {
        const files: string[] = [];
        try {
          while (files.length < STAT_SLICE) {
            const e = handle.readSync();
            if (e === null) {
              done = true;
              break;
            }
            // Dotfiles are the stores' own; a name no key can hold could not be served either.
            if (e.name.startsWith('.') || BAD_NAME.test(e.name)) continue;
            // Symbolic links are never followed: a link could lead outside the root.
            if (e.isDirectory()) stack.push(keyPrefix + e.name);
            else if (e.isFile()) {
              if (!opts.accept || opts.accept(e.name)) files.push(e.name);
            } else if (e.isSymbolicLink() && (!opts.accept || opts.accept(e.name))) this.warnOnce(`skipping symbolic link ${path.join(dir, e.name)} (links are not followed)`);
          }
        } catch (err) {
          done = true;
          this.warnOnce(`cannot read directory ${dir}`, err);
          opts.unreadable?.(dirKey);
        }
        return files;
      };
      let stat: StatThread | null = null;
      try {
        let files = readSlice();
        if (done && files.length < OFF_THREAD_MIN) {
          // A small directory: stat'ed here, in slices of ~10 ms between which the event loop runs
          // (synchronous lstat costs ~3 us a file on a local file system, against ~20 us of CPU
          // plus a thread-pool round trip with the promise API).
          for (let i = 0; i < files.length; ) {
            const until = performance.now() + 10;
            const batch: StoreEntry[] = [];
            do batch.push(...this.statHere(dirPrefix, keyPrefix, [files[i++]]));
            while (i < files.length && performance.now() < until);
            yield batch;
            await new Promise<void>((resolve) => setImmediate(resolve));
          }
          continue;
        }
        stat = new StatThread(dirPrefix);
        const sent: string[][] = [];
        for (;;) {
          if (files.length) {
            stat.send(files);
            sent.push(files);
          }
          // One slice in flight while the next is read; then take the oldest answer.
          if (sent.length > (done ? 0 : 1)) yield this.entriesOf(dirPrefix, keyPrefix, sent.shift()!, await stat.next());
          if (done && !sent.length) break;
          files = done ? [] : readSlice();
        }
      } finally {
        stat?.close();
        await handle.close().catch(() => {});
      }
    }
  }

  /** The entries of the regular files among names, from the stat thread's answer (null: stat them here). */
  private entriesOf(dirPrefix: string, keyPrefix: string, names: string[], stats: Float64Array | null): StoreEntry[] {
    if (!stats) return this.statHere(dirPrefix, keyPrefix, names);
    const batch: StoreEntry[] = [];
    for (let i = 0, o = 0; i < names.length; i++, o += STAT_FIELDS) {
      const size = stats[o];
      if (size === STAT_FAILED) batch.push(...this.statHere(dirPrefix, keyPrefix, [names[i]]));
      else if (size !== NOT_A_FILE) batch.push({ key: keyPrefix + names[i], size, mtimeMs: stats[o + 1], identity: { dev: stats[o + 2], ino: stats[o + 3], ctimeMs: stats[o + 4] } });
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
