// What FsStore.list and its listing worker (stat-worker.ts) send each other, and what both list.

import type { Dirent } from 'node:fs';

/** List one directory (dir ends with the path separator) from its start. */
export interface ListRequest {
  dir: string;
  /** Regular files per slice. */
  slice: number;
  /** Slices sent and not yet taken (ACK) before the worker waits: bounds what is held. */
  window: number;
  /** ListOptions.describe: the module that describes each file's name. */
  describe?: string;
}

/**
 * The descriptions of a slice's files (ListOptions.describe), in their order: per file the
 * number of strings (-1: none), and the strings as indexes into the listing's table, which
 * each slice extends with the strings it uses first (`strings`), after emptying it if `reset`.
 */
export interface Descriptions {
  counts: Int8Array<ArrayBuffer>;
  ids: Int32Array<ArrayBuffer>;
  strings: string[];
  reset: boolean;
}

/** The main thread took one slice (the worker may read another). */
export const ACK = 'ack';

/** One slice of the directory, in its order; the last one says done. */
export interface ListSlice {
  /** Names of the regular files, joined by '\0' ('' for none). */
  files: string;
  /** STAT_FIELDS numbers per file: size, mtimeMs, dev, ino, ctimeMs (size NOT_A_FILE / STAT_FAILED). */
  stats: Float64Array<ArrayBuffer>;
  /** Names of the subdirectories, and of the symbolic links (never followed), in this slice. */
  dirs: string[];
  links: string[];
  /** When the request asked for them. */
  described?: Descriptions;
  done: boolean;
  /** Reading the directory failed here (the slices before stand). */
  error?: { code?: string; message: string };
}

/** Numbers per name in the answer: size, mtimeMs, dev, ino, ctimeMs. */
export const STAT_FIELDS = 5;
/** The size of a name that is not a regular file (or is gone). */
export const NOT_A_FILE = -1;
/** The size of a name whose lstat failed otherwise (the caller stats it again for the error). */
export const STAT_FAILED = -2;

/** Characters no key segment may hold (see isValidKey): such names are never listed. */
const BAD_NAME = /[\\\u0000-\u001f\u007f]/;

/** Names a listing skips: dotfiles are the stores' own; a name no key can hold could not be served. */
function skippedName(name: string): boolean {
  return name.startsWith('.') || BAD_NAME.test(name);
}

/** What a listing makes of a directory entry. */
export type EntryKind = 'dir' | 'file' | 'link';

/**
 * A subdirectory to list, a file, a symbolic link (never followed: only reported), or null: a
 * skipped name or another kind of entry. The one rule for the main thread and the worker.
 */
export function entryKind(e: Dirent): EntryKind | null {
  if (skippedName(e.name)) return null;
  return e.isDirectory() ? 'dir' : e.isFile() ? 'file' : e.isSymbolicLink() ? 'link' : null;
}
