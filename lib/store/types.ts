// The package store: the files of ONE package root, each named by a storage key (the
// '/'-separated path below the root, what /packages/<key> shows), never by an absolute path.
// The local directory (FsStore) is the first implementation; an object store (S3) is the next,
// so nothing here assumes a file system: keys, stats, streams, conditional puts, a change feed.
//
// Keys are validated by every store (isValidKey): no '..', '.', empty or dot-prefixed
// segments, no absolute paths, no backslashes or control characters. Dotfiles are the
// stores' own (temp files, caches) and are never listed or served.

import type { Readable } from 'node:stream';
import type { MetadataSummary } from '../metadata/types.js';

/**
 * What identifies the bytes beyond size and mtime: an edit that keeps both (in place, or a
 * file renamed over the old one) still changes the ctime, and a rename changes the inode.
 * (A file system's; an object store has its ETag instead.)
 */
export interface FileIdentity {
  dev: number;
  ino: number;
  ctimeMs: number;
}

/** One stored file as a listing or a stat shows it. */
export interface StoreEntry {
  key: string;
  size: number;
  mtimeMs: number;
  /** FsStore: device, inode and ctime. */
  identity?: FileIdentity;
  /** Object stores: the object's ETag. */
  etag?: string;
  /** What ListOptions.describe said of the key's last segment, if the listing ran it. */
  described?: readonly string[];
}

export interface ListOptions {
  /** Only keys below this directory key ('' or absent: everything). */
  prefix?: string;
  /**
   * Only names (the last key segment) this accepts are stat'ed and listed: skips the cost of
   * a stat for files the caller would drop anyway.
   */
  accept?: (name: string) => boolean;
  /**
   * The URL of a module whose `describeName(name)` returns a few strings of a file name, or
   * null: a store may run it where it reads the names (FsStore: in the worker that lists a large
   * directory, off the main thread) and put the strings on each entry (`described`; the same
   * string is one copy across entries). Entries without `described` were not described.
   */
  describe?: string;
  /**
   * Told of every directory key below which the listing could not read (it exists but could
   * not be read): what the caller knew there must be kept, not dropped as gone.
   */
  unreadable?: (dirKey: string) => void;
}

/** A byte range, both ends inclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * An opened stored file: its entry as of the open (the bytes read are the ones described),
 * a stream of any range, and for random-access stores a positional read, which lets the
 * download route reuse its buffers (sendfile-like speed, no allocation per chunk).
 */
export interface StoreObject {
  readonly entry: StoreEntry;
  stream(range?: ByteRange): Readable;
  /** Read up to length bytes at position into buf; 0 at the end. Random-access stores only. */
  read?(buf: Buffer, offset: number, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /**
   * The identity recorded when the file was indexed: the open fails (null) if the key now
   * leads to other bytes (a file renamed over it, a directory swapped for a link).
   */
  expect?: FileIdentity;
  /** Object stores: the ETag recorded when the object was indexed (other bytes: null). */
  etag?: string;
}

/** A complete local file to put into the store (an upload after it was written and hashed). */
export interface PutSource {
  path: string;
}

export type PutResult = { created: true; entry: StoreEntry } | { created: false; reason: 'exists' };

/**
 * A local file holding a stored file's bytes, for readers that take a path (hash workers,
 * archive readers). FsStore hands out the stored file itself, and the hash workers' stat of it
 * is checked against the indexed identity; a store that copies to a temporary file must copy
 * from an open() with the expected identity instead (the copy's inode means nothing).
 */
export interface LocalFile {
  path: string;
  /** Done with it (a remote store removes its temporary copy). */
  release(): Promise<void>;
}

/** What a store's watch reports. Keys and directory keys, never paths. */
export type StoreEvent =
  /** The file at key changed: entry is what is there now (null: gone, or not a file we serve). */
  | { type: 'file'; key: string; entry: StoreEntry | null }
  /** A directory appeared (list it) or disappeared (drop what it held). '' is the root. */
  | { type: 'dir-added' | 'dir-removed'; dirKey: string }
  /** Something changed below dirKey that the feed could not name: list it again. */
  | { type: 'relist'; dirKey: string }
  /** Changes below dirKey cannot be reported (FsStore: out of inotify watches, code ENOSPC or EMFILE): only list() finds them. */
  | { type: 'unwatched'; dirKey: string; code: string };

export interface StoreWatch {
  /** Resolves once the feed is live (changes from then on are reported). */
  ready: Promise<void>;
  close(): void;
}

/**
 * What is known about the bytes of one stored object without reading them: computed once (by
 * an upload, or by whichever replica hashed the object first) and shared through the store
 * (an object store's in-bucket index), so other replicas need not read the object.
 */
export interface KnownDigests {
  sha256: string;
  md5?: string;
  blake2b256?: string;
  /** null: the archive was read and has no usable metadata. */
  metadata: MetadataSummary | null;
  metadataError?: string;
}

/** A text edit: the new text (null: no change) and what to answer. */
export type TextEdit<R> = (text: string, exists: boolean) => { text: string | null; result: R };

/**
 * The yank list (yanked.txt's format) kept by a store itself: an object store keeps it in the
 * bucket so a yank through one replica shows on every replica. (FsStore has none: yanked.txt
 * beside the root, the operator's file.)
 */
export interface StoredTextFile {
  /** The text ('' when there is none). */
  read(): Promise<string>;
  /** Read-modify-write; of concurrent edits (any replica) none is lost. */
  edit<R>(change: TextEdit<R>): Promise<R>;
  /** Told when another replica changed it. */
  onChange(listener: () => void): () => void;
}

/** The outcome of a claim: granted, or held by the file at `key` (another spelling, or the release's other sdist). */
export type ClaimResult = { granted: true } | { granted: false; name: string; key: string };

export interface PackageStore {
  /** Stable identity of the store (FsStore: its absolute directory); what DistFile.root holds. */
  readonly id: string;
  /** A local directory where uploads are written before put() (FsStore: the root itself, so put is a link). */
  readonly stagingDir: string;
  /**
   * Every stored file (the scan), in batches (a slice of a directory, a page of a listing): one
   * await per batch, not per file (an async iteration step costs ~2-10 us; a million of them
   * were a second of a warm start). Throws if the store itself cannot be read.
   */
  list(opts?: ListOptions): AsyncIterable<StoreEntry[]>;
  /** The file at key, as list() would show it; null if there is none. */
  stat(key: string): Promise<StoreEntry | null>;
  /** Open the file at key for reading; null if there is none (or not the expected one). */
  open(key: string, opts?: OpenOptions): Promise<StoreObject | null>;
  /**
   * Store source at key unless something is there: of two racing puts, exactly one is created.
   * May consume the source when it is created (FsStore links it into place and removes the
   * staged name before it stats the file, so that the entry returned is what the file stays).
   */
  putIfAbsent(key: string, source: PutSource): Promise<PutResult>;
  /** Store source at key, replacing what is there (--overwrite). May consume the source. */
  put(key: string, source: PutSource): Promise<StoreEntry>;
  /** Remove the file at key; false if there was none. */
  remove(key: string): Promise<boolean>;
  /**
   * A local file with the bytes at key (see LocalFile). A missing key may show only when the
   * path is read (FsStore hands out the path without a stat: the hash workers report ENOENT).
   */
  localFile(key: string, opts?: OpenOptions): Promise<LocalFile>;
  /**
   * Stores whose files are local files (FsStore): the path of key, at once and with nothing
   * to release (what localFile resolves to). Throws for an invalid key. Optional: the hash
   * scheduler uses it to hand a cold start's files to the workers without a promise per file.
   */
  localPath?(key: string): string;
  /**
   * A short-lived URL a client can fetch the bytes at key from directly (object stores:
   * a presigned GET; --s3-redirect). Optional.
   */
  downloadUrl?(key: string, expiresInSeconds: number, filename: string): Promise<string>;
  /** Report changes as they happen (optional: without it, changes are found by list()). */
  watch?(listener: (event: StoreEvent) => void): StoreWatch;
  /**
   * The digests and metadata the store already knows for exactly these bytes (same key, ETag
   * and size), or undefined: the indexer then reads the object itself. Object stores only.
   */
  recall?(entry: StoreEntry): KnownDigests | undefined;
  /** The indexer (or an upload) computed what is known of entry's bytes: share it (object stores). */
  record?(entry: StoreEntry, known: KnownDigests): void;
  /**
   * Stores shared by several servers (object stores): take the uniqueness claims an upload of
   * key needs (opaque names, e.g. one per distribution and one per release's sdist) before the
   * put, so two servers cannot both accept a second spelling of a file or a second sdist.
   * Granted (all of them), or the first name held by another key (nothing left taken).
   */
  claim?(names: string[], key: string): Promise<ClaimResult>;
  /** Release the claims of key (after remove, or a failed put). */
  release?(names: string[], key: string): Promise<void>;
  /** The root's yank list when the store keeps it (see StoredTextFile). */
  readonly yankList?: StoredTextFile;
}

/** The key rules shared by every store. */
export function isValidKey(key: string): boolean {
  if (key === '' || key.length > 1024) return false;
  for (const seg of key.split('/')) {
    if (seg === '' || seg.startsWith('.') || /[\\\u0000-\u001f\u007f]/.test(seg)) return false;
  }
  return true;
}

/** Thrown for a key that breaks the rules (a caller's mistake, not a store failure). */
export class InvalidKeyError extends Error {
  readonly code = 'EINVALIDKEY';
  constructor(key: string) {
    super(`invalid storage key ${JSON.stringify(key.slice(0, 200))}`);
  }
}

export function checkKey(key: string): string {
  if (!isValidKey(key)) throw new InvalidKeyError(key);
  return key;
}
