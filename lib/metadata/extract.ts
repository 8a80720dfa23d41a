/**
 * Extraction of the core metadata file (wheel `*.dist-info/METADATA`, sdist
 * `<top>/PKG-INFO`, egg `EGG-INFO/PKG-INFO`) from Python distributions: the public API.
 *
 * Runs inside worker threads: no logging, no mutable module state. Every
 * public function resolves a result object; none of them throws or rejects.
 * A failure carries an ArchiveErrorCode (callers decide by it) and a message.
 * Archives are treated as hostile: entry names are validated, sizes and
 * compression ratios are checked before inflating, inflated and decompressed
 * byte counts are capped, and every file descriptor / stream is released
 * before the promise resolves.
 *
 * The parts: selection.ts (which member is the metadata, shared by both implementations),
 * job.ts (one streaming extraction's lifecycle and limits), zip-reader.ts and tar-reader.ts
 * (the streaming readers), zip-sync.ts and tar-sync.ts (the in-memory fast path),
 * archive-errors.ts (the coded errors).
 */
import fs, { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { Options as ZipOptions, ZipFile } from 'yauzl';
import { yauzl } from './yauzl.js';
import { archiveError, corrupt, oneLine } from './archive-errors.js';
import { Job, resolveLimits } from './job.js';
import { TarSelection, ZipSelection } from './selection.js';
import type { extractFromTarGz } from './tar-reader.js';
import { extractTarGzSync } from './tar-sync.js';
import type { ArchiveKind, ExtractLimits, ExtractResult } from './types.js';
import { extractFromZip, type ZipOpener } from './zip-reader.js';
import { extractZipSync } from './zip-sync.js';

export { DEFAULT_LIMITS } from './job.js';

export function extractMetadata(
  path: string,
  kind: ArchiveKind,
  limits?: Partial<ExtractLimits>,
): Promise<ExtractResult> {
  return run(kind, limits, {
    openZip: (options, cb) => openZipFile(path, options, cb),
    openStream: () => createReadStream(path),
  });
}

/**
 * yauzl.open, except that a file that is no zip has its descriptor closed before the callback:
 * yauzl.open starts the close and calls back at once, so the extraction's promise could resolve
 * (and a caller count its descriptors) while the close was still queued in the thread pool.
 */
const openZipFile = (path: string, options: ZipOptions, cb: (err: Error | null, zipfile?: ZipFile) => void): void => {
  fs.open(path, 'r', (err, fd) => {
    if (err) return cb(err);
    yauzl.fromFd(fd, options, (e, zipfile) => {
      if (!e) return cb(null, zipfile);
      fs.close(fd, () => cb(e));
    });
  });
};

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
      default:
        return unsupported(kind);
    }
  } catch {
    // unexpected: the streaming implementation reports it its own way
    return null;
  }
}

// ---------------------------------------------------------------------------
// plumbing

interface Source {
  openZip: ZipOpener;
  openStream: () => Readable;
}

function unsupported(kind: ArchiveKind): ExtractResult {
  switch (kind) {
    case 'tar.bz2':
      return archiveError('UNSUPPORTED_KIND', 'bz2 not supported');
    case 'tar.xz':
      return archiveError('UNSUPPORTED_KIND', 'xz not supported');
    default:
      return archiveError('UNSUPPORTED_KIND', `unsupported archive kind: ${String(kind)}`);
  }
}

/**
 * The streaming tar reader (tar-stream and its streams), loaded with the first .tar.gz that is
 * not read in memory: wheels and the in-memory path never need it. (The one piece of module
 * state here: a memoized import.)
 */
let tarReader: Promise<typeof extractFromTarGz> | null = null;
const loadTarReader = (): Promise<typeof extractFromTarGz> => (tarReader ??= import('./tar-reader.js').then((m) => m.extractFromTarGz));

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
          job.fail(corrupt('zip', oneLine(err)));
        }
        return job.promise;
      }
      case 'tar.gz':
      case 'tgz':
        return loadTarReader().then(
          (extractFromTarGz) => {
            const job = new Job(limits.timeoutMs);
            try {
              extractFromTarGz(source.openStream, limits, job);
            } catch (err) {
              job.fail(corrupt('tar', oneLine(err)));
            }
            return job.promise;
          },
          (err: unknown) => archiveError('INTERNAL', oneLine(err)),
        );
      default:
        return Promise.resolve(unsupported(kind));
    }
  } catch (err) {
    return Promise.resolve(archiveError('INTERNAL', oneLine(err)));
  }
}
