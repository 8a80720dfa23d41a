// Persistent cache of what is expensive to compute per file: its sha256 and its metadata
// summary (and, lazily, md5/blake2b for the JSON API). Keyed by (relative path, size, mtime,
// inode, ctime): an entry whose stamp differs from the file on disk is stale and recomputed.
// Size and mtime alone are not enough: bytes rewritten in place, or a file renamed over the old
// one, with the mtime restored (rsync -t, cp -p, tar x) keep both but change the ctime/inode.
//
// One journal file per root: a header line, then one tab-separated line per change, appended
// (a change never rewrites the whole file: at 100,000 files that took ~0.4 s of CPU per upload).
// When a load finds the journal mostly superseded lines, it is compacted: rewritten to a temp
// file and renamed over the old one. A torn last line (a crash mid-append) is ignored.

import { pino, type Logger } from 'pino';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { MetadataSummary } from '../metadata/types.js';

/** What must match between a cache entry (or an indexed file) and the file on disk. */
export interface FileStamp {
  size: number;
  mtimeMs: number;
  ino: number;
  ctimeMs: number;
}

/** The "unchanged" test: same size, mtime, inode and ctime. */
export function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino && a.ctimeMs === b.ctimeMs;
}

export interface CacheEntry extends FileStamp {
  sha256: string;
  /** null: archive read, no usable metadata. Absent: not read yet. */
  metadata?: MetadataSummary | null;
  metadataError?: string;
  /** Filled in on demand by the JSON API. */
  md5?: string;
  blake2b256?: string;
}

export const CACHE_BASENAME = '.pypi-lite-cache';
// Format 3 added inode and ctime. A cache of an older format is ignored (every file rehashed
// once), never trusted: its entries cannot tell a rewritten file from the original.
const HEADER = 'pypi-lite-cache 3';

export function cacheFileFor(root: string, cacheDir: string | null): string {
  if (!cacheDir) return path.join(root, CACHE_BASENAME);
  const id = createHash('sha256').update(path.resolve(root)).digest('hex').slice(0, 16);
  return path.join(cacheDir, `${path.basename(root).replace(/[^A-Za-z0-9._-]/g, '_')}-${id}.cache`);
}

// --- line format ----------------------------------------------------------------------------
// S <rel> <size> <mtimeMs> <ino> <ctimeMs> <sha256> <md5> <blake2b256> <state> <mdSha256> <mdSize> <name> <version> <requiresPython> <servable> <metadataError>
// D <rel>
// state: u = metadata not read, n = none/unreadable, m = summary present. Empty field = absent.

const ESC: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
const UNESC: Record<string, string> = { '\\': '\\', t: '\t', n: '\n', r: '\r' };

function esc(s: string | null | undefined): string {
  if (s === null || s === undefined) return '';
  return /[\\\t\n\r]/.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => ESC[c]) : s;
}

function unesc(s: string): string {
  return s.includes('\\') ? s.replace(/\\(.)/g, (_m, c: string) => UNESC[c] ?? c) : s;
}

const orNull = (s: string | undefined): string | null => (s === undefined || s === '' ? null : unesc(s));

export function encodeEntry(rel: string, e: CacheEntry): string {
  const md = e.metadata;
  const state = md === undefined ? 'u' : md === null ? 'n' : 'm';
  return [
    'S',
    esc(rel),
    e.size,
    e.mtimeMs,
    e.ino,
    e.ctimeMs,
    e.sha256,
    e.md5 ?? '',
    e.blake2b256 ?? '',
    state,
    md ? md.sha256 : '',
    md ? md.size : '',
    esc(md?.name),
    esc(md?.version),
    esc(md?.requiresPython),
    md ? (md.servable ? '1' : '0') : '',
    esc(e.metadataError),
  ].join('\t');
}

/** Our own file: a length check is enough on the hot path (100,000 lines at a warm start). */
const isDigest = (s: string | undefined): s is string => s !== undefined && s.length === 64;

/** Parse one journal line: [rel, entry] for a set, [rel, null] for a delete, null if malformed. */
export function decodeLine(line: string): [string, CacheEntry | null] | null {
  const f = line.split('\t');
  if (f[0] === 'D' && f.length === 2) return [unesc(f[1]), null];
  if (f[0] !== 'S' || f.length !== 17) return null;
  const size = Number(f[2]);
  const mtimeMs = Number(f[3]);
  const ino = Number(f[4]);
  const ctimeMs = Number(f[5]);
  const sha256 = f[6];
  if (!Number.isFinite(size) || !Number.isFinite(mtimeMs) || !Number.isFinite(ino) || !Number.isFinite(ctimeMs) || !isDigest(sha256)) return null;
  if (f[2] === '' || f[3] === '' || f[4] === '' || f[5] === '') return null;
  const entry: CacheEntry = { size, mtimeMs, ino, ctimeMs, sha256 };
  if (f[7]) entry.md5 = f[7];
  if (f[8]) entry.blake2b256 = f[8];
  if (f[9] === 'n') entry.metadata = null;
  else if (f[9] === 'm') {
    if (!isDigest(f[10])) return null;
    entry.metadata = {
      sha256: f[10],
      size: Number(f[11]),
      name: orNull(f[12]),
      version: orNull(f[13]),
      requiresPython: orNull(f[14]),
      servable: f[15] === '1',
    };
  }
  if (f[16]) entry.metadataError = unesc(f[16]);
  return [unesc(f[1]), entry];
}

const SILENT = pino({ level: 'silent' });

export class DigestCache {
  private readonly entries = new Map<string, CacheEntry>();
  private pending: string[] = [];
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  private writeFailed = false;
  /** Lines in the journal file (to decide when compacting pays). */
  private journalLines = 0;
  private needsHeader = true;

  constructor(
    readonly file: string,
    private readonly log: Logger = SILENT,
    private readonly delayMs = 500,
  ) {}

  async load(): Promise<void> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(this.file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ err }, `cannot read cache ${this.file}`);
      return;
    }
    // Read in slices: the whole journal as one string (and its split) would double the peak memory.
    const decoder = new StringDecoder('utf8');
    const buf = Buffer.allocUnsafe(1024 * 1024);
    let rest = '';
    let first = true;
    let lines = 0;
    let bad = 0;
    try {
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        const text = rest + (bytesRead ? decoder.write(buf.subarray(0, bytesRead)) : decoder.end());
        let start = 0;
        for (;;) {
          const nl = text.indexOf('\n', start);
          if (nl === -1) break;
          const line = text.slice(start, nl);
          start = nl + 1;
          if (first) {
            first = false;
            if (line !== HEADER) {
              const why = /^pypi-lite-cache \d+$/.test(line) ? 'an older format' : 'unknown format';
              this.log.warn(`ignoring cache ${this.file}: ${why} (it will be rebuilt; files are rehashed once)`);
              this.journalLines = Number.MAX_SAFE_INTEGER; // rewrite it at the next flush
              return;
            }
            this.needsHeader = false;
            continue;
          }
          lines++;
          if (line === '') continue;
          const d = decodeLine(line);
          if (!d) bad++;
          else if (d[1]) this.entries.set(d[0], d[1]);
          else this.entries.delete(d[0]);
        }
        rest = text.slice(start); // a torn last line (crash mid-append) stays here and is dropped
        if (!bytesRead) break;
      }
    } finally {
      await fh.close();
    }
    if (first && rest !== '') {
      this.log.warn(`ignoring cache ${this.file}: unknown format (it will be rebuilt)`);
      this.journalLines = Number.MAX_SAFE_INTEGER;
      return;
    }
    this.journalLines = lines;
    if (bad > 1) this.log.warn(`cache ${this.file}: ignored ${bad} malformed lines`);
  }

  /** The entry for relPath if it still matches the file's size, mtime, inode and ctime. */
  lookup(relPath: string, stamp: FileStamp): CacheEntry | undefined {
    const e = this.entries.get(relPath);
    if (e && sameStamp(e, stamp)) return e;
    return undefined;
  }

  set(relPath: string, entry: CacheEntry): void {
    this.entries.set(relPath, entry);
    this.append(encodeEntry(relPath, entry));
  }

  update(relPath: string, patch: Partial<CacheEntry>): void {
    const e = this.entries.get(relPath);
    if (!e) return;
    Object.assign(e, patch);
    this.append(encodeEntry(relPath, e));
  }

  delete(relPath: string): void {
    if (this.entries.delete(relPath)) this.append(`D\t${esc(relPath)}`);
  }

  /** Forget entries whose files are gone (the indexer calls this once the initial scan is done). */
  retain(keep: (relPath: string) => boolean): void {
    for (const rel of [...this.entries.keys()]) if (!keep(rel)) this.delete(rel);
  }

  get size(): number {
    return this.entries.size;
  }

  private append(line: string): void {
    this.pending.push(line);
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.flush();
      }, this.delayMs);
      this.timer.unref();
    }
  }

  /** Superseded lines outnumber live entries: rewrite the journal compactly. */
  private get worthCompacting(): boolean {
    return this.journalLines + this.pending.length > 2 * this.entries.size + 1000;
  }

  /** Append what changed (or compact the journal when that pays), in order. */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.writing = this.writing.then(async () => {
      if (!this.pending.length && !this.worthCompacting) return;
      try {
        await fsp.mkdir(path.dirname(this.file), { recursive: true });
        if (this.worthCompacting || this.needsHeader) await this.compact();
        else {
          const lines = this.pending;
          this.pending = [];
          await fsp.appendFile(this.file, `${lines.join('\n')}\n`);
          this.journalLines += lines.length;
        }
        this.writeFailed = false;
      } catch (err) {
        if (!this.writeFailed) this.log.warn({ err }, `cannot write cache ${this.file} (digests will be recomputed after a restart)`);
        this.writeFailed = true;
      }
    });
    return this.writing;
  }

  /** Rewrite the journal with one line per live entry (temp file + rename: never half-written). */
  private async compact(): Promise<void> {
    this.pending = [];
    const tmp = `${this.file}.${process.pid}.${Date.now()}.tmp`;
    const fh = await fsp.open(tmp, 'w');
    let lines = 0;
    try {
      let chunk = `${HEADER}\n`;
      for (const [rel, e] of this.entries) {
        chunk += `${encodeEntry(rel, e)}\n`;
        lines++;
        if (chunk.length >= 256 * 1024) {
          await fh.writeFile(chunk);
          chunk = '';
        }
      }
      await fh.writeFile(chunk);
    } catch (err) {
      await fh.close().catch(() => {});
      await fsp.rm(tmp, { force: true }).catch(() => {});
      throw err;
    }
    await fh.close();
    await fsp.rename(tmp, this.file);
    this.journalLines = lines;
    this.needsHeader = false;
  }
}
