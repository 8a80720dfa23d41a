// Result and error helpers shared by the synchronous archive readers (zip-sync, tar-sync).

import type { ExtractResult } from './extract.js';

export function fail(error: string): ExtractResult {
  return { ok: false, error };
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
