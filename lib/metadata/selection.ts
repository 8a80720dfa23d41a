// Which archive member is the core metadata file (wheel `*.dist-info/METADATA`, sdist
// `<top>/PKG-INFO`, egg `EGG-INFO/PKG-INFO`), and what makes an archive unacceptable before
// any byte is inflated. Shared by the streaming and the in-memory readers, so both give the
// same answers.

import * as zlib from 'node:zlib';
import { yauzl } from './yauzl.js';
import { archiveError, corrupt } from './archive-errors.js';
import type { ArchiveError, ExtractLimits, ExtractResult } from './types.js';
import type { ZipEntryFields, ZipSelector, ZipStep } from './zip-sync.js';
import type { TarEntryType, TarSelector, TarStep } from './tar-sync.js';

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

/** Which zip entry is the metadata, and what makes the archive unacceptable. */
export class ZipSelection implements ZipSelector {
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

  checkEntryCount(count: number): ArchiveError | null {
    return count > this.limits.maxEntries ? archiveError('TOO_MANY_ENTRIES', `too many entries: ${count} > ${this.limits.maxEntries}`) : null;
  }

  consider(entry: ZipEntryFields): ZipStep {
    this.entriesSeen += 1;
    if (this.entriesSeen > this.limits.maxEntries) {
      return { action: 'fail', error: archiveError('TOO_MANY_ENTRIES', `too many entries: more than ${this.limits.maxEntries}`) };
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
      return { action: 'fail', error: archiveError('AMBIGUOUS_METADATA', this.found.dir === dir ? `duplicate entry ${name}` : 'two .dist-info directories') };
    }
    const problem = checkZipEntry(entry, this.label, this.limits);
    if (problem !== null) return { action: 'fail', error: problem };
    return { action: 'read', name, dir };
  }

  verify(bytes: Buffer, entry: ZipEntryFields): ArchiveError | null {
    if (bytes.length !== entry.uncompressedSize) {
      return corrupt('zip', `${this.label}: expected ${entry.uncompressedSize} bytes, got ${bytes.length}`);
    }
    if ((zlib.crc32(bytes) >>> 0) !== (entry.crc32 >>> 0)) return corrupt('zip', `${this.label}: CRC-32 mismatch`);
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
    return this.found !== null ? { ok: true, bytes: this.found.bytes, entry: this.found.entry } : archiveError('NO_METADATA', this.missing);
  }
}

/** Checks done on central-directory data, before any byte is inflated. */
function checkZipEntry(entry: ZipEntryFields, label: string, limits: ExtractLimits): ArchiveError | null {
  if ((entry.generalPurposeBitFlag & 0x1) !== 0) return archiveError('ENCRYPTED', `${label} is encrypted`);
  if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
    return archiveError('UNSUPPORTED_COMPRESSION', `${label} uses unsupported compression method ${entry.compressionMethod}`);
  }
  if (entry.uncompressedSize > limits.maxMetadataBytes) {
    return archiveError('TOO_LARGE', `${label} is larger than ${limits.maxMetadataBytes} bytes`);
  }
  if (entry.uncompressedSize > 0) {
    const ratio = entry.compressedSize > 0 ? entry.uncompressedSize / entry.compressedSize : Infinity;
    if (ratio > limits.maxRatio) {
      const shown = Number.isFinite(ratio) ? String(Math.round(ratio)) : 'Infinity';
      return archiveError('TOO_COMPRESSED', `compression ratio ${shown}:1 exceeds ${limits.maxRatio}:1`);
    }
  }
  return null;
}

/** Which tar entry is the sdist's PKG-INFO. */
export class TarSelection implements TarSelector {
  private entries = 0;

  constructor(private readonly limits: ExtractLimits) {}

  consider(name: string, type: TarEntryType | null | undefined, size: number): TarStep {
    this.entries += 1;
    if (this.entries > this.limits.maxEntries) {
      return { action: 'fail', error: archiveError('TOO_MANY_ENTRIES', `too many entries: more than ${this.limits.maxEntries}`) };
    }
    // (a cheap necessary condition first: every match ends so)
    if (!name.endsWith('/PKG-INFO')) return { action: 'skip' };
    // `tar -C dir .` style archives prefix every name with './'
    const parts = safeSegments(name.replace(/^(\.\/)+/, ''));
    const isFile = type === 'file' || type === 'contiguous-file' || type == null;
    if (!isFile || !isTopLevelPkgInfo(parts)) return { action: 'skip' };
    if (size > this.limits.maxMetadataBytes) {
      return { action: 'fail', error: archiveError('TOO_LARGE', `PKG-INFO is larger than ${this.limits.maxMetadataBytes} bytes`) };
    }
    return { action: 'read' };
  }
}
