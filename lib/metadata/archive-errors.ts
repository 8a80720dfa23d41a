// Coded extraction errors (see ArchiveErrorCode in types.ts), built in one place and shared by
// the streaming and the in-memory archive readers.

import type { ArchiveError, ArchiveErrorCode } from './types.js';

export function archiveError(code: ArchiveErrorCode, error: string): ArchiveError {
  return { ok: false, code, error };
}

/** How the libraries (zlib, yauzl, tar-stream) and our readers word an archive that ends early. */
const CUT_SHORT = /unexpected end of file|end of central directory record signature not found|truncated/i;

/**
 * "corrupt <format>: <message>". Coded TRUNCATED when the message says the data ended early
 * (a file still being copied looks like that), else CORRUPT_<FORMAT>.
 */
export function corrupt(format: 'zip' | 'gzip' | 'tar', message: string): ArchiveError {
  const code = CUT_SHORT.test(message) ? 'TRUNCATED' : format === 'zip' ? 'CORRUPT_ZIP' : format === 'gzip' ? 'CORRUPT_GZIP' : 'CORRUPT_TAR';
  return archiveError(code, `corrupt ${format}: ${message}`);
}

/** Is the file not a readable archive of its kind at all (corrupt or cut short)? */
export function isCorruptArchive(code: ArchiveErrorCode): boolean {
  return code === 'CORRUPT_ZIP' || code === 'CORRUPT_GZIP' || code === 'CORRUPT_TAR' || code === 'TRUNCATED';
}

/** The `code` of a Node error (e.g. zlib's Z_DATA_ERROR), if any. */
export function errorCode(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const code: unknown = Reflect.get(err, 'code');
  return typeof code === 'string' ? code : undefined;
}

/** An error's message on one line. */
export function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.replace(/\s+/g, ' ').trim() || 'unknown error';
}

/** A system error (ENOENT, EACCES, ...): the file, not the archive, is the problem. */
export function isSystemError(err: unknown): boolean {
  return /^E[A-Z]+$/.test(errorCode(err) ?? '');
}
