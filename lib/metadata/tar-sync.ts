/**
 * Synchronous, in-memory reading of a .tar.gz sdist: `zlib.gunzipSync` (bounded) and a walk
 * over the 512-byte tar headers that follows tar-stream's extract state machine (ustar name +
 * prefix, GNU long names, PAX `path`/`size` records, global PAX headers, base-256 sizes,
 * all-zero blocks, padding), with its error messages. Which entry is wanted is decided by a
 * `TarSelector` (the same rules object the streaming implementation in tar-reader.ts uses).
 *
 * It answers null where it cannot be sure to reach the streaming implementation's answer:
 * output beyond the in-memory cap of 16 MiB or maxScanBytes (gzip bombs, big tarballs, early
 * PKG-INFO in a tarball bigger than a small maxScanBytes), a gzip data error after some output
 * (what the tar parser saw before it depends on stream chunking), and header states where
 * tar-stream goes astray (a directory with data, a size field that is not a number, an empty
 * or size-less long-name/PAX header). The caller then runs the streaming implementation.
 */
import * as zlib from 'node:zlib';
import { archiveError, corrupt, errorCode, oneLine } from './archive-errors.js';
import type { ArchiveError, ExtractLimits, ExtractResult } from './types.js';

/** tar-stream's entry types (`null` for unknown type flags). */
export type TarEntryType =
  | 'file' | 'link' | 'symlink' | 'character-device' | 'block-device' | 'directory' | 'fifo' | 'contiguous-file'
  | 'pax-header' | 'pax-global-header' | 'gnu-long-link-path' | 'gnu-long-path';

export type TarStep = { action: 'skip' } | { action: 'read' } | { action: 'fail'; error: ArchiveError };

/** Entry selection, shared by the streaming and the in-memory readers. */
export interface TarSelector {
  /** Called for every entry tar-stream would emit, in order (long headers already applied). */
  consider(name: string, type: TarEntryType | null, size: number): TarStep;
}

/**
 * Never decompress more than this in memory (per worker thread); bigger tarballs take the
 * streaming path, as do compressed inputs over a quarter of it (they would rarely fit, and the
 * per-file overhead the fast path saves is negligible at that size).
 */
const MAX_IN_MEMORY = 16 * 1024 * 1024;
/** tar-stream's limit on GNU long-name and PAX header data. */
const MAX_HEADER_SIZE = 4 * 1024 * 1024;
/** Fewer output bytes than this cannot make tar-stream emit anything. */
const HEADER_BLOCK = 512;

const INVALID_CHECKSUM = 'Invalid tar header. Maybe the tar is corrupted or it needs to be gunzipped?';
const UNKNOWN_FORMAT = 'Invalid tar header: unknown format.';

/** Deflate cannot expand data more than about this much. */
const MAX_DEFLATE_RATIO = 1032;

/** The gzip trailer's ISIZE: the (last member's) uncompressed size, a hint only. */
function trailerSize(buf: Buffer): number {
  return buf.length >= 18 ? buf.readUInt32LE(buf.length - 4) : 0;
}

/**
 * Finds `<top>/PKG-INFO` in a gzipped tarball held in memory. Returns null when the streaming
 * implementation must decide instead.
 */
export function extractTarGzSync(buf: Buffer, sel: TarSelector, limits: ExtractLimits): ExtractResult | null {
  // Within the cap the streaming path never reaches maxScanBytes either: no scan-limit case here.
  const cap = Math.min(limits.maxScanBytes, MAX_IN_MEMORY);
  if (!(cap >= 1) || buf.length > MAX_IN_MEMORY / 4) return null;
  const isize = trailerSize(buf);
  // an honest tarball over the cap: no point in decompressing the first 16 MiB of it
  if (isize > cap && isize <= buf.length * MAX_DEFLATE_RATIO) return null;
  // output in one piece when the trailer is right (no concatenation); maxOutputLength is
  // what bounds the output
  const chunkSize = isize < cap ? Math.max(16 * 1024, isize + 1) : 64 * 1024;
  let tar: Buffer;
  let gzipError: ArchiveError | null = null;
  try {
    tar = zlib.gunzipSync(buf, { maxOutputLength: cap, chunkSize });
  } catch (err) {
    const code = errorCode(err);
    if (code === 'Z_BUF_ERROR') {
      // truncated: the streaming gunzip emits all it could decompress, the tar parser sees all
      // of it, and only then does the gzip error arrive
      try {
        tar = zlib.gunzipSync(buf, { maxOutputLength: cap, chunkSize, finishFlush: zlib.constants.Z_SYNC_FLUSH });
      } catch {
        return null;
      }
      gzipError = corrupt('gzip', oneLine(err));
    } else if (code !== undefined && code.startsWith('Z_') && failsBeforeOneBlock(buf, code)) {
      // bad header, garbage: the tar parser never got a block to look at
      return corrupt('gzip', oneLine(err));
    } else {
      return null;
    }
  }
  return walkTar(tar, gzipError, sel);
}

/**
 * True when gunzip fails with `code` before it has produced a whole 512-byte block (output
 * chunks of one block: zlib drops the output of a chunk that fails, a whole one is refused).
 */
function failsBeforeOneBlock(buf: Buffer, code: string): boolean {
  try {
    zlib.gunzipSync(buf, { chunkSize: HEADER_BLOCK, maxOutputLength: HEADER_BLOCK - 1 });
    return false;
  } catch (err) {
    return errorCode(err) === code;
  }
}

// ---------------------------------------------------------------------------
// tar-stream's header decoding (headers.js), reproduced; fields are read in place (no
// subarray per field: this runs for every header of every sdist)

function indexOfByte(buf: Buffer, byte: number, offset: number, end: number): number {
  for (; offset < end; offset++) if (buf[offset] === byte) return offset;
  return end;
}

/** UTF-8 text up to the first NUL of a field. */
function decodeStr(buf: Buffer, offset: number, length: number): string {
  return buf.toString('utf8', offset, indexOfByte(buf, 0, offset, offset + length));
}

function parse256(buf: Buffer, offset: number, length: number): number | null {
  let positive: boolean;
  if (buf[offset] === 0x80) positive = true;
  else if (buf[offset] === 0xff) positive = false;
  else return null;
  let sum = 0;
  for (let i = 0; i < length - 1; i++) {
    const byte = buf[offset + length - 1 - i] ?? 0;
    sum += (positive ? byte : 0xff - byte) * Math.pow(256, i);
  }
  return positive ? sum : -1 * sum;
}

/** A numeric field: octal text (NaN when unparsable), base-256, or null (bad base-256 marker). */
function decodeOct(buf: Buffer, offset: number, length: number): number | null {
  if ((buf[offset] ?? 0) & 0x80) return parse256(buf, offset, length);
  const fieldEnd = offset + length;
  let start = offset;
  while (start < fieldEnd && buf[start] === 32) start++;
  const end = indexOfByte(buf, 32, start, fieldEnd);
  while (start < end && buf[start] === 0) start++;
  if (end === start) return 0;
  return parseInt(buf.toString('utf8', start, end), 8);
}

/** The header checksum (its own field counted as spaces); `at + 512` is within `buf`. */
function checksum(buf: Buffer, at: number): number {
  let sum = 8 * 32;
  const fieldStart = at + 148;
  const end = at + 512;
  for (let i = at; i < fieldStart; i++) sum += buf[i];
  for (let j = fieldStart + 8; j < end; j++) sum += buf[j];
  return sum;
}

function toType(flag: number): TarEntryType | null {
  switch (flag) {
    case 0: return 'file';
    case 1: return 'link';
    case 2: return 'symlink';
    case 3: return 'character-device';
    case 4: return 'block-device';
    case 5: return 'directory';
    case 6: return 'fifo';
    case 7: return 'contiguous-file';
    case 72: return 'pax-header';
    case 55: return 'pax-global-header';
    case 27: return 'gnu-long-link-path';
    case 28:
    case 30: return 'gnu-long-path';
    default: return null;
  }
}

/** "ustar" at offset 257 of a header, followed by `sixth` (NUL: ustar/PAX, space: GNU). */
function hasMagic(buf: Buffer, at: number, sixth: number): boolean {
  return buf[at + 257] === 0x75 && buf[at + 258] === 0x73 && buf[at + 259] === 0x74
    && buf[at + 260] === 0x61 && buf[at + 261] === 0x72 && buf[at + 262] === sixth;
}

interface TarHeader {
  name: string;
  size: number | null;
  type: TarEntryType | null;
}

/** The header block at `at`: a header, null for an all-zero block, or an error message. */
function decodeHeader(buf: Buffer, at: number): TarHeader | null | string {
  // tar-stream decodes every field first; none of that can fail, so the order does not matter
  const sum = checksum(buf, at);
  if (sum === 8 * 32) return null;
  if (sum !== decodeOct(buf, at + 148, 8)) return INVALID_CHECKSUM;
  let name = decodeStr(buf, at, 100);
  if (hasMagic(buf, at, 0x00)) {
    // ustar (and PAX): the prefix field
    if (buf[at + 345]) name = `${decodeStr(buf, at + 345, 155)}/${name}`;
  } else if (!(hasMagic(buf, at, 0x20) && buf[at + 263] === 0x20 && buf[at + 264] === 0x00)) {
    return UNKNOWN_FORMAT;
  }
  const flagByte = buf[at + 156] ?? 0;
  return { name, size: decodeOct(buf, at + 124, 12), type: toType(flagByte === 0 ? 0 : flagByte - 48) };
}

/** PAX records, decoded exactly like tar-stream's decodePax (a plain-object assignment). */
function decodePax(data: Buffer, into: Map<string, string>): void {
  let buf = data;
  while (buf.length) {
    let i = 0;
    while (i < buf.length && buf[i] !== 32) i++;
    const len = parseInt(buf.toString('utf8', 0, i), 10);
    if (!len) return;
    const record = buf.subarray(i + 1, len - 1).toString('utf8');
    const keyIndex = record.indexOf('=');
    if (keyIndex === -1) return;
    const key = record.slice(0, keyIndex);
    // `result['__proto__'] = string` is a no-op on a plain object
    if (key !== '__proto__') into.set(key, record.slice(keyIndex + 1));
    buf = buf.subarray(len);
  }
}

/** Padding after `size` bytes of data (tar-stream's `overflow`). */
function padding(size: number): number {
  const rest = size & 511;
  return rest && 512 - rest;
}

/**
 * Walks the (possibly partial) tar. `gzipError` is set when the gzip stream was truncated:
 * running out of data then reports it instead of tar-stream's end-of-data checks.
 */
function walkTar(tar: Buffer, gzipError: ArchiveError | null, sel: TarSelector): ExtractResult | null {
  const len = tar.length;
  let pos = 0;
  let gnuLongPath: string | null = null;
  let pax: Map<string, string> | null = null;
  let paxGlobal: Map<string, string> | null = null;

  /** The data ended; `pending`: in the middle of an entry, its padding or a long header. */
  const ended = (pending: boolean): ExtractResult => {
    if (gzipError !== null) return gzipError;
    if (pending || pos !== len) return corrupt('tar', 'Unexpected end of data');
    return archiveError('NO_METADATA', 'no PKG-INFO in sdist');
  };

  for (;;) {
    if (len - pos < 512) return ended(false);
    const decoded = decodeHeader(tar, pos);
    pos += 512;
    if (decoded === null) continue;
    if (typeof decoded === 'string') return corrupt('tar', decoded);
    let { name, size } = decoded;
    const { type } = decoded;

    if (type === 'gnu-long-path' || type === 'gnu-long-link-path' || type === 'pax-header' || type === 'pax-global-header') {
      if (size !== null && size > MAX_HEADER_SIZE) return corrupt('tar', 'Header exceeds max size');
      // tar-stream's state machine goes astray on these: let it decide
      if (size === null || !(size > 0)) return null;
      if (len - pos < size) return ended(true);
      const data = tar.subarray(pos, pos + size);
      pos += size;
      if (type === 'gnu-long-path') {
        gnuLongPath = decodeStr(data, 0, data.length);
      } else if (type === 'pax-global-header') {
        paxGlobal = new Map();
        decodePax(data, paxGlobal);
      } else if (type === 'pax-header') {
        pax = new Map(paxGlobal ?? []);
        decodePax(data, pax);
      }
      const pad = padding(size);
      if (len - pos < pad) return ended(true);
      pos += pad;
      continue;
    }

    // _applyLongHeaders
    if (gnuLongPath) {
      name = gnuLongPath;
      gnuLongPath = null;
    }
    if (pax !== null) {
      const path = pax.get('path');
      if (path) name = path;
      const paxSize = pax.get('size');
      if (paxSize) size = parseInt(paxSize, 10);
      pax = null;
    }
    // (null >= 0 holds in JavaScript: tar-stream accepts a null size, then stalls on it)
    if (size === null) return null;
    if (!(size >= 0)) return corrupt('tar', 'Invalid header');
    // a directory's data is not skipped by tar-stream, and its entry stream never ends
    if (type === 'directory' && size !== 0) return null;

    const step = sel.consider(name, type, size);
    if (step.action === 'fail') return step.error;
    if (step.action === 'read') {
      if (len - pos < size) return ended(true);
      return { ok: true, bytes: Buffer.from(tar.subarray(pos, pos + size)), entry: name };
    }
    if (size === 0 || type === 'directory') continue;
    if (len - pos < size) return ended(true);
    pos += size;
    const pad = padding(size);
    if (len - pos < pad) return ended(true);
    pos += pad;
  }
}
