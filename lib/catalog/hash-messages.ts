// The messages between the hash pool and its workers, in a compact form: a batch of a few
// hundred files as one string and typed arrays (copied as blocks by postMessage), where an
// array of objects would cost the structured clone a few microseconds per file on both sides.

import type { ArchiveErrorCode, ArchiveKind } from '../metadata/types.js';
import type { HashResult, HashTask } from './hash-pool.js';

/** The nice value a hashing worker gives its own thread (see hash-worker.ts). */
export const WORKER_NICE = 10;

/**
 * Sent to a worker to make it exit between two slices of files (the pool never terminates a
 * busy worker: see stopWorker in hash-pool.ts).
 */
export const STOP = 'stop';

/** A batch of tasks as the worker receives it. */
export interface TaskBatch {
  ids: Float64Array;
  /** The paths, joined by NUL (which no path contains). */
  paths: string;
  /** Per task: ARCHIVE_KINDS index + 1 (0: hash only) | EXTRA_DIGESTS | URGENT. */
  flags: Uint8Array;
}

const ARCHIVE_KINDS: readonly ArchiveKind[] = ['wheel', 'zip', 'tar.gz', 'tgz', 'tar.bz2', 'tar.xz', 'egg'];
const KIND_MASK = 0x0f;
const EXTRA_DIGESTS = 0x10;
const URGENT = 0x20;

export function encodeTasks(tasks: HashTask[]): TaskBatch {
  const ids = new Float64Array(tasks.length);
  const flags = new Uint8Array(tasks.length);
  for (let i = 0; i < tasks.length; i++) {
    const t = tasks[i];
    ids[i] = t.id;
    flags[i] = (t.archive ? ARCHIVE_KINDS.indexOf(t.archive) + 1 : 0) | (t.extraDigests ? EXTRA_DIGESTS : 0) | (t.urgent ? URGENT : 0);
  }
  return { ids, paths: tasks.map((t) => t.path).join('\0'), flags };
}

export function decodeTasks(batch: TaskBatch): HashTask[] {
  const paths = batch.paths.split('\0');
  const out: HashTask[] = [];
  for (let i = 0; i < batch.ids.length; i++) {
    const f = batch.flags[i];
    const t: HashTask = { id: batch.ids[i], path: paths[i] };
    const kind = ARCHIVE_KINDS[(f & KIND_MASK) - 1];
    if (kind) t.archive = kind;
    if (f & EXTRA_DIGESTS) t.extraDigests = true;
    if (f & URGENT) t.urgent = true;
    out.push(t);
  }
  return out;
}


/**
 * A batch of results as the pool receives it: numbers in one typed array, the hex digests in
 * one string, the other strings in one array, which fields are there in flags.
 */
export interface ResultBatch {
  /** Per result NUMS numbers: id, size, mtimeMs, dev, ino, ctimeMs, metadata size. */
  nums: Float64Array;
  flags: Uint8Array;
  /** sha256 of each ok result, then (with a summary) the metadata's sha256: 64 characters each. */
  hex: string;
  /** Per result in order: error (failed); md5, blake2b-256; name, version, requires-python; metadata error, code. */
  strings: (string | null)[];
}

const NUMS = 7;
const OK = 0x01;
const EXTRA = 0x02;
const METADATA_SET = 0x04;
const SUMMARY = 0x08;
const SERVABLE = 0x10;
const METADATA_ERROR = 0x20;
const TRANSIENT = 0x40;

export function encodeResults(results: HashResult[]): ResultBatch {
  const nums = new Float64Array(results.length * NUMS);
  const flags = new Uint8Array(results.length);
  const hex: string[] = [];
  const strings: (string | null)[] = [];
  for (let i = 0; i < results.length; i++) {
    const r = results[i];
    const at = i * NUMS;
    nums[at] = r.id;
    if (!r.ok) {
      flags[i] = r.transient ? TRANSIENT : 0;
      strings.push(r.error);
      continue;
    }
    let f = OK;
    nums[at + 1] = r.size;
    nums[at + 2] = r.mtimeMs;
    nums[at + 3] = r.dev;
    nums[at + 4] = r.ino;
    nums[at + 5] = r.ctimeMs;
    hex.push(r.sha256);
    if (r.md5 !== undefined && r.blake2b256 !== undefined) {
      f |= EXTRA;
      strings.push(r.md5, r.blake2b256);
    }
    if (r.metadata !== undefined) {
      f |= METADATA_SET;
      if (r.metadata !== null) {
        f |= SUMMARY | (r.metadata.servable ? SERVABLE : 0);
        nums[at + 6] = r.metadata.size;
        hex.push(r.metadata.sha256);
        strings.push(r.metadata.name, r.metadata.version, r.metadata.requiresPython);
      }
    }
    if (r.metadataError !== undefined && r.metadataErrorCode !== undefined) {
      f |= METADATA_ERROR;
      strings.push(r.metadataError, r.metadataErrorCode);
    }
    flags[i] = f;
  }
  return { nums, flags, hex: hex.join(''), strings };
}

/** Every code (a Record, so that a new code fails to compile until it is listed here). */
const ERROR_CODES: Record<ArchiveErrorCode, true> = {
  UNSUPPORTED_KIND: true, UNREADABLE: true, CORRUPT_ZIP: true, CORRUPT_GZIP: true, CORRUPT_TAR: true, TRUNCATED: true,
  TOO_MANY_ENTRIES: true, TOO_LARGE: true, TOO_COMPRESSED: true, SCAN_LIMIT: true, NO_METADATA: true,
  AMBIGUOUS_METADATA: true, ENCRYPTED: true, UNSUPPORTED_COMPRESSION: true, TIMEOUT: true, INTERNAL: true,
};
const isErrorCode = (s: string | null): s is ArchiveErrorCode => s !== null && Object.hasOwn(ERROR_CODES, s);

export function decodeResults(batch: ResultBatch): HashResult[] {
  const { nums, flags, hex, strings } = batch;
  const out: HashResult[] = [];
  let h = 0;
  let s = 0;
  const str = (): string => strings[s++] ?? '';
  const hex64 = (): string => hex.slice(h, (h += 64));
  for (let i = 0; i < flags.length; i++) {
    const f = flags[i];
    const at = i * NUMS;
    const id = nums[at];
    if (!(f & OK)) {
      out.push(f & TRANSIENT ? { id, ok: false, error: str(), transient: true } : { id, ok: false, error: str() });
      continue;
    }
    const r: HashResult = { id, ok: true, size: nums[at + 1], mtimeMs: nums[at + 2], dev: nums[at + 3], ino: nums[at + 4], ctimeMs: nums[at + 5], sha256: hex64() };
    if (f & EXTRA) {
      r.md5 = str();
      r.blake2b256 = str();
    }
    if (f & METADATA_SET) {
      if (f & SUMMARY) {
        const sha256 = hex64();
        r.metadata = { sha256, size: nums[at + 6], name: strings[s++] ?? null, version: strings[s++] ?? null, requiresPython: strings[s++] ?? null, servable: (f & SERVABLE) !== 0 };
      } else r.metadata = null;
    }
    if (f & METADATA_ERROR) {
      r.metadataError = str();
      const code = strings[s++] ?? null;
      r.metadataErrorCode = isErrorCode(code) ? code : 'INTERNAL';
    }
    out.push(r);
  }
  return out;
}
