// Watches the package roots with chokidar and reports settled changes.
//
// chokidar keeps one fs.watch handle per *file* it tracks: at 100,000 files that is ~400 MB
// and several seconds of start-up. So chokidar tracks only the directory tree (files are
// ignored) and file changes come from the directories' own raw events, which still fire for
// every entry. A path is reported once it has stopped changing (two stats, `settleMs` apart,
// agree), so a file still being copied in is never indexed half-written.

import { promises as fsp, type Stats } from 'node:fs';
import path from 'node:path';
import chokidar, { type FSWatcher } from 'chokidar';

export interface WatchHandlers {
  /** A path under a root changed (added, modified, renamed or removed); stat it and reconcile. */
  onPath(root: string, absPath: string, stats: Stats | null): void;
  /** A directory appeared (scan it) or disappeared (drop what it held). */
  onDirAdded(root: string, absDir: string): void;
  onDirRemoved(root: string, absDir: string): void;
  onError(err: unknown): void;
}

/** True for dotfiles and anything inside a dot-directory below the root. */
export function isHiddenPath(root: string, absPath: string): boolean {
  const rel = path.relative(root, absPath);
  if (rel === '') return false;
  return rel.split(path.sep).some((seg) => seg.startsWith('.'));
}

export class RootWatcher {
  private watcher: FSWatcher | null = null;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly lastSeen = new Map<string, string>();

  constructor(
    private readonly roots: string[],
    private readonly handlers: WatchHandlers,
    private readonly settleMs = 150,
  ) {}

  start(): Promise<void> {
    const w = chokidar.watch(this.roots, {
      ignoreInitial: true,
      followSymlinks: false,
      persistent: true,
      ignored: (p: string, stats?: Stats) => {
        const root = this.rootOf(p);
        if (!root) return true;
        if (isHiddenPath(root, p)) return true;
        // Only directories are tracked by chokidar itself (see the note at the top).
        return stats !== undefined && !stats.isDirectory();
      },
    });
    this.watcher = w;
    w.on('raw', (_event: string, evPath: string, details: unknown) => {
      const watched = (details as { watchedPath?: unknown } | null)?.watchedPath;
      if (typeof watched !== 'string' || !evPath) return;
      const abs = path.isAbsolute(evPath) ? evPath : path.join(watched, evPath);
      this.schedule(abs);
    });
    w.on('addDir', (p: string) => {
      const root = this.rootOf(p);
      if (root && p !== root) this.handlers.onDirAdded(root, p);
    });
    w.on('unlinkDir', (p: string) => {
      const root = this.rootOf(p);
      if (root && p !== root) this.handlers.onDirRemoved(root, p);
    });
    w.on('error', (err: unknown) => this.handlers.onError(err));
    return new Promise((resolve) => w.once('ready', () => resolve()));
  }

  private rootOf(p: string): string | undefined {
    for (const r of this.roots) if (p === r || p.startsWith(r + path.sep)) return r;
    return undefined;
  }

  private schedule(abs: string): void {
    const root = this.rootOf(abs);
    if (!root || abs === root || isHiddenPath(root, abs)) return;
    const prev = this.timers.get(abs);
    if (prev) clearTimeout(prev);
    this.timers.set(abs, setTimeout(() => void this.settle(root, abs), this.settleMs));
  }

  /** Stat the path; report it only once two stats `settleMs` apart agree. */
  private async settle(root: string, abs: string): Promise<void> {
    this.timers.delete(abs);
    let st: Stats | null = null;
    try {
      st = await fsp.lstat(abs);
    } catch {
      st = null;
    }
    if (st?.isDirectory()) return; // chokidar reports directories itself
    const sig = st ? `${st.size}:${st.mtimeMs}:${st.ino}` : 'gone';
    if (this.lastSeen.get(abs) !== sig) {
      this.lastSeen.set(abs, sig);
      if (!this.timers.has(abs)) this.timers.set(abs, setTimeout(() => void this.settle(root, abs), this.settleMs));
      return;
    }
    this.lastSeen.delete(abs);
    this.handlers.onPath(root, abs, st);
  }

  async close(): Promise<void> {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await this.watcher?.close();
    this.watcher = null;
  }
}
