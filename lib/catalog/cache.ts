// Persistent cache of what is expensive to compute per file: its sha256 and its metadata
// summary (and, lazily, md5/blake2b for the JSON API). Keyed by (relative path, size, mtime):
// an entry whose size or mtime differ from the file on disk is stale and recomputed.
// One JSON file per root, written atomically (temp file + rename) a little after changes.

import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { MetadataSummary } from './catalog.js';

export interface CacheEntry {
  size: number;
  mtimeMs: number;
  sha256: string;
  /** null: archive read, no usable metadata. Absent: not read yet. */
  metadata?: MetadataSummary | null;
  metadataError?: string;
  /** Filled in on demand by the JSON API. */
  md5?: string;
  blake2b256?: string;
}

interface CacheFileShape {
  format: 'pypi-lite-cache';
  version: 1;
  entries: Record<string, CacheEntry>;
}

export const CACHE_BASENAME = '.pypi-lite-cache.json';

export function cacheFileFor(root: string, cacheDir: string | null): string {
  if (!cacheDir) return path.join(root, CACHE_BASENAME);
  const id = createHash('sha256').update(path.resolve(root)).digest('hex').slice(0, 16);
  return path.join(cacheDir, `${path.basename(root).replace(/[^A-Za-z0-9._-]/g, '_')}-${id}.json`);
}

function isEntry(v: unknown): v is CacheEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return typeof e.size === 'number' && typeof e.mtimeMs === 'number' && typeof e.sha256 === 'string' && /^[0-9a-f]{64}$/.test(e.sha256);
}

export class DigestCache {
  private entries = new Map<string, CacheEntry>();
  private dirty = false;
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  private writeFailed = false;
  /** How long the last write took (the next one waits at least ten times that). */
  private lastWriteMs = 0;

  constructor(
    readonly file: string,
    private readonly onWarn: (msg: string, err?: unknown) => void = () => {},
    private readonly delayMs = 2000,
  ) {}

  async load(): Promise<void> {
    let text: string;
    try {
      text = await fsp.readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.onWarn(`cannot read cache ${this.file}`, err);
      return;
    }
    try {
      const parsed = JSON.parse(text) as Partial<CacheFileShape>;
      if (parsed.format !== 'pypi-lite-cache' || parsed.version !== 1 || typeof parsed.entries !== 'object' || !parsed.entries) {
        this.onWarn(`ignoring cache ${this.file}: unknown format`);
        return;
      }
      const entries = parsed.entries as Record<string, unknown>;
      // for...in rather than Object.entries: no pair array per entry (100,000 of them).
      for (const rel in entries) {
        const entry = entries[rel];
        if (Object.hasOwn(entries, rel) && isEntry(entry)) this.entries.set(rel, entry);
      }
    } catch (err) {
      this.onWarn(`ignoring corrupt cache ${this.file}`, err);
    }
  }

  /** The entry for relPath if it still matches the file's size and mtime. */
  lookup(relPath: string, size: number, mtimeMs: number): CacheEntry | undefined {
    const e = this.entries.get(relPath);
    if (e && e.size === size && e.mtimeMs === mtimeMs) return e;
    return undefined;
  }

  set(relPath: string, entry: CacheEntry): void {
    this.entries.set(relPath, entry);
    this.markDirty();
  }

  update(relPath: string, patch: Partial<CacheEntry>): void {
    const e = this.entries.get(relPath);
    if (!e) return;
    Object.assign(e, patch);
    this.markDirty();
  }

  delete(relPath: string): void {
    if (this.entries.delete(relPath)) this.markDirty();
  }

  get size(): number {
    return this.entries.size;
  }

  private markDirty(): void {
    this.dirty = true;
    if (!this.timer) {
      // Writing 100,000 entries takes a second or more of the main thread: after a slow write,
      // wait longer, so that writing the cache never takes more than a small share of the time.
      this.timer = setTimeout(
        () => {
          this.timer = null;
          void this.flush();
        },
        Math.max(this.delayMs, this.lastWriteMs * 10),
      );
      this.timer.unref();
    }
  }

  /** Write the cache now if it changed (atomically). */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.writing = this.writing.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      const started = performance.now();
      const tmp = `${this.file}.${process.pid}.${Date.now()}.tmp`;
      try {
        await fsp.mkdir(path.dirname(this.file), { recursive: true });
        await this.writeTo(tmp);
        await fsp.rename(tmp, this.file);
        this.writeFailed = false;
        this.lastWriteMs = performance.now() - started;
      } catch (err) {
        await fsp.rm(tmp, { force: true }).catch(() => {});
        if (!this.writeFailed) this.onWarn(`cannot write cache ${this.file} (digests will be recomputed after a restart)`, err);
        this.writeFailed = true;
      }
    });
    return this.writing;
  }

  /**
   * Write the JSON of a CacheFileShape, a slice of entries at a time: the same text as
   * JSON.stringify of the whole shape, without building it (tens of MB at 100,000 files) as
   * one string, and without holding the event loop for the whole of it.
   */
  private async writeTo(file: string): Promise<void> {
    const entries = [...this.entries];
    const fh = await fsp.open(file, 'w');
    try {
      const header: Omit<CacheFileShape, 'entries'> = { format: 'pypi-lite-cache', version: 1 };
      let text = `${JSON.stringify(header).slice(0, -1)},"entries":{`;
      for (let i = 0; i < entries.length; i++) {
        const [rel, entry] = entries[i]!;
        text += `${i ? ',' : ''}${JSON.stringify(rel)}:${JSON.stringify(entry)}`;
        if (text.length >= 256 * 1024) {
          await fh.writeFile(text);
          text = '';
        }
      }
      await fh.writeFile(`${text}}}`);
    } finally {
      await fh.close();
    }
  }
}
