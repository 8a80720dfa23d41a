// Persistent cache of what is expensive to compute per file: its sha256 and its metadata
// summary (and, lazily, md5/blake2b for the JSON API). Keyed by the relative path and a stamp:
// for a file, (size, mtime, inode, ctime); for an object (an object store), (size, ETag). An
// entry whose stamp differs from what the store shows is stale and recomputed. Size and mtime
// alone are not enough: bytes rewritten in place, or a file renamed over the old one, with the
// mtime restored (rsync -t, cp -p, tar x) keep both but change the ctime/inode.
//
// `DigestCache` is the interface the indexer uses; `FileDigestCache` keeps it in one file per
// root (`<root>/.pypi-lite-cache` or in --cache-dir): a binary snapshot read in one read at a
// start, then an append-only tail of records, compacted (rewritten to a temp file, renamed over)
// when superseded records pile up. Every record carries its CRC-32; the header names the format
// and the root it was written for. A torn tail (a crash mid-append) or a corrupt record ends
// what is trusted: the records before it still hold (each is checked against the file's stamp
// anyway), the rest is dropped and the file rewritten at the next flush. A file of another
// format (the tab-separated journal of format 3) or of another root is ignored, never trusted.
//
// In memory an entry is the offset of its record in the file (a slot of `KeyIndex`, ~18 bytes a
// file), or its encoded record while it waits to be written. The file read at the load is kept
// only for the first scan (which copies every record into the catalog's rows); after it a find
// reads its record from the file (the descriptor opened at the load, or the one of the file
// compaction wrote, is kept: the records read are always those indexed), and `lookup` decodes it.

import { pino, type Logger } from 'pino';
import { createHash } from 'node:crypto';
import fs, { promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import type { MetadataSummary } from '../metadata/types.js';
import { KeyIndex, recordKey, recordKeyHash, type RecordSource } from './key-index.js';

/** What must match between a cache entry (or an indexed file) and the file on disk. */
export interface FsStamp {
  size: number;
  mtimeMs: number;
  ino: number;
  ctimeMs: number;
  etag?: undefined;
}

/** The stamp of an object in an object store: its size and ETag. */
export interface ObjectStamp {
  size: number;
  etag: string;
}

export type FileStamp = FsStamp | ObjectStamp;

/** The "unchanged" test: same size and ETag (an object), or same size, mtime, inode and ctime (a file). */
export function sameStamp(a: FileStamp, b: FileStamp): boolean {
  if (a.size !== b.size) return false;
  if (a.etag !== undefined || b.etag !== undefined) return a.etag === b.etag;
  return a.mtimeMs === b.mtimeMs && a.ino === b.ino && a.ctimeMs === b.ctimeMs;
}

export interface CacheData {
  sha256: string;
  /** null: archive read, no usable metadata. Absent: not read yet. */
  metadata?: MetadataSummary | null;
  metadataError?: string;
  /** Filled in on demand by the JSON API. */
  md5?: string;
  blake2b256?: string;
}

export type CacheEntry = FileStamp & CacheData;

/** Makes the short strings of a record (an Interner: one shared copy of each). */
export interface StringMaker {
  /** The string of the UTF-8 bytes buf[start, end). */
  decode(buf: Buffer, start: number, end: number): string;
}

/** What `fill` copies a cache entry into (an IndexedFile). */
export interface DigestTarget {
  setSha256Bytes(src: Buffer, at: number): void;
  setMetadataBytes(src: Buffer, shaAt: number, size: number, name: string | null, version: string | null, requiresPython: string | null, servable: boolean): void;
  metadata: MetadataSummary | null | undefined;
  metadataError?: string;
}

/**
 * What the indexer needs of a digest cache (one per store). `FileDigestCache` is the local
 * implementation; what an object store's bucket knows reaches the indexer through
 * PackageStore.recall/record instead.
 */
export interface DigestCache {
  /** Read what was persisted (a missing or unusable cache is an empty one). */
  load(): Promise<void>;
  /** The entry for relPath if it still matches the stamp. */
  lookup(relPath: string, stamp: FileStamp): CacheEntry | undefined;
  /**
   * The same, copied straight into the indexed file (digests as bytes, no strings made but the
   * metadata's short ones, by `strings`): true if there was a matching entry.
   */
  fill(relPath: string, stamp: FileStamp, target: DigestTarget, strings: StringMaker): boolean;
  set(relPath: string, entry: CacheEntry): void;
  update(relPath: string, patch: Partial<CacheData>): void;
  delete(relPath: string): void;
  /** Forget entries whose files are gone (called once the initial scan is done; an implementation may keep, without asking, the entries looked up since the load). */
  retain(keep: (relPath: string) => boolean): void;
  /** Persist what changed. */
  flush(): Promise<void>;
  /** A burst of changes is over (a cold start hashed everything): fold a long tail into the snapshot now rather than at the next start. */
  settle(): void;
  /** Persist what changed and let go of the file (nothing is read from it or written after this). */
  close(): Promise<void>;
  readonly size: number;
}

export const CACHE_BASENAME = '.pypi-lite-cache';
// Format 4: binary snapshot + tail (format 3 was a tab-separated journal, 2 lacked inode and
// ctime). A cache of another format is ignored (every file rehashed once), never trusted.
export const CACHE_MAGIC = 'pypi-lite-cache 4\n';
const MAGIC = Buffer.from(CACHE_MAGIC, 'latin1');

export function cacheFileFor(root: string, cacheDir: string | null): string {
  if (!cacheDir) return path.join(root, CACHE_BASENAME);
  const id = createHash('sha256').update(path.resolve(root)).digest('hex').slice(0, 16);
  return path.join(cacheDir, `${path.basename(root).replace(/[^A-Za-z0-9._-]/g, '_')}-${id}.cache`);
}

// --- the record format --------------------------------------------------------------------
// file   := MAGIC u32(scopeLen) scope u32(crc32(MAGIC..scope)) [snapshot] record*
// record := u32(bodyLen) body u32(crc32(body))                       (little-endian)
// snapshot := a record whose body is 0x03 record* (its CRC covers them: theirs are not checked)
// body   := 0x01 str(rel) u8(flags) f64(size) stamp digests [metadata] [str(error)]   (set)
//         | 0x02 str(rel)                                                            (delete)
// stamp  := f64(mtimeMs) f64(ino) f64(ctimeMs)   | str(etag) when flags & ETAG
// digests:= 32 bytes sha256 [16 bytes md5 if MD5] [32 bytes blake2b-256 if BLAKE]
// metadata (MD_SOME) := 32 bytes sha256 f64(size) nstr(name) nstr(version) nstr(requiresPython)
// str := u16(len) utf8; nstr := str, or u16(0xffff) for null.

const SET = 1;
const DEL = 2;
/** A snapshot: the records of every live entry in one frame, under one CRC (one check at a load). */
const BLOCK = 3;
const F_ETAG = 1;
const F_MD5 = 2;
const F_BLAKE = 4;
const F_MD_NONE = 8;
const F_MD_SOME = 16;
const F_SERVABLE = 32;
const F_ERROR = 64;
const NULL_STR = 0xffff;
const MAX_STR = 0xfffe;

class Writer {
  buf = Buffer.allocUnsafe(256);
  pos = 0;
  /** Start a record (the buffer is kept: records are encoded one at a time, and copied out). */
  reset(): this {
    if (this.buf.length > 65_536) this.buf = Buffer.allocUnsafe(256);
    this.pos = 0;
    return this;
  }
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.room(2);
    this.pos = this.buf.writeUInt16LE(v, this.pos);
  }
  u32(v: number): void {
    this.room(4);
    this.pos = this.buf.writeUInt32LE(v, this.pos);
  }
  f64(v: number): void {
    this.room(8);
    this.pos = this.buf.writeDoubleLE(v, this.pos);
  }
  str(s: string | null): void {
    if (s === null) return this.u16(NULL_STR);
    const n = Buffer.byteLength(s);
    if (n > MAX_STR) throw new RangeError('string too long for the cache');
    this.u16(n);
    this.room(n);
    this.pos += this.buf.write(s, this.pos);
  }
  hex(s: string, bytes: number): void {
    this.room(bytes);
    if (s.length !== bytes * 2 || this.buf.write(s, this.pos, 'hex') !== bytes) throw new RangeError('not a digest');
    this.pos += bytes;
  }
}

/**
 * The one writer records are encoded with, each then copied out at its exact length (a writer
 * and its buffer per record were ~1 µs of a cold start's main thread per file).
 */
const scratch = new Writer();

/** The framed record (length, body, CRC) of a set, or null if it cannot be encoded (then it is not cached). */
export function encodeEntry(rel: string, e: CacheEntry): Buffer | null {
  try {
    const w = scratch.reset();
    w.u32(0);
    w.u8(SET);
    w.str(rel);
    const md = e.metadata;
    const flags =
      (e.etag !== undefined ? F_ETAG : 0) |
      (e.md5 ? F_MD5 : 0) |
      (e.blake2b256 ? F_BLAKE : 0) |
      (md === null ? F_MD_NONE : md ? F_MD_SOME | (md.servable ? F_SERVABLE : 0) : 0) |
      (e.metadataError ? F_ERROR : 0);
    w.u8(flags);
    w.f64(e.size);
    if (e.etag !== undefined) w.str(e.etag);
    else {
      w.f64(e.mtimeMs);
      w.f64(e.ino);
      w.f64(e.ctimeMs);
    }
    w.hex(e.sha256, 32);
    if (e.md5) w.hex(e.md5, 16);
    if (e.blake2b256) w.hex(e.blake2b256, 32);
    if (md) {
      w.hex(md.sha256, 32);
      w.f64(md.size);
      w.str(md.name);
      w.str(md.version);
      w.str(md.requiresPython);
    }
    if (e.metadataError) w.str(e.metadataError.slice(0, 4000));
    return frame(w);
  } catch {
    return null;
  }
}

function encodeDelete(rel: string): Buffer | null {
  try {
    const w = scratch.reset();
    w.u32(0);
    w.u8(DEL);
    w.str(rel);
    return frame(w);
  } catch {
    return null;
  }
}

function frame(w: Writer): Buffer {
  const bodyLen = w.pos - 4;
  w.buf.writeUInt32LE(bodyLen, 0);
  w.u32(crc32(w.buf.subarray(4, 4 + bodyLen)));
  // A copy of the exact length (from Node's pool for small records: no ArrayBuffer per entry).
  const out = Buffer.allocUnsafe(w.pos);
  w.buf.copy(out, 0, 0, w.pos);
  return out;
}

/** Reads one record body; every read is bounds-checked against the body's end. */
class Reader {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly end: number,
  ) {}
  need(n: number): void {
    if (this.pos + n > this.end) throw new RangeError('record too short');
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  f64(): number {
    this.need(8);
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    if (!Number.isFinite(v)) throw new RangeError('not a number');
    return v;
  }
  skipStr(): void {
    const n = this.u16();
    if (n === NULL_STR) return;
    this.need(n);
    this.pos += n;
  }
  str(): string | null {
    const n = this.u16();
    if (n === NULL_STR) return null;
    this.need(n);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  /** str() through a StringMaker. */
  strBy(strings: StringMaker): string | null {
    const n = this.u16();
    if (n === NULL_STR) return null;
    this.need(n);
    const s = strings.decode(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  hex(bytes: number): string {
    this.need(bytes);
    const s = this.buf.toString('hex', this.pos, this.pos + bytes);
    this.pos += bytes;
    return s;
  }
  skip(bytes: number): void {
    this.need(bytes);
    this.pos += bytes;
  }
}

/** Decode the set record whose frame starts at `at` (its rel is skipped). */
function decodeSet(buf: Buffer, at: number): CacheEntry {
  const r = new Reader(buf, at + 4, at + 4 + buf.readUInt32LE(at));
  r.u8();
  r.skipStr();
  const flags = r.u8();
  const size = r.f64();
  let entry: CacheEntry;
  if (flags & F_ETAG) {
    const etag = r.str() ?? '';
    entry = { size, etag, sha256: r.hex(32) };
  } else {
    const mtimeMs = r.f64();
    const ino = r.f64();
    const ctimeMs = r.f64();
    entry = { size, mtimeMs, ino, ctimeMs, sha256: r.hex(32) };
  }
  if (flags & F_MD5) entry.md5 = r.hex(16);
  if (flags & F_BLAKE) entry.blake2b256 = r.hex(32);
  if (flags & F_MD_NONE) entry.metadata = null;
  else if (flags & F_MD_SOME) {
    const sha256 = r.hex(32);
    const mdSize = r.f64();
    entry.metadata = { sha256, size: mdSize, name: r.str(), version: r.str(), requiresPython: r.str(), servable: (flags & F_SERVABLE) !== 0 };
  }
  if (flags & F_ERROR) entry.metadataError = r.str() ?? '';
  return entry;
}

/** Copy the set record at `at` into target (its rel and stamp are skipped). */
function fillSet(buf: Buffer, at: number, target: DigestTarget, strings: StringMaker): void {
  const r = new Reader(buf, at + 4, at + 4 + buf.readUInt32LE(at));
  r.u8();
  r.skipStr();
  const flags = r.u8();
  r.f64();
  if (flags & F_ETAG) r.skipStr();
  else r.skip(24);
  r.need(32);
  target.setSha256Bytes(buf, r.pos);
  r.skip(32 + (flags & F_MD5 ? 16 : 0) + (flags & F_BLAKE ? 32 : 0));
  if (flags & F_MD_NONE) target.metadata = null;
  else if (flags & F_MD_SOME) {
    const shaAt = r.pos;
    r.skip(32);
    const mdSize = r.f64();
    const name = r.strBy(strings);
    const version = r.strBy(strings);
    const requiresPython = r.strBy(strings);
    target.setMetadataBytes(buf, shaAt, mdSize, name, version, requiresPython, (flags & F_SERVABLE) !== 0);
  } else target.metadata = undefined;
  target.metadataError = flags & F_ERROR ? (r.str() ?? '') : undefined;
}

/** Does the set record at `at` still describe a file with this stamp? (No allocation.) */
function stampMatches(buf: Buffer, at: number, stamp: FileStamp): boolean {
  const r = new Reader(buf, at + 4, at + 4 + buf.readUInt32LE(at));
  r.u8();
  r.skipStr();
  const flags = r.u8();
  if (r.f64() !== stamp.size) return false;
  if (flags & F_ETAG) {
    if (stamp.etag === undefined) return false;
    return r.str() === stamp.etag;
  }
  if (stamp.etag !== undefined) return false;
  return r.f64() === stamp.mtimeMs && r.f64() === stamp.ino && r.f64() === stamp.ctimeMs;
}

/** Walk a set body's structure (throws if it does not fit its length exactly). */
function checkSet(r: Reader): void {
  const flags = r.u8();
  if (flags & ~127 || (flags & F_MD_NONE && flags & F_MD_SOME)) throw new RangeError('bad flags');
  r.f64();
  if (flags & F_ETAG) r.skipStr();
  else r.skip(24);
  r.skip(32 + (flags & F_MD5 ? 16 : 0) + (flags & F_BLAKE ? 32 : 0));
  if (flags & F_MD_SOME) {
    r.skip(32);
    r.f64();
    r.skipStr();
    r.skipStr();
    r.skipStr();
  }
  if (flags & F_ERROR) r.skipStr();
  if (r.pos !== r.end) throw new RangeError('record length mismatch');
}

function header(scope: string): Buffer {
  const s = Buffer.from(scope, 'utf8');
  const h = Buffer.allocUnsafe(MAGIC.length + 4 + s.length + 4);
  MAGIC.copy(h, 0);
  h.writeUInt32LE(s.length, MAGIC.length);
  s.copy(h, MAGIC.length + 4);
  h.writeUInt32LE(crc32(h.subarray(0, h.length - 4)), h.length - 4);
  return h;
}

export interface ParsedCache {
  /** Live entries: rel -> offset of the record's frame in buf. */
  index: KeyIndex;
  /** Records read (sets and deletes), to decide when compacting pays. */
  records: number;
  /** Of those, the records after the snapshot (each with its own CRC to check at a load). */
  tail: number;
  /** Snapshots read. */
  blocks: number;
  /** Why the file is not (fully) usable: it must be rewritten. */
  problem: string | null;
  /** Nothing was taken from the file (another format or root). */
  ignored: boolean;
}

/**
 * Parse a cache file's bytes written for `scope`. Never throws: what cannot be trusted is
 * dropped (everything, for another format or root; the rest of the file, from a torn or
 * corrupt record on).
 */
export function parseCache(buf: Buffer, scope: string): ParsedCache {
  // ~190 bytes a record: room for that many without growing.
  const out: ParsedCache = { index: new KeyIndex(buf, Math.ceil(buf.length / 190)), records: 0, tail: 0, blocks: 0, problem: null, ignored: false };
  if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    const text = buf.subarray(0, 40).toString('latin1');
    out.problem = /^pypi-lite-cache \d+\n/.test(text) ? 'an older format' : 'unknown format';
    out.ignored = true;
    return out;
  }
  const pos = MAGIC.length;
  const hdr = header(scope);
  if (buf.length < hdr.length || !buf.subarray(0, hdr.length).equals(hdr)) {
    const ok = buf.length >= pos + 4 && buf.length >= pos + 4 + buf.readUInt32LE(pos) + 4;
    out.problem = ok ? 'written for another root' : 'a damaged header';
    out.ignored = true;
    return out;
  }
  readFrames(buf, hdr.length, buf.length, true, out);
  return out;
}

/**
 * Read the frames in buf[from, to) into out. `checked`: verify each frame's CRC (the tail's
 * records); inside a snapshot block, whose one CRC covers them all, they are not checked again.
 * Stops at the first frame that is torn or damaged (out.problem says which).
 */
function readFrames(buf: Buffer, from: number, to: number, checked: boolean, out: ParsedCache): boolean {
  let pos = from;
  while (pos < to) {
    if (pos + 4 > to) {
      out.problem = checked ? 'a torn last record' : 'a damaged snapshot';
      return false;
    }
    const len = buf.readUInt32LE(pos);
    const end = pos + 4 + len;
    if (len < 3 || end + 4 > to) {
      out.problem = len < 3 || !checked ? 'a damaged record' : 'a torn last record';
      return false;
    }
    if (checked && crc32(buf.subarray(pos + 4, end)) !== buf.readUInt32LE(end)) {
      out.problem = 'a damaged record';
      return false;
    }
    try {
      const kind = buf[pos + 4];
      if (kind === BLOCK && checked) {
        // A lookup may try the snapshot's records in order (only those of one whole snapshot).
        out.index.trustOrder(out.blocks++ === 0 ? pos + 5 : 0, out.blocks === 1 ? end : 0);
        if (!readFrames(buf, pos + 5, end, false, out)) {
          out.index.trustOrder(0, 0);
          return false;
        }
      } else {
        const r = new Reader(buf, pos + 5, end);
        const keyLen = r.u16();
        if (keyLen === 0 || keyLen === NULL_STR) throw new RangeError('no key');
        r.skip(keyLen);
        if (kind === SET) {
          checkSet(r);
          out.index.add(pos);
        } else if (kind === DEL && r.pos === end) out.index.removeKeyOf(pos);
        else throw new RangeError('unknown record');
        out.records++;
        if (checked) out.tail++;
      }
    } catch {
      out.problem = 'a damaged record';
      return false;
    }
    pos = end + 4;
  }
  return true;
}

const SILENT = pino({ level: 'silent' });

const openFd = promisify(fs.open);
const closeFd = promisify(fs.close);
const fstatFd = promisify(fs.fstat);

function writeAt(fd: number, buf: Buffer, len: number, pos: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (done: number): void =>
      fs.write(fd, buf, done, len - done, pos + done, (err, n) => {
        if (err) reject(err);
        else if (done + n >= len) resolve();
        else step(done + n);
      });
    step(0);
  });
}

function readAt(fd: number, buf: Buffer, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buf, 0, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

/**
 * A whole open file in one buffer, read with as few read calls as the kernel allows (one, for a
 * file in the page cache). fs.readFile reads 512 KiB per thread-pool round trip: 76 ms against
 * 5 ms for an 18 MB cache (100,000 files), ten times that at a million.
 */
async function readWhole(fd: number): Promise<Buffer> {
  const size = (await fstatFd(fd)).size;
  const buf = Buffer.allocUnsafeSlow(size);
  let got = 0;
  while (got < size) {
    const n = await readAt(fd, buf.subarray(got), size - got, got);
    if (n === 0) break;
    got += n;
  }
  // (A file cut short meanwhile: what was read is parsed, its torn end dropped as at any load.)
  return got < size ? buf.subarray(0, got) : buf;
}

/** No record is longer (a 64 KB key, a 4,000-character error, an ETag, digests). */
const MAX_FRAME = 1 << 20;
/** How much compaction reads and writes at a time. */
const CHUNK = 1 << 20;

/** Is the frame at buf[at] whole within buf[.. end) and its CRC right? */
function frameOk(buf: Buffer, at: number, end: number): boolean {
  if (at + 4 > end) return false;
  const total = buf.readUInt32LE(at) + 8;
  return total <= MAX_FRAME && at + total <= end && crc32(buf.subarray(at + 4, at + total - 4)) === buf.readUInt32LE(at + total - 4);
}

/**
 * The records of one cache file: from the file as read at the load while it is kept (the first
 * scan), else read from the open file, one record per read (after the scan, finds are rare: a
 * changed or new file, an upload, a rescan). A record read from the file is checked again (its
 * CRC), so bytes changed under us are a miss, never a wrong entry.
 */
class CacheFile implements RecordSource {
  buf: Buffer;
  private scratch = Buffer.allocUnsafe(1024);
  /** The offset of the record in `scratch` (finds read the record the index just compared). */
  private last = -1;

  constructor(
    /** The file as read at the load (offsets below its length are read from it), or null. */
    public base: Buffer | null,
    public fd: number,
  ) {
    this.buf = base ?? this.scratch;
  }

  at(off: number): number {
    const base = this.base;
    if (base !== null && off < base.length) {
      this.buf = base;
      return off;
    }
    this.buf = this.scratch;
    if (off === this.last) return 0;
    this.last = -1;
    if (this.fd < 0) return -1;
    try {
      let n = fs.readSync(this.fd, this.scratch, 0, this.scratch.length, off);
      if (n >= 4 && this.scratch.readUInt32LE(0) + 8 > n && this.scratch.readUInt32LE(0) + 8 <= MAX_FRAME) {
        this.scratch = Buffer.allocUnsafe(this.scratch.readUInt32LE(0) + 8);
        this.buf = this.scratch;
        n = fs.readSync(this.fd, this.scratch, 0, this.scratch.length, off);
      }
      if (!frameOk(this.scratch, 0, n)) return -1;
    } catch {
      return -1;
    }
    this.last = off;
    return 0;
  }

  /** Read the records from the file from now on. */
  dropBase(): void {
    this.base = null;
    this.buf = this.scratch;
  }

  close(): void {
    const fd = this.fd;
    this.fd = -1;
    this.dropBase();
    this.last = -1;
    if (fd >= 0) fs.close(fd, () => {});
  }
}

export interface FileDigestCacheOptions {
  /** What the cache is for (the store's id): a file written for another root is not trusted. */
  scope?: string;
  log?: Logger;
  /** How long changes wait before they are appended (batched). */
  delayMs?: number;
}

export class FileDigestCache implements DigestCache {
  /** The open cache file (the one loaded, or the one written last) and its records. */
  private disk = new CacheFile(null, -1);
  /** Live entries written to the file: key -> the offset of its record. */
  private index = new KeyIndex(this.disk);
  /** Entries set and not written yet: rel -> its framed record (never also in `index`). */
  private loose = new Map<string, Buffer>();
  private pending: Buffer[] = [];
  /** Where the next record is appended (the file's length). */
  private fileEnd = 0;
  /** The keys set or deleted while a compaction runs (its index must not hold their old records). */
  private touched: Set<string> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  private writeFailed = false;
  private replacedWarned = false;
  private closed = false;
  /** Records in the file (to decide when compacting pays). */
  private fileRecords = 0;
  /** Of those, the records appended after the snapshot (each costs a CRC check at a load). */
  private tailRecords = 0;
  /** The file must be rewritten before anything is appended (absent, another format, a torn tail). */
  private mustRewrite = true;
  /** Rewrite at the next flush even if nothing changed (a long tail at load, a failed write). */
  private rewriteDue = false;
  private readonly scope: string;
  private readonly log: Logger;
  private readonly delayMs: number;

  constructor(
    readonly file: string,
    opts: FileDigestCacheOptions = {},
  ) {
    this.scope = opts.scope ?? '';
    this.log = opts.log ?? SILENT;
    this.delayMs = opts.delayMs ?? 500;
  }

  async load(): Promise<void> {
    let fd: number;
    try {
      // Read through the descriptor that is kept: the records read later are those of this file.
      fd = await openFd(this.file, 'r+').catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'EACCES' || err.code === 'EROFS' || err.code === 'EPERM') return openFd(this.file, 'r');
        throw err;
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ err }, `cannot read cache ${this.file}`);
      return;
    }
    let buf: Buffer;
    try {
      buf = await readWhole(fd);
    } catch (err) {
      this.log.warn({ err }, `cannot read cache ${this.file}`);
      await closeFd(fd).catch(() => {});
      return;
    }
    const parsed = parseCache(buf, this.scope);
    if (parsed.ignored) {
      await closeFd(fd).catch(() => {});
      this.log.warn(`ignoring cache ${this.file}: ${parsed.problem} (it will be rebuilt; files are rehashed once)`);
      return;
    }
    this.disk.close();
    this.disk = new CacheFile(buf, fd);
    this.index = parsed.index;
    this.index.setSource(this.disk);
    this.loose = new Map();
    this.fileEnd = buf.length;
    this.fileRecords = parsed.records;
    this.tailRecords = parsed.tail;
    this.mustRewrite = parsed.problem !== null;
    if (parsed.problem) this.log.warn(`cache ${this.file}: ${parsed.problem}; kept the ${parsed.index.size} entries before it (it will be rewritten)`);
    // A long tail (e.g. a cold start that ended before settle()) costs a CRC per record at every
    // load: fold it into the snapshot at the next flush (the indexer flushes once its first scan
    // is done).
    this.foldLongTail();
  }

  private foldLongTail(): boolean {
    if (this.tailRecords + this.pending.length <= 1000 || this.tailRecords + this.pending.length <= this.size / 4) return false;
    this.mustRewrite = true;
    this.rewriteDue = true;
    return true;
  }

  settle(): void {
    if (this.foldLongTail()) this.scheduleFlush();
  }

  /** The buffer `locate` found the record in. */
  private found: Buffer = this.disk.buf;

  /** Where the record of relPath starts in `found` (a loose record, the file as read, or the record just read), or -1. */
  private locate(relPath: string): number {
    const rec = this.loose.get(relPath);
    if (rec !== undefined) {
      this.found = rec;
      return 0;
    }
    const off = this.index.get(relPath);
    if (off === undefined) return -1;
    const at = this.disk.at(off);
    this.found = this.disk.buf;
    return at;
  }

  lookup(relPath: string, stamp: FileStamp): CacheEntry | undefined {
    const at = this.locate(relPath);
    if (at < 0) return undefined;
    const buf = this.found;
    return stampMatches(buf, at, stamp) ? decodeSet(buf, at) : undefined;
  }

  fill(relPath: string, stamp: FileStamp, target: DigestTarget, strings: StringMaker): boolean {
    const at = this.locate(relPath);
    if (at < 0) return false;
    const buf = this.found;
    if (!stampMatches(buf, at, stamp)) return false;
    fillSet(buf, at, target, strings);
    return true;
  }

  set(relPath: string, entry: CacheEntry): void {
    const rec = encodeEntry(relPath, entry);
    if (!rec) {
      this.delete(relPath);
      return;
    }
    this.index.remove(relPath);
    this.loose.set(relPath, rec);
    this.touched?.add(relPath);
    this.append(rec);
  }

  update(relPath: string, patch: Partial<CacheData>): void {
    const at = this.locate(relPath);
    if (at < 0) return;
    this.set(relPath, { ...decodeSet(this.found, at), ...patch });
  }

  delete(relPath: string): void {
    if (!this.loose.delete(relPath) && !this.index.remove(relPath)) return;
    this.touched?.add(relPath);
    const rec = encodeDelete(relPath);
    if (rec) this.append(rec);
    else this.mustRewrite = true;
  }

  /**
   * Entries asked for since the load (lookup, fill) are kept without asking `keep`: the caller
   * listed them. Called once the first scan is done: from then on the records are read from the
   * file, not kept in memory.
   */
  retain(keep: (relPath: string) => boolean): void {
    for (const rel of [...this.loose.keys()]) if (!keep(rel)) this.delete(rel);
    const gone: string[] = [];
    for (const off of this.index.offsets(true)) {
      const rel = this.index.keyAt(off);
      if (rel !== null && !keep(rel)) gone.push(rel);
    }
    for (const rel of gone) this.delete(rel);
    this.disk.dropBase();
    this.index.trustOrder(0, 0);
    this.found = this.disk.buf;
  }

  get size(): number {
    return this.index.size + this.loose.size;
  }

  private append(rec: Buffer): void {
    this.pending.push(rec);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (!this.timer && !this.closed) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.flush();
      }, this.delayMs);
      this.timer.unref();
    }
  }

  /** Superseded records outnumber live entries (the file is mostly dead weight): rewrite. */
  private get worthCompacting(): boolean {
    return this.fileRecords + this.pending.length > 2 * this.size + 1000;
  }

  /** Append what changed (or rewrite the file when that is due), in order. */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.writing = this.writing.then(async () => {
      if (this.closed || (!this.pending.length && !this.worthCompacting && !this.rewriteDue)) return;
      try {
        await fsp.mkdir(path.dirname(this.file), { recursive: true });
        if (!this.mustRewrite && !(await this.stillOurs())) {
          this.mustRewrite = true;
          if (!this.replacedWarned) this.log.warn(`cache ${this.file} was removed or replaced by something else: rewriting it from the entries in memory`);
          this.replacedWarned = true;
        }
        if (this.mustRewrite || this.worthCompacting) await this.compact();
        else await this.appendPending();
        this.writeFailed = false;
      } catch (err) {
        // The file on disk may now lack some entries (recomputed after a restart), never hold
        // wrong ones; it is rewritten whole at the next flush.
        this.mustRewrite = true;
        this.rewriteDue = this.size > 0;
        if (!this.writeFailed) this.log.warn({ err }, `cannot write cache ${this.file} (digests will be recomputed after a restart)`);
        this.writeFailed = true;
      }
    });
    return this.writing;
  }

  /** Is the file at our path still the one we hold open (not removed, not replaced)? */
  private async stillOurs(): Promise<boolean> {
    if (this.disk.fd < 0) return false;
    try {
      const [mine, there] = await Promise.all([fstatFd(this.disk.fd), fsp.stat(this.file)]);
      return mine.ino === there.ino && mine.dev === there.dev && mine.size === this.fileEnd;
    } catch {
      return false;
    }
  }

  /** Write the pending records at the end of the file; once written, they are found by offset. */
  private async appendPending(): Promise<void> {
    const recs = this.pending;
    this.pending = [];
    if (!recs.length) return;
    const data = recs.length === 1 ? recs[0] : Buffer.concat(recs);
    // (On failure they stay loose: the rewrite that follows writes them.)
    await writeAt(this.disk.fd, data, data.length, this.fileEnd);
    let off = this.fileEnd;
    this.fileEnd += data.length;
    this.fileRecords += recs.length;
    this.tailRecords += recs.length;
    for (const rec of recs) {
      if (rec[4] === SET) {
        const key = recordKey(rec, 0);
        // (Set again or deleted since: that later record is the entry.)
        if (this.loose.get(key) === rec) {
          this.loose.delete(key);
          this.index.addNew(off, recordKeyHash(rec, 0));
        }
      }
      off += rec.length;
    }
  }

  /**
   * One snapshot of every live entry, streamed to a temp file in file order (records read from
   * the old file in chunks, never a whole second snapshot in memory) and renamed over: never
   * half-written, and a failure leaves the old file and the entries as they were. The records
   * are then read from the new file (its descriptor, the one written, is kept).
   */
  private async compact(): Promise<void> {
    this.pending = [];
    const offsets = this.index.sortedOffsets();
    const looseNow = [...this.loose];
    const old = this.disk;
    const next = new KeyIndex(new CacheFile(null, -1), offsets.length + looseNow.length);
    const hdr = header(this.scope);
    const tmp = `${this.file}.${process.pid}.${Date.now()}.tmp`;
    this.touched = new Set();
    let fd = -1;
    try {
      fd = await openFd(tmp, 'w+');
      const out = Buffer.allocUnsafe(CHUNK + MAX_FRAME);
      let outLen = hdr.copy(out, 0);
      /** Where out[0] goes in the file. */
      let outAt = 0;
      const blockAt = outLen;
      out.writeUInt32LE(0, outLen);
      out[outLen + 4] = BLOCK;
      outLen += 5;
      let crc = crc32(out.subarray(blockAt + 4, outLen));
      let crcFrom = outLen;
      let records = 0;
      /** Copy the frame at src[at] into the output (and index it there); true when a chunk is ready to write. */
      const put = (src: Buffer, at: number): boolean => {
        const total = src.readUInt32LE(at) + 8;
        src.copy(out, outLen, at, at + total);
        next.addNew(outAt + outLen, recordKeyHash(src, at));
        outLen += total;
        records++;
        return outLen >= CHUNK;
      };
      const drain = async (): Promise<void> => {
        crc = crc32(out.subarray(crcFrom, outLen), crc);
        await writeAt(fd, out, outLen, outAt);
        outAt += outLen;
        outLen = 0;
        crcFrom = 0;
      };
      // The old file's live records, in its order: from memory while it is kept, else read a chunk at a time.
      const win = Buffer.allocUnsafe(CHUNK + MAX_FRAME);
      let winAt = 0;
      let winLen = 0;
      for (const off of offsets) {
        const base = old.base;
        if (base !== null && off < base.length) {
          if (put(base, off)) await drain();
          continue;
        }
        let at = off - winAt;
        if (at < 0 || at + 4 > winLen || at + win.readUInt32LE(at) + 8 > winLen) {
          winAt = off;
          winLen = await readAt(old.fd, win, win.length, off);
          at = 0;
        }
        // (Checked again: bytes changed under us are dropped, never sealed into the new snapshot.)
        if (frameOk(win, at, winLen) && win[at + 4] === SET && put(win, at)) await drain();
      }
      for (const [, rec] of looseNow) if (put(rec, 0)) await drain();
      crc = crc32(out.subarray(crcFrom, outLen), crc);
      out.writeUInt32LE(crc, outLen);
      outLen += 4;
      const end = outAt + outLen;
      const bodyLen = end - 4 - (blockAt + 4);
      if (outAt === 0) out.writeUInt32LE(bodyLen, blockAt);
      await writeAt(fd, out, outLen, outAt);
      if (outAt !== 0) {
        const len = Buffer.allocUnsafe(4);
        len.writeUInt32LE(bodyLen, 0);
        await writeAt(fd, len, 4, blockAt);
      }
      await fsp.rename(tmp, this.file);
      // Switch to the new file (nothing below awaits: no find sees half of it).
      const disk = new CacheFile(null, fd);
      fd = -1;
      next.setSource(disk);
      for (const rel of this.touched) next.remove(rel);
      for (const [rel, rec] of looseNow) if (this.loose.get(rel) === rec) this.loose.delete(rel);
      this.index = next;
      this.disk = disk;
      old.close();
      this.fileEnd = end;
      this.fileRecords = records;
      this.tailRecords = 0;
      this.mustRewrite = false;
      this.rewriteDue = false;
    } catch (err) {
      if (fd >= 0) await closeFd(fd).catch(() => {});
      await fsp.rm(tmp, { force: true }).catch(() => {});
      throw err;
    } finally {
      this.touched = null;
    }
  }

  /** Write what is pending and close the file (the cache answers nothing from the file after this). */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.disk.close();
  }
}
