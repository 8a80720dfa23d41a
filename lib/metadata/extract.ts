/**
 * Extraction of the core metadata file (wheel `*.dist-info/METADATA`, sdist
 * `<top>/PKG-INFO`, egg `EGG-INFO/PKG-INFO`) from Python distributions.
 *
 * Runs inside worker threads: no logging, no mutable module state. Every
 * public function resolves a result object; none of them throws or rejects.
 * Archives are treated as hostile: entry names are validated, sizes and
 * compression ratios are checked before inflating, inflated and decompressed
 * byte counts are capped, and every file descriptor / stream is released
 * before the promise resolves.
 */
import { createReadStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { EventEmitter } from 'node:events';
import * as zlib from 'node:zlib';
import yauzl from 'yauzl';
import type { Entry as ZipEntry, Options as ZipOptions, ZipFile } from 'yauzl';
import tarStream from 'tar-stream';
import { extractZipSync, type ZipEntryFields, type ZipSelector, type ZipStep } from './zip-sync.js';
import { extractTarGzSync, type TarEntryType, type TarSelector, type TarStep } from './tar-sync.js';

export type ArchiveKind = 'wheel' | 'zip' | 'tar.gz' | 'tgz' | 'tar.bz2' | 'tar.xz' | 'egg';

export interface ExtractLimits {
  /** A METADATA/PKG-INFO larger than this is refused. */
  maxMetadataBytes: number;
  /** A zip entry whose uncompressed/compressed ratio exceeds this is refused. */
  maxRatio: number;
  /** Tar streams: refuse after decompressing this many bytes without finding PKG-INFO. */
  maxScanBytes: number;
  /** Refuse archives with more entries than this. */
  maxEntries: number;
  /** Give up after this long. */
  timeoutMs: number;
}

export const DEFAULT_LIMITS: ExtractLimits = Object.freeze({
  maxMetadataBytes: 8 * 1024 * 1024,
  maxRatio: 200,
  maxScanBytes: 512 * 1024 * 1024,
  maxEntries: 200_000,
  timeoutMs: 10_000,
});

export type ExtractResult =
  | { ok: true; bytes: Buffer; entry: string }
  | { ok: false; error: string };

/** How long cleanup may wait for file descriptors to be closed before resolving anyway. */
const CLOSE_GRACE_MS = 2_000;
/** setTimeout's largest delay; bigger values (and Infinity) would fire immediately. */
const MAX_TIMER_MS = 2_147_483_647;

// ---------------------------------------------------------------------------
// public API

export function extractMetadata(
  path: string,
  kind: ArchiveKind,
  limits?: Partial<ExtractLimits>,
): Promise<ExtractResult> {
  return run(kind, limits, {
    openZip: (options, cb) => yauzl.open(path, options, cb),
    openStream: () => createReadStream(path),
  });
}

/**
 * Same results as `extractMetadata` on a file with these bytes. Answered synchronously in
 * memory (`extractMetadataSync`) when possible, else by the streaming implementation.
 */
export function extractMetadataFromBuffer(
  buf: Buffer,
  kind: ArchiveKind,
  limits?: Partial<ExtractLimits>,
): Promise<ExtractResult> {
  const fast = extractMetadataSync(buf, kind, limits);
  if (fast !== null) return Promise.resolve(fast);
  return extractMetadataFromBufferStreaming(buf, kind, limits);
}

/** The streaming implementation on a buffer (what `extractMetadataFromBuffer` falls back to). */
export function extractMetadataFromBufferStreaming(
  buf: Buffer,
  kind: ArchiveKind,
  limits?: Partial<ExtractLimits>,
): Promise<ExtractResult> {
  return run(kind, limits, {
    openZip: (options, cb) => yauzl.fromBuffer(buf, options, cb),
    openStream: () => Readable.from([buf], { objectMode: false }),
  });
}

/**
 * The in-memory fast path: parses the zip central directory / gunzips and walks the tar
 * headers synchronously, with the same selection rules, limits and error messages as the
 * streaming implementation. Returns null where it cannot be sure to give the streaming
 * implementation's answer (ZIP64, tarballs that decompress to more than min(16 MiB,
 * maxScanBytes) or are over 4 MiB compressed, gzip/deflate data errors after some output,
 * degenerate tar headers): the caller must then use the streaming implementation. Its work is
 * bounded by the limits and the buffer size, so `timeoutMs` does not apply. Never throws.
 */
export function extractMetadataSync(
  buf: Buffer,
  kind: ArchiveKind,
  partial?: Partial<ExtractLimits>,
): ExtractResult | null {
  try {
    const limits = resolveLimits(partial);
    switch (kind) {
      case 'wheel':
      case 'zip':
      case 'egg':
        return extractZipSync(buf, new ZipSelection(kind, limits));
      case 'tar.gz':
      case 'tgz':
        return extractTarGzSync(buf, new TarSelection(limits), limits);
      case 'tar.bz2':
        return { ok: false, error: 'bz2 not supported' };
      case 'tar.xz':
        return { ok: false, error: 'xz not supported' };
      default:
        return { ok: false, error: `unsupported archive kind: ${String(kind)}` };
    }
  } catch {
    // unexpected: the streaming implementation reports it its own way
    return null;
  }
}

// ---------------------------------------------------------------------------
// plumbing

type ZipOpener = (options: ZipOptions, cb: (err: Error | null, zipfile: ZipFile) => void) => void;

interface Source {
  openZip: ZipOpener;
  openStream: () => Readable;
}

function resolveLimits(partial: Partial<ExtractLimits> | undefined): ExtractLimits {
  const pick = (key: keyof ExtractLimits): number => {
    const v = partial?.[key];
    return typeof v === 'number' && !Number.isNaN(v) && v >= 0 ? v : DEFAULT_LIMITS[key];
  };
  return {
    maxMetadataBytes: pick('maxMetadataBytes'),
    maxRatio: pick('maxRatio'),
    maxScanBytes: pick('maxScanBytes'),
    maxEntries: pick('maxEntries'),
    timeoutMs: Math.min(Math.max(pick('timeoutMs'), 1), MAX_TIMER_MS),
  };
}

function errorMessage(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  // one line only
  return msg.replace(/\s+/g, ' ').trim() || 'unknown error';
}

function isSystemError(err: unknown): boolean {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string'
    && /^E[A-Z]+$/.test((err as NodeJS.ErrnoException).code ?? '');
}

function noop(): void {
  /* swallow late events from destroyed streams */
}

type Cleanup = () => Promise<void> | void;

/**
 * One extraction: settles exactly once (success, failure or timeout), runs the
 * registered cleanups, waits (bounded) for them, then resolves.
 */
class Job {
  readonly promise: Promise<ExtractResult>;
  private resolveFn: (r: ExtractResult) => void = noop;
  private done = false;
  private readonly timer: NodeJS.Timeout;
  private readonly cleanups: Cleanup[] = [];

  constructor(timeoutMs: number) {
    this.promise = new Promise<ExtractResult>((resolve) => {
      this.resolveFn = resolve;
    });
    this.timer = setTimeout(() => this.fail('timed out'), timeoutMs);
  }

  get settled(): boolean {
    return this.done;
  }

  onCleanup(fn: Cleanup): void {
    this.cleanups.push(fn);
  }

  succeed(bytes: Buffer, entry: string): void {
    this.finish({ ok: true, bytes, entry });
  }

  fail(error: string): void {
    this.finish({ ok: false, error });
  }

  private finish(result: ExtractResult): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    const waits: Promise<void>[] = [];
    for (const fn of this.cleanups) {
      try {
        const p = fn();
        if (p) waits.push(p.catch(noop));
      } catch {
        /* cleanup must never prevent resolution */
      }
    }
    if (waits.length === 0) {
      this.resolveFn(result);
      return;
    }
    let grace: NodeJS.Timeout | undefined;
    const graceP = new Promise<void>((resolve) => {
      grace = setTimeout(resolve, CLOSE_GRACE_MS);
    });
    void Promise.race([Promise.all(waits), graceP]).then(() => {
      clearTimeout(grace);
      this.resolveFn(result);
    });
  }
}

function run(kind: ArchiveKind, partial: Partial<ExtractLimits> | undefined, source: Source): Promise<ExtractResult> {
  try {
    const limits = resolveLimits(partial);
    switch (kind) {
      case 'wheel':
      case 'zip':
      case 'egg': {
        const job = new Job(limits.timeoutMs);
        try {
          extractFromZip(source.openZip, kind, limits, job);
        } catch (err) {
          job.fail(`corrupt zip: ${errorMessage(err)}`);
        }
        return job.promise;
      }
      case 'tar.gz':
      case 'tgz': {
        const job = new Job(limits.timeoutMs);
        try {
          extractFromTarGz(source.openStream, limits, job);
        } catch (err) {
          job.fail(`corrupt tar: ${errorMessage(err)}`);
        }
        return job.promise;
      }
      case 'tar.bz2':
        return Promise.resolve({ ok: false, error: 'bz2 not supported' });
      case 'tar.xz':
        return Promise.resolve({ ok: false, error: 'xz not supported' });
      default:
        return Promise.resolve({ ok: false, error: `unsupported archive kind: ${String(kind)}` });
    }
  } catch (err) {
    return Promise.resolve({ ok: false, error: errorMessage(err) });
  }
}

/**
 * Splits an archive entry name into segments, or returns null when the name
 * is unsafe/unusable: absolute, drive-letter, backslashes, NUL, `..`, `.`
 * or empty segments. Such entries are never matched.
 */
function safeSegments(name: string): string[] | null {
  if (name.length === 0 || name.includes('\\') || name.includes('\0')) return null;
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return null;
  const parts = name.split('/');
  for (const p of parts) {
    if (p === '' || p === '.' || p === '..') return null;
  }
  return parts;
}

/** `<one directory>/<file>` where the directory is not a `*.egg-info` one. */
function isTopLevelPkgInfo(parts: string[] | null): boolean {
  return parts !== null && parts.length === 2 && parts[1] === 'PKG-INFO' && !parts[0].endsWith('.egg-info');
}

function isWheelMetadata(parts: string[] | null): boolean {
  return parts !== null && parts.length === 2 && parts[1] === 'METADATA'
    && parts[0].endsWith('.dist-info') && parts[0].length > '.dist-info'.length;
}

// ---------------------------------------------------------------------------
// entry selection, shared by the streaming and the in-memory implementations

/** Which zip entry is the metadata, and what makes the archive unacceptable. */
class ZipSelection implements ZipSelector {
  readonly label: string;
  private readonly missing: string;
  private entriesSeen = 0;
  private found: { bytes: Buffer; entry: string; dir: string } | null = null;

  constructor(private readonly kind: 'wheel' | 'zip' | 'egg', private readonly limits: ExtractLimits) {
    this.label = kind === 'wheel' ? 'METADATA' : 'PKG-INFO';
    this.missing = kind === 'wheel'
      ? 'no .dist-info/METADATA in wheel'
      : kind === 'egg' ? 'no EGG-INFO/PKG-INFO in egg' : 'no PKG-INFO in sdist zip';
  }

  private matches(parts: string[] | null): boolean {
    if (this.kind === 'wheel') return isWheelMetadata(parts);
    if (this.kind === 'egg') return parts !== null && parts.length === 2 && parts[0] === 'EGG-INFO' && parts[1] === 'PKG-INFO';
    return isTopLevelPkgInfo(parts);
  }

  checkEntryCount(count: number): string | null {
    return count > this.limits.maxEntries ? `too many entries: ${count} > ${this.limits.maxEntries}` : null;
  }

  consider(entry: ZipEntryFields): ZipStep {
    this.entriesSeen += 1;
    if (this.entriesSeen > this.limits.maxEntries) {
      return { action: 'fail', error: `too many entries: more than ${this.limits.maxEntries}` };
    }
    let name: string;
    try {
      // decoded like Python's zipfile (UTF-8 flag, else CP437; the Info-ZIP Unicode Path
      // extra field is ignored) so we see the names pip sees; strict: backslashes are kept,
      // and then refused by safeSegments
      name = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, [], true);
    } catch {
      return { action: 'skip' };
    }
    // (a cheap necessary condition first: every match ends so)
    if (!name.endsWith(this.kind === 'wheel' ? '/METADATA' : '/PKG-INFO')) return { action: 'skip' };
    const parts = safeSegments(name);
    if (parts === null || !this.matches(parts)) return { action: 'skip' };
    const dir = parts[0] ?? '';
    if (this.kind === 'wheel' && this.found !== null) {
      return { action: 'fail', error: this.found.dir === dir ? `duplicate entry ${name}` : 'two .dist-info directories' };
    }
    const problem = checkZipEntry(entry, this.label, this.limits);
    if (problem !== null) return { action: 'fail', error: problem };
    return { action: 'read', name, dir };
  }

  verify(bytes: Buffer, entry: ZipEntryFields): string | null {
    if (bytes.length !== entry.uncompressedSize) {
      return `corrupt zip: ${this.label}: expected ${entry.uncompressedSize} bytes, got ${bytes.length}`;
    }
    if ((zlib.crc32(bytes) >>> 0) !== (entry.crc32 >>> 0)) return `corrupt zip: ${this.label}: CRC-32 mismatch`;
    return null;
  }

  accept(bytes: Buffer, name: string, dir: string): ExtractResult | null {
    // wheels: keep scanning, a second .dist-info directory must be refused
    if (this.kind === 'wheel') {
      this.found = { bytes, entry: name, dir };
      return null;
    }
    return { ok: true, bytes, entry: name };
  }

  end(): ExtractResult {
    return this.found !== null ? { ok: true, bytes: this.found.bytes, entry: this.found.entry } : { ok: false, error: this.missing };
  }
}

/** Which tar entry is the sdist's PKG-INFO. */
class TarSelection implements TarSelector {
  private entries = 0;

  constructor(private readonly limits: ExtractLimits) {}

  consider(name: string, type: TarEntryType | null | undefined, size: number): TarStep {
    this.entries += 1;
    if (this.entries > this.limits.maxEntries) {
      return { action: 'fail', error: `too many entries: more than ${this.limits.maxEntries}` };
    }
    // (a cheap necessary condition first: every match ends so)
    if (!name.endsWith('/PKG-INFO')) return { action: 'skip' };
    // `tar -C dir .` style archives prefix every name with './'
    const parts = safeSegments(name.replace(/^(\.\/)+/, ''));
    const isFile = type === 'file' || type === 'contiguous-file' || type == null;
    if (!isFile || !isTopLevelPkgInfo(parts)) return { action: 'skip' };
    if (size > this.limits.maxMetadataBytes) {
      return { action: 'fail', error: `PKG-INFO is larger than ${this.limits.maxMetadataBytes} bytes` };
    }
    return { action: 'read' };
  }
}

function waitForEvent(emitter: EventEmitter, event: string): Promise<void> {
  return new Promise<void>((resolve) => emitter.once(event, () => resolve()));
}

// ---------------------------------------------------------------------------
// zip (wheel, sdist .zip, egg)

function extractFromZip(openZip: ZipOpener, kind: 'wheel' | 'zip' | 'egg', limits: ExtractLimits, job: Job): void {
  const selection = new ZipSelection(kind, limits);

  let zip: ZipFile | null = null;
  let fdClosed = false;
  let awaitingEntry = false;
  let closeRequested = false;
  let activeStream: Readable | null = null;

  const closeZip = (): void => {
    if (zip === null) return;
    if (awaitingEntry) {
      // a central-directory read is in flight: close when it completes so the
      // descriptor is never closed under a pending read
      closeRequested = true;
      return;
    }
    if (zip.isOpen) zip.close();
  };

  job.onCleanup(() => {
    if (activeStream !== null) {
      activeStream.on('error', noop);
      activeStream.destroy();
      activeStream = null;
    }
    if (zip === null) return;
    const z = zip;
    closeZip();
    if (fdClosed || !isFdReader(z)) return;
    return waitForEvent(z, 'close');
  });

  const options: ZipOptions = {
    lazyEntries: true,
    autoClose: true,
    validateEntrySizes: true,
    // names are decoded and validated by us: yauzl would abort the whole
    // archive on a `../` name, we only want to ignore such entries
    decodeStrings: false,
    strictFileNames: true,
  };

  openZip(options, (err, zipfile) => {
    if (err || !zipfile) {
      if (!job.settled) {
        job.fail(isSystemError(err) ? `cannot read file: ${errorMessage(err)}` : `corrupt zip: ${errorMessage(err)}`);
      }
      return;
    }
    zip = zipfile;
    zipfile.on('error', (e: unknown) => {
      awaitingEntry = false;
      if (!job.settled) job.fail(`corrupt zip: ${errorMessage(e)}`);
      if (closeRequested) closeZip();
    });
    zipfile.once('close', () => {
      fdClosed = true;
    });
    if (job.settled) {
      closeZip();
      return;
    }
    const tooMany = selection.checkEntryCount(zipfile.entryCount);
    if (tooMany !== null) {
      job.fail(tooMany);
      return;
    }

    const next = (): void => {
      if (job.settled) return;
      awaitingEntry = true;
      zipfile.readEntry();
    };

    const settle = (result: ExtractResult): void => {
      if (result.ok) job.succeed(result.bytes, result.entry);
      else job.fail(result.error);
    };

    zipfile.on('end', () => {
      awaitingEntry = false;
      if (closeRequested) closeZip();
      if (job.settled) return;
      settle(selection.end());
    });

    zipfile.on('entry', (entry: ZipEntry) => {
      awaitingEntry = false;
      if (job.settled) {
        closeZip();
        return;
      }
      const step = selection.consider(entry);
      if (step.action === 'skip') {
        next();
        return;
      }
      if (step.action === 'fail') {
        job.fail(step.error);
        return;
      }
      readZipEntry(zipfile, entry, selection, limits, job, (s) => {
        activeStream = s;
      }, (bytes) => {
        activeStream = null;
        if (job.settled) return;
        const result = selection.accept(bytes, step.name, step.dir);
        if (result === null) next();
        else settle(result);
      });
    });

    next();
  });
}

/** True when the zip was opened from a file (its reader closes a descriptor and emits 'close'). */
function isFdReader(zip: ZipFile): boolean {
  const reader: unknown = Reflect.get(zip, 'reader');
  return typeof reader === 'object' && reader !== null && typeof Reflect.get(reader, 'fd') === 'number';
}

/** Checks done on central-directory data, before any byte is inflated. */
function checkZipEntry(entry: ZipEntryFields, label: string, limits: ExtractLimits): string | null {
  if ((entry.generalPurposeBitFlag & 0x1) !== 0) return `${label} is encrypted`;
  if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
    return `${label} uses unsupported compression method ${entry.compressionMethod}`;
  }
  if (entry.uncompressedSize > limits.maxMetadataBytes) {
    return `${label} is larger than ${limits.maxMetadataBytes} bytes`;
  }
  if (entry.uncompressedSize > 0) {
    const ratio = entry.compressedSize > 0 ? entry.uncompressedSize / entry.compressedSize : Infinity;
    if (ratio > limits.maxRatio) {
      const shown = Number.isFinite(ratio) ? String(Math.round(ratio)) : 'Infinity';
      return `compression ratio ${shown}:1 exceeds ${limits.maxRatio}:1`;
    }
  }
  return null;
}

function readZipEntry(
  zipfile: ZipFile,
  entry: ZipEntry,
  selection: ZipSelection,
  limits: ExtractLimits,
  job: Job,
  onStream: (s: Readable) => void,
  onDone: (bytes: Buffer) => void,
): void {
  // the central directory may lie: never accept more than it declared, nor
  // more than the limit
  const cap = Math.min(entry.uncompressedSize, limits.maxMetadataBytes);
  const label = selection.label;
  zipfile.openReadStream(entry, (err, stream) => {
    if (err || !stream) {
      if (!job.settled) job.fail(`corrupt zip: ${errorMessage(err)}`);
      return;
    }
    if (job.settled) {
      stream.on('error', noop);
      stream.destroy();
      return;
    }
    onStream(stream);
    const chunks: Buffer[] = [];
    let total = 0;
    stream.on('data', (chunk: Buffer) => {
      if (job.settled) return;
      total += chunk.length;
      if (total > cap) {
        job.fail(`${label} inflates to more than the ${cap} bytes declared`);
        return;
      }
      chunks.push(chunk);
    });
    stream.on('error', (e: unknown) => {
      if (!job.settled) job.fail(`corrupt zip: ${label}: ${errorMessage(e)}`);
    });
    stream.on('end', () => {
      if (job.settled) return;
      const bytes = Buffer.concat(chunks, total);
      const problem = selection.verify(bytes, entry);
      if (problem !== null) {
        job.fail(problem);
        return;
      }
      onDone(bytes);
    });
  });
}

// ---------------------------------------------------------------------------
// tar.gz sdists

function extractFromTarGz(openStream: () => Readable, limits: ExtractLimits, job: Job): void {
  const source = openStream();
  const gunzip = zlib.createGunzip();
  const extract = tarStream.extract();
  const selection = new TarSelection(limits);
  let scanned = 0;
  let readingTarget = false;

  const counter = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
      scanned += chunk.length;
      if (scanned > limits.maxScanBytes && !readingTarget) {
        job.fail(`scanned more than ${limits.maxScanBytes} bytes without finding PKG-INFO`);
        cb();
        return;
      }
      cb(null, chunk);
    },
  });

  job.onCleanup(() => {
    for (const s of [source, gunzip, counter]) {
      s.on('error', noop);
      s.unpipe();
      s.destroy();
    }
    extract.on('error', noop);
    extract.destroy();
    // wait for the file descriptor (if any) to be released
    if (source.closed) return;
    return waitForEvent(source, 'close');
  });

  source.on('error', (e: unknown) => {
    job.fail(isSystemError(e) ? `cannot read file: ${errorMessage(e)}` : `corrupt gzip: ${errorMessage(e)}`);
  });
  gunzip.on('error', (e: unknown) => job.fail(`corrupt gzip: ${errorMessage(e)}`));
  counter.on('error', (e: unknown) => job.fail(`corrupt gzip: ${errorMessage(e)}`));
  extract.on('error', (e: unknown) => job.fail(`corrupt tar: ${errorMessage(e)}`));
  extract.on('finish', () => job.fail('no PKG-INFO in sdist'));

  extract.on('entry', (header, stream, next) => {
    stream.on('error', noop);
    if (job.settled) return;
    const original = header.name;
    const size = header.size ?? 0;
    const step = selection.consider(original, header.type, size);
    if (step.action === 'fail') {
      job.fail(step.error);
      return;
    }
    if (step.action === 'skip') {
      stream.on('end', () => {
        if (!job.settled) next();
      });
      stream.resume();
      return;
    }
    readingTarget = true;
    const chunks: Buffer[] = [];
    let total = 0;
    stream.on('data', (data: unknown) => {
      if (job.settled) return;
      if (!(data instanceof Uint8Array)) {
        job.fail('corrupt tar: unexpected chunk type');
        return;
      }
      const chunk = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      total += chunk.length;
      if (total > size || total > limits.maxMetadataBytes) {
        job.fail(`PKG-INFO is larger than ${Math.min(size, limits.maxMetadataBytes)} bytes`);
        return;
      }
      chunks.push(chunk);
    });
    stream.on('end', () => {
      if (job.settled) return;
      if (total !== size) {
        job.fail(`corrupt tar: PKG-INFO: expected ${size} bytes, got ${total}`);
        return;
      }
      job.succeed(Buffer.concat(chunks, total), original);
    });
  });

  source.pipe(gunzip);
  gunzip.pipe(counter);
  counter.pipe(extract);
}
