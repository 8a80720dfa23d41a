// Watches the package roots and reports settled changes.
//
// One fs.watch (inotify) handle per *directory* and none per file: a directory's own events
// fire for every entry in it. (chokidar did this job before, tracking directories only, but it
// re-reads a whole directory, with an lstat per entry, after every event in it: with 100,000
// files in one directory every write there cost seconds of main-thread CPU, and the stream of
// writes of one upload kept the server saturated.) A path is reported once it has stopped
// changing (two stats, `settleMs` apart, agree), so a file still being copied in is never
// indexed half-written. A new directory is watched, with everything below it, before the
// indexer is told to scan it, so that nothing added meanwhile is missed.

import { promises as fsp, watch, type FSWatcher, type Stats } from 'node:fs';
import path from 'node:path';

export interface WatchHandlers {
  /** A path under a root changed (added, modified, renamed or removed); stat it and reconcile. */
  onPath(root: string, absPath: string, stats: Stats | null): void;
  /** A directory appeared (scan it) or disappeared (drop what it held). */
  onDirAdded(root: string, absDir: string): void;
  onDirRemoved(root: string, absDir: string): void;
  /** Something changed in this directory but the event named no file: rescan it. */
  onRescan(root: string, absDir: string): void;
  /** A directory could not be watched because the inotify limits are reached (ENOSPC, EMFILE). */
  onWatchLimit(err: NodeJS.ErrnoException, absDir: string): void;
  onError(err: unknown): void;
}

/**
 * Test hook: PYPI_LITE_TEST_MAX_WATCHES=<n> makes watching fail with ENOSPC beyond n watched
 * directories, as it does when fs.inotify.max_user_watches is reached. Unset in normal use.
 */
const TEST_MAX_WATCHES = process.env.PYPI_LITE_TEST_MAX_WATCHES ? Number(process.env.PYPI_LITE_TEST_MAX_WATCHES) : Infinity;

function isWatchLimit(err: NodeJS.ErrnoException): boolean {
  return err.code === 'ENOSPC' || err.code === 'EMFILE';
}

/** True for dotfiles and anything inside a dot-directory below the root. */
export function isHiddenPath(root: string, absPath: string): boolean {
  // The common case without path.relative (a hot spot at 100,000 files): below the root, and
  // no segment that starts with '.' or is empty (only those could normalize differently).
  if (absPath.length > root.length + 1 && absPath.startsWith(root) && absPath[root.length] === path.sep) {
    const tail = absPath.slice(root.length + 1);
    if (!tail.startsWith('.') && !tail.includes(`${path.sep}.`) && !tail.includes(`${path.sep}${path.sep}`) && !tail.endsWith(path.sep)) return false;
  }
  const rel = path.relative(root, absPath);
  if (rel === '') return false;
  return rel.split(path.sep).some((seg) => seg.startsWith('.'));
}

/**
 * File systems whose directories count their subdirectories in their link count (2 + one per
 * subdirectory): ext2/3/4, XFS, tmpfs. Btrfs and others report 1, network and FUSE file systems
 * may report anything: those directories are read.
 */
const COUNTS_SUBDIRECTORIES = new Set([0xef53, 0x58465342, 0x01021994]);

/**
 * A directory that certainly has no subdirectory: nothing to watch below it, so it need not be
 * read. Reading one with 100,000 files only to find that cost ~250 ms of the main thread (and
 * 1,000,000 directory entries as objects at once, for one of a million) at every start.
 */
async function hasNoSubdirectory(dir: string): Promise<boolean> {
  try {
    const st = await fsp.lstat(dir);
    return st.nlink === 2 && COUNTS_SUBDIRECTORIES.has((await fsp.statfs(dir)).type);
  } catch {
    return false;
  }
}

export class RootWatcher {
  /** Every watched directory (the roots included) and its handle. */
  private readonly dirs = new Map<string, FSWatcher>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly lastSeen = new Map<string, string>();
  private readonly rescans = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly roots: string[],
    private readonly handlers: WatchHandlers,
    private readonly settleMs = 150,
  ) {}

  /** Resolves once every directory under the roots is watched. */
  async start(): Promise<void> {
    for (const root of this.roots) await this.watchTree(root);
  }

  /** Watch dir and every directory below it (not hidden ones, no symbolic links). Returns the newly watched ones. */
  private async watchTree(dir: string): Promise<string[]> {
    const added: string[] = [];
    const stack = [dir];
    while (stack.length && !this.closed) {
      const current = stack.pop()!;
      if (!this.watchDir(current)) continue;
      added.push(current);
      // (Watched first, then looked at: a directory made after this is reported by the watch.)
      if (await hasNoSubdirectory(current)) continue;
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fsp.readdir(current, { withFileTypes: true });
      } catch {
        continue; // gone again: the parent's event reports it
      }
      for (const e of entries) if (e.isDirectory() && !e.name.startsWith('.')) stack.push(path.join(current, e.name));
    }
    return added;
  }

  /** Watch this one directory if it is not watched yet (the indexer's rescans call this). */
  ensureWatched(dir: string): void {
    if (!this.closed && !this.dirs.has(dir) && this.rootOf(dir) !== undefined) this.watchDir(dir);
  }

  private watchDir(dir: string): boolean {
    if (this.closed || this.dirs.has(dir)) return false;
    let w: FSWatcher;
    try {
      if (this.dirs.size >= TEST_MAX_WATCHES) throw Object.assign(new Error(`ENOSPC: System limit for number of file watchers reached, watch '${dir}'`), { code: 'ENOSPC' });
      w = watch(dir, { persistent: true }, (_event, name) => {
        if (name) this.schedule(path.join(dir, name.toString()));
        else this.nameless(dir);
      });
    } catch (caught) {
      const err = caught as NodeJS.ErrnoException;
      if (isWatchLimit(err)) this.handlers.onWatchLimit(err, dir);
      else if (err.code !== 'ENOENT' && err.code !== 'ENOTDIR') this.handlers.onError(err);
      return false;
    }
    w.on('error', (err: NodeJS.ErrnoException) => {
      this.unwatch(dir);
      // A directory removed under its handle is no error: its parent reports the removal.
      if (isWatchLimit(err)) this.handlers.onWatchLimit(err, dir);
      else if (err.code !== 'ENOENT' && err.code !== 'EPERM') this.handlers.onError(err);
    });
    this.dirs.set(dir, w);
    return true;
  }

  /** Stop watching dir and everything below it. */
  private unwatch(dir: string): void {
    const prefix = dir + path.sep;
    for (const [d, w] of this.dirs) {
      if (d === dir || d.startsWith(prefix)) {
        w.close();
        this.dirs.delete(d);
      }
    }
  }

  /** An event without a file name (e.g. after a queue overflow): have the directory rescanned. */
  private nameless(dir: string): void {
    const root = this.rootOf(dir);
    if (!this.closed && root) this.handlers.onRescan(root, dir);
  }

  private rootOf(p: string): string | undefined {
    for (const r of this.roots) if (p === r || p.startsWith(r + path.sep)) return r;
    return undefined;
  }

  private schedule(abs: string): void {
    if (this.closed) return;
    const root = this.rootOf(abs);
    if (!root || abs === root || isHiddenPath(root, abs)) return;
    const prev = this.timers.get(abs);
    if (prev) clearTimeout(prev);
    this.timers.set(abs, setTimeout(() => void this.settle(root, abs), this.settleMs));
  }

  /** Put every non-directory entry of `dir` through the settle logic, after `delayMs`. */
  private rescanLater(dir: string, delayMs: number): void {
    const t = setTimeout(() => {
      this.rescans.delete(t);
      if (this.closed) return;
      fsp.readdir(dir, { withFileTypes: true }).then(
        (entries) => {
          if (this.closed) return;
          for (const e of entries) if (!e.isDirectory()) this.schedule(path.join(dir, e.name));
        },
        () => {
          /* gone again: its removal is reported */
        },
      );
    }, delayMs);
    this.rescans.add(t);
  }

  /** Stat the path; report it only once two stats `settleMs` apart agree. Directories at once. */
  private async settle(root: string, abs: string): Promise<void> {
    this.timers.delete(abs);
    const st: Stats | null = await fsp.lstat(abs).catch(() => null);
    if (this.closed) return;
    if (st?.isDirectory()) {
      if (this.dirs.has(abs)) return;
      const added = await this.watchTree(abs);
      if (this.closed || !added.length) return;
      this.handlers.onDirAdded(root, abs);
      // A scan is cheap insurance against a file created before its directory's watch
      // started (a known, unchanged file costs one stat).
      for (const d of added) {
        this.rescanLater(d, this.settleMs);
        this.rescanLater(d, 1_000);
      }
      return;
    }
    if (this.dirs.has(abs)) {
      // A watched directory is gone (or is something else now).
      this.unwatch(abs);
      this.handlers.onDirRemoved(root, abs);
    }
    const sig = st ? `${st.size}:${st.mtimeMs}:${st.ino}:${st.ctimeMs}` : 'gone';
    if (this.lastSeen.get(abs) !== sig) {
      this.lastSeen.set(abs, sig);
      if (!this.timers.has(abs)) this.timers.set(abs, setTimeout(() => void this.settle(root, abs), this.settleMs));
      return;
    }
    this.lastSeen.delete(abs);
    this.handlers.onPath(root, abs, st);
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const t of this.rescans) clearTimeout(t);
    this.rescans.clear();
    for (const w of this.dirs.values()) w.close();
    this.dirs.clear();
  }
}
