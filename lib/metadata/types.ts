// The metadata layer's own types: what kind of archive a distribution is, what extraction
// answers, and what the index keeps of a core metadata file. Nothing here depends on the
// catalog: the catalog imports these, never the other way round.

export type ArchiveKind = 'wheel' | 'zip' | 'tar.gz' | 'tgz' | 'tar.bz2' | 'tar.xz' | 'egg';

/** The archive kind of a distribution, from its file name's canonical extension. */
export function archiveKindOf(parsed: { readonly extension: string }): ArchiveKind {
  switch (parsed.extension) {
    case '.whl':
      return 'wheel';
    case '.zip':
      return 'zip';
    case '.tgz':
      return 'tgz';
    case '.tar.bz2':
      return 'tar.bz2';
    case '.tar.xz':
      return 'tar.xz';
    case '.egg':
      return 'egg';
    default:
      return 'tar.gz';
  }
}

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

/**
 * Why an archive's metadata could not be extracted. Callers decide by the code; the message
 * (`error`) is for people (logs, the JSON API's metadataError, an upload's reason phrase).
 */
export type ArchiveErrorCode =
  /** bz2, xz, or an unknown kind */
  | 'UNSUPPORTED_KIND'
  /** the file could not be opened or read (a system error) */
  | 'UNREADABLE'
  /** not a valid zip / gzip / tar stream ("corrupt zip: ...") */
  | 'CORRUPT_ZIP'
  | 'CORRUPT_GZIP'
  | 'CORRUPT_TAR'
  /** a corrupt archive that looks cut short (possibly still being written) */
  | 'TRUNCATED'
  | 'TOO_MANY_ENTRIES'
  /** the metadata file is (or inflates to) more than allowed or declared */
  | 'TOO_LARGE'
  /** a compression ratio over the limit */
  | 'TOO_COMPRESSED'
  /** a tarball scanned up to the limit without finding PKG-INFO */
  | 'SCAN_LIMIT'
  | 'NO_METADATA'
  /** two candidate metadata files (duplicate entry, two .dist-info directories) */
  | 'AMBIGUOUS_METADATA'
  | 'ENCRYPTED'
  | 'UNSUPPORTED_COMPRESSION'
  | 'TIMEOUT'
  /** an unexpected failure of the extractor itself */
  | 'INTERNAL';

/**
 * A failed extraction: plain data (not an Error), so that it crosses worker threads and is
 * compared and logged as is. Built by `archiveError` (archive-errors.ts).
 */
export interface ArchiveError {
  ok: false;
  code: ArchiveErrorCode;
  /** One line, for people. */
  error: string;
}

export type ExtractResult = { ok: true; bytes: Buffer; entry: string } | ArchiveError;

/** What the index keeps of a distribution's core metadata (the bytes stay in the archive). */
export interface MetadataSummary {
  /** sha256 of the exact METADATA / PKG-INFO bytes, as served at <file>.metadata */
  sha256: string;
  size: number;
  name: string | null;
  version: string | null;
  requiresPython: string | null;
  /** PEP 658: may the metadata file be advertised and served for this distribution? */
  servable: boolean;
}
