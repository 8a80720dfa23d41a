// What FsStore.list and its stat worker (stat-worker.ts) send each other.

/** One slice of a directory: dir ends with the path separator, names are joined by '\0'. */
export interface StatRequest {
  dir: string;
  names: string;
}

/** Numbers per name in the answer: size, mtimeMs, dev, ino, ctimeMs. */
export const STAT_FIELDS = 5;
/** The size of a name that is not a regular file (or is gone). */
export const NOT_A_FILE = -1;
/** The size of a name whose lstat failed otherwise (the caller stats it again for the error). */
export const STAT_FAILED = -2;
