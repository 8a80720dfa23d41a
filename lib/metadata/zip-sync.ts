/**
 * Synchronous, in-memory reading of a zip's central directory and of one entry's data: what
 * yauzl (`fromBuffer`, `lazyEntries`, `decodeStrings: false`, `validateEntrySizes: true`)
 * followed by `openReadStream` does, step for step and with the same error messages, without
 * streams, timers or promises. Which entries are wanted is decided by a `ZipSelector` (the
 * same rules object the streaming implementation in zip-reader.ts uses).
 *
 * It answers null where it cannot be sure to reach the streaming implementation's answer
 * (ZIP64 archives, an inflate data error whose detection point depends on stream chunking);
 * the caller then runs the streaming implementation.
 */
import * as zlib from 'node:zlib';
import { corrupt as corruptArchive, errorCode, oneLine } from './archive-errors.js';
import type { ArchiveError, ExtractResult } from './types.js';

/** The central-directory fields the selection rules look at. */
export interface ZipEntryFields {
  generalPurposeBitFlag: number;
  compressionMethod: number;
  compressedSize: number;
  uncompressedSize: number;
  crc32: number;
  fileNameRaw: Buffer;
}

export type ZipStep =
  | { action: 'skip' }
  | { action: 'read'; name: string; dir: string }
  | { action: 'fail'; error: ArchiveError };

/** Entry selection, shared by the streaming and the in-memory readers. */
export interface ZipSelector {
  /** METADATA or PKG-INFO, for error messages. */
  readonly label: string;
  /** An error when the end-of-central-directory record announces too many entries. */
  checkEntryCount(count: number): ArchiveError | null;
  /** Called for every entry, in central-directory order. */
  consider(entry: ZipEntryFields): ZipStep;
  /** The entry's bytes were read completely: length and CRC-32 check. */
  verify(bytes: Buffer, entry: ZipEntryFields): ArchiveError | null;
  /** The wanted entry was read and verified: the final result, or null to keep scanning. */
  accept(bytes: Buffer, name: string, dir: string): ExtractResult | null;
  /** The central directory ended. */
  end(): ExtractResult;
}

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
/** yauzl reads the last 20 + 22 + 65,535 bytes: ZIP64 locator, EOCD record, longest comment. */
const EOCD_SEARCH = 20 + 22 + 0xffff;
/** zlib streams emit their output in chunks of this many bytes (the default chunkSize). */
const ZLIB_CHUNK = 16 * 1024;
/** Largest output chunk allocated up front for an entry (the declared size may lie). */
const MAX_CHUNK = 1024 * 1024;

function corrupt(message: string): ExtractResult {
  return corruptArchive('zip', message);
}

/** Where the end-of-central-directory record starts (the last signature found), or -1. */
function findEocd(buf: Buffer): { at: number; windowStart: number } {
  const windowStart = buf.length - Math.min(EOCD_SEARCH, buf.length);
  for (let i = buf.length - 22; i >= windowStart; i--) {
    // 'P' first: one byte compare per position in long comments or garbage
    if (buf[i] === 0x50 && buf.readUInt32LE(i) === EOCD_SIGNATURE) return { at: i, windowStart };
  }
  return { at: -1, windowStart };
}

/**
 * Reads the archive's central directory and the selected entry. Returns null when the
 * streaming implementation must decide instead.
 */
export function extractZipSync(buf: Buffer, sel: ZipSelector): ExtractResult | null {
  const size = buf.length;
  const { at: eocd, windowStart } = findEocd(buf);
  if (eocd < 0) return corrupt('End of central directory record signature not found. Either not a zip file, or file is truncated.');
  const commentLength = buf.readUInt16LE(eocd + 20);
  const expectedCommentLength = size - eocd - 22;
  if (commentLength !== expectedCommentLength) {
    return corrupt(`Invalid comment length. Expected: ${expectedCommentLength}. Found: ${commentLength}. Are there extra bytes at the end of the file? Or is the end of central dir signature \`PK☺☻\` in the comment?`);
  }
  // ZIP64 (a locator right before the record), or the record's ZIP64 placeholders: yauzl decides
  if (eocd - 20 >= windowStart && buf.readUInt32LE(eocd - 20) === ZIP64_LOCATOR_SIGNATURE) return null;
  const entryCount = buf.readUInt16LE(eocd + 10);
  const centralDirectoryOffset = buf.readUInt32LE(eocd + 16);
  if (entryCount === 0xffff || centralDirectoryOffset === 0xffffffff) return null;
  const diskNumber = buf.readUInt16LE(eocd + 4);
  if (diskNumber !== 0) return corrupt(`multi-disk zip files are not supported: found disk number: ${diskNumber}`);
  const tooMany = sel.checkEntryCount(entryCount);
  if (tooMany !== null) return tooMany;

  let cursor = centralDirectoryOffset;
  for (let n = 0; n < entryCount; n++) {
    if (cursor + 46 > size) return corrupt('unexpected EOF');
    const signature = buf.readUInt32LE(cursor);
    if (signature !== CENTRAL_SIGNATURE) return corrupt(`invalid central directory file header signature: 0x${signature.toString(16)}`);
    const flags = buf.readUInt16LE(cursor + 8);
    if (flags & 0x40) return corrupt('strong encryption is not supported');
    const method = buf.readUInt16LE(cursor + 10);
    const crc32 = buf.readUInt32LE(cursor + 16);
    const compressedSize = buf.readUInt32LE(cursor + 20);
    const uncompressedSize = buf.readUInt32LE(cursor + 24);
    const nameLength = buf.readUInt16LE(cursor + 28);
    const extraLength = buf.readUInt16LE(cursor + 30);
    const commentLen = buf.readUInt16LE(cursor + 32);
    const localHeaderOffset = buf.readUInt32LE(cursor + 42);
    cursor += 46;
    const variable = nameLength + extraLength + commentLen;
    if (variable > 0 && cursor + variable > size) return corrupt('unexpected EOF');
    // extra fields: yauzl parses them all (and fails on a bad length) before anything else
    let zip64Field = false;
    const extraStart = cursor + nameLength;
    for (let i = 0; i < extraLength - 3;) {
      const id = buf.readUInt16LE(extraStart + i);
      const end = i + 4 + buf.readUInt16LE(extraStart + i + 2);
      if (end > extraLength) return corrupt('extra field length exceeds extra field buffer size');
      if (id === 0x0001) zip64Field = true;
      i = end;
    }
    const fileNameRaw = buf.subarray(cursor, cursor + nameLength);
    cursor += variable;
    if (zip64Field && (uncompressedSize === 0xffffffff || compressedSize === 0xffffffff || localHeaderOffset === 0xffffffff)) {
      return null;
    }
    if (method === 0) {
      const expected = uncompressedSize + (flags & 0x1 ? 12 : 0);
      if (compressedSize !== expected) {
        return corrupt(`compressed/uncompressed size mismatch for stored file: ${compressedSize} != ${uncompressedSize}`);
      }
    }
    const entry: ZipEntryFields = { generalPurposeBitFlag: flags, compressionMethod: method, compressedSize, uncompressedSize, crc32, fileNameRaw };
    const step = sel.consider(entry);
    if (step.action === 'skip') continue;
    if (step.action === 'fail') return step.error;
    const data = readEntryData(buf, entry, localHeaderOffset, sel.label);
    if (data === null || !Buffer.isBuffer(data)) return data;
    const problem = sel.verify(data, entry);
    if (problem !== null) return problem;
    const result = sel.accept(data, step.name, step.dir);
    if (result !== null) return result;
  }
  return sel.end();
}

/**
 * The entry's bytes (stored or inflated), an error result, or null (let the streaming
 * implementation decide). Encryption and the compression method were checked by the selector.
 */
function readEntryData(buf: Buffer, entry: ZipEntryFields, localHeaderOffset: number, label: string): Buffer | ExtractResult | null {
  const size = buf.length;
  if (localHeaderOffset + 30 > size) return corrupt('unexpected EOF');
  const signature = buf.readUInt32LE(localHeaderOffset);
  if (signature !== LOCAL_SIGNATURE) return corrupt(`invalid local file header signature: 0x${signature.toString(16)}`);
  // the local header's own name and extra lengths locate the data
  const dataStart = localHeaderOffset + 30 + buf.readUInt16LE(localHeaderOffset + 26) + buf.readUInt16LE(localHeaderOffset + 28);
  if (dataStart + entry.compressedSize > size) {
    return corrupt(`file data overflows file bounds: ${dataStart} + ${entry.compressedSize} > ${size}`);
  }
  const raw = buf.subarray(dataStart, dataStart + entry.compressedSize);
  // a copy: the result must not keep the whole archive alive
  if (entry.compressionMethod === 0) return Buffer.from(raw);
  return inflateEntry(raw, entry.uncompressedSize, label);
}

/**
 * Inflates like yauzl's inflate stream piped into its byte-count assertion: output beyond the
 * declared size is refused at the first 16 KiB chunk that crosses it ("got at least" that
 * chunk's running total), a short output is refused at the end.
 */
function inflateEntry(raw: Buffer, expected: number, label: string): Buffer | ExtractResult | null {
  const streamError = (message: string): ExtractResult => corrupt(`${label}: ${message}`);
  const tooMany = (got: number): ExtractResult =>
    streamError(`too many bytes in the stream. expected ${expected}. got at least ${got}`);
  // the end of the first chunk that goes past the declared size
  const firstChunkOver = (Math.floor(expected / ZLIB_CHUNK) + 1) * ZLIB_CHUNK;
  // Output chunks of the declared size (+1: a longer output is seen in the first chunk): one
  // allocation, no concatenation. The chunk size does not change the answer, only whether
  // there is one: a longer output is refused either way, and a data error (whose detection
  // point depends on chunking) is left to the streaming implementation.
  const chunkSize = Math.max(64, Math.min(expected + 1, MAX_CHUNK));
  let out: Buffer;
  try {
    out = zlib.inflateRawSync(raw, { maxOutputLength: firstChunkOver, chunkSize });
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ERR_BUFFER_TOO_LARGE') return tooMany(firstChunkOver);
    if (code !== 'Z_BUF_ERROR') return null; // a data error: where the stream notices it depends on chunking
    // truncated deflate data: the stream emits everything it could inflate, then fails
    let partial: Buffer;
    try {
      partial = zlib.inflateRawSync(raw, { maxOutputLength: firstChunkOver, chunkSize, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    } catch {
      return null;
    }
    if (partial.length > expected) return tooMany(partial.length);
    return streamError(oneLine(err));
  }
  if (out.length > expected) return tooMany(out.length);
  if (out.length < expected) return streamError(`not enough bytes in the stream. expected ${expected}. got only ${out.length}`);
  return out;
}
