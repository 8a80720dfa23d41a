// The hash scheduler: which indexed files get hashed (and their metadata read) when. A FIFO
// queue in front of the HashPool with a bounded window (at a cold start over 100,000 files that
// keeps 100,000 pending promises and messages out of memory), queue jumping for a page that
// waits, and a retry wait with backoff for files whose hashing failed for a reason other than
// the file (a worker died twice). What a result means for the index is the policy's (the
// Indexer's `apply`); files are read through their store (FsStore hands the workers a path).

import { createReadStream } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Logger } from 'pino';
import { isDigested, type DistFile } from './catalog.js';
import { distExtension } from './filename.js';
import { HashPool, type HashResult } from './hash-pool.js';
import { corrupt } from '../metadata/archive-errors.js';
import { archiveKindOf, type ArchiveKind } from '../metadata/types.js';

export interface HashSchedulerHooks {
  /** Is this still the indexed file (not replaced or removed meanwhile)? */
  isCurrent(file: DistFile): boolean;
  /**
   * A result for a current file (ok, or a failure that is the file's own). `appeared`: the
   * file showed up while we were running (not found by the initial scan).
   */
  apply(file: DistFile, result: HashResult, appeared: boolean): void;
}

interface Queued {
  appeared: boolean;
  /** Pages waiting for this file's result (made on demand: most files nobody waits for). */
  waiters: (() => void)[] | null;
  /** The pool's task id once handed to it (to promote it), else 0. */
  task: number;
}

export class HashScheduler {
  private readonly pool: HashPool;
  private readonly log: Logger;
  /** Files handed to the pool, until their result is applied. */
  private readonly inflight = new Map<DistFile, Queued>();
  /** The in-flight files of a local store (`localPath`) by their task id: one callback serves them all. */
  private readonly byTask = new Map<number, DistFile>();
  /**
   * Files waiting for their turn (FIFO in queue from head on), with their `appeared` flag: no
   * object per file (a cold start queues every file: a million of them at 1M).
   */
  private readonly queued = new Map<DistFile, boolean>();
  private queue: DistFile[] = [];
  private head = 0;
  /**
   * Files whose hashing failed for a reason other than the file (a worker died twice), with
   * when a rescan may try again: a minute after the failure, the wait doubling up to an hour
   * (a file that kills the worker every time must not keep a --poll server busy).
   */
  private readonly failed = new Map<DistFile, { retryAt: number; waitMs: number }>();
  private idleWaiters: (() => void)[] = [];
  private closed = false;

  constructor(
    workers: number,
    log: Logger,
    private readonly hooks: HashSchedulerHooks,
  ) {
    this.log = log.child({ part: 'hash-scheduler' });
    this.pool = new HashPool(workers, (reason, orphans) => this.log.error({ reason, files: orphans }, 'a hashing worker died; replaced it and retrying its files once'));
  }

  /** Files still waiting for their digest or metadata. */
  get backlog(): number {
    return this.inflight.size + this.queued.size;
  }

  /** Hashing workers that died and were replaced since the start. */
  get restarts(): number {
    return this.pool.restarts;
  }

  /** Current files whose hashing failed (see `failed`). */
  get failures(): number {
    for (const f of this.failed.keys()) if (!this.hooks.isCurrent(f)) this.failed.delete(f); // replaced or gone
    return this.failed.size;
  }

  /** Is the file queued or being hashed? */
  pending(file: DistFile): boolean {
    return this.inflight.has(file) || this.queued.has(file);
  }

  /**
   * A file seen unchanged by a rescan: retry what hashing could not finish (a worker died
   * twice and the wait is over; a result for another file than the indexed one was discarded).
   */
  retryIfDue(file: DistFile): void {
    const failed = this.failed.get(file);
    const unfinished = !isDigested(file);
    if (failed ? Date.now() >= failed.retryAt : unfinished && !this.pending(file)) this.schedule(file, true);
  }

  forget(file: DistFile): void {
    this.failed.delete(file);
  }

  /**
   * Queue a file for hashing. Files wait here, not in the pool, and at most HASH_WINDOW are
   * handed to the pool at once. A page that needs a queued file starts it at once (urgent).
   * `appeared`: see HashSchedulerHooks.apply.
   */
  schedule(file: DistFile, appeared: boolean): void {
    if (this.pending(file)) return;
    this.queued.set(file, appeared);
    this.queue.push(file);
    this.pump();
  }

  /** Jump the queue for this file; the promise settles once its result is applied (undefined: nothing pending). */
  urgent(file: DistFile): Promise<void> | undefined {
    if (this.queued.has(file)) this.start(file, true);
    const q = this.inflight.get(file);
    if (!q) return undefined;
    if (q.task) this.pool.promote(q.task);
    return new Promise((resolve) => (q.waiters ??= []).push(resolve));
  }

  /** Resolves when nothing is queued or being hashed. */
  whenIdle(): Promise<void> {
    if (this.backlog === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** md5 and blake2b-256 of the file as it is now (with its stamp, to check it is the indexed one). */
  async extraDigests(file: DistFile): Promise<HashResult> {
    const local = await file.store.localFile(file.relPath, file.etag ? { etag: file.etag } : {});
    try {
      return await this.pool.run({ path: local.path, extraDigests: true }, true);
    } finally {
      await local.release();
    }
  }

  private pump(): void {
    while (this.inflight.size < HASH_WINDOW && this.head < this.queue.length) {
      const file = this.queue[this.head++];
      if (this.queued.has(file)) this.start(file, false);
    }
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private start(file: DistFile, urgent: boolean): void {
    const appeared = this.queued.get(file);
    if (appeared === undefined) return;
    this.queued.delete(file);
    const q: Queued = { appeared, waiters: null, task: 0 };
    this.inflight.set(file, q);
    // A file that appears while we run may still be being written (scp, a slow copy). A
    // truncated zip or wheel fails to open, but a truncated sdist often still yields its
    // PKG-INFO, so a new .tar.gz is only accepted once its whole gzip stream decodes.
    const extension = extensionOf(file);
    const archive = archiveKindOf({ extension });
    const verifyGzip = q.appeared && (extension === '.tar.gz' || extension === '.tgz');
    if (file.store.localPath && !verifyGzip) return this.startLocal(file, q, archive, urgent);
    // Callbacks rather than an async function (see startLocal for the common case).
    const failed = (err: unknown): void => this.logFailure(file, err);
    const finished = (): void => this.finished(file, q);
    file.store.localFile(file.relPath, file.etag ? { etag: file.etag } : {}).then((local) => {
      const release = (): void => {
        // (then with two callbacks: catch + finally cost three more promises per file)
        local.release().then(finished, (err: unknown) => {
          try {
            failed(err);
          } finally {
            finished();
          }
        });
      };
      const settle = (r: HashResult): void => {
        this.apply(file, q, r);
        release();
      };
      q.task = this.pool.submit({ path: local.path, archive }, urgent, (r) => {
        if (!(verifyGzip && r.ok && !r.metadataError && this.hooks.isCurrent(file))) return settle(r);
        gzipComplete(local.path, r.size).then((complete) => {
          if (complete) return settle(r);
          const cut = corrupt('gzip', 'unexpected end of file');
          settle({ ...r, metadata: null, metadataError: cut.error, metadataErrorCode: cut.code });
        }, (err: unknown) => {
          failed(err);
          release();
        });
      });
    }, (err: unknown) => {
      failed(err);
      finished();
    });
  }

  /**
   * A file of a local store: its path at once, and one callback for every such file (a cold
   * start hands every file to the pool: closures and promises per file were most of what the
   * main thread allocated then, and lived long enough to be promoted to the old generation).
   */
  private startLocal(file: DistFile, q: Queued, archive: ArchiveKind, urgent: boolean): void {
    let path: string | undefined;
    try {
      path = file.store.localPath?.(file.relPath);
    } catch (err) {
      this.logFailure(file, err);
    }
    // (A closed pool would answer before its id is known here: nobody waits for it anyway.)
    if (path === undefined || this.closed) return this.finished(file, q);
    q.task = this.pool.submit({ path, archive }, urgent, this.localResult);
    this.byTask.set(q.task, file);
  }

  private readonly localResult = (r: HashResult): void => {
    const file = this.byTask.get(r.id);
    if (file === undefined) return;
    this.byTask.delete(r.id);
    const q = this.inflight.get(file);
    if (!q) return;
    this.apply(file, q, r);
    this.finished(file, q);
  };

  /** Settle a file with its result; a failure to apply it is logged (the file still finishes). */
  private apply(file: DistFile, q: Queued, r: HashResult): void {
    try {
      this.settle(file, r, q.appeared);
    } catch (err) {
      this.logFailure(file, err);
    }
  }

  private logFailure(file: DistFile, err: unknown): void {
    this.log.error({ err, file: file.relPath }, 'cannot hash a file');
  }

  private finished(file: DistFile, q: Queued): void {
    this.inflight.delete(file);
    if (q.waiters) for (const w of q.waiters) w();
    this.pump();
    if (this.backlog === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  private settle(file: DistFile, r: HashResult, appeared: boolean): void {
    if (!this.hooks.isCurrent(file)) return; // replaced or removed meanwhile
    if (!r.ok && r.transient) {
      // Nothing is known against the file: keep it listed, retry at the next rescan.
      if (this.closed) return;
      const waitMs = Math.min(HASH_RETRY_MAX_MS, 2 * (this.failed.get(file)?.waitMs ?? HASH_RETRY_MIN_MS / 2));
      this.failed.set(file, { retryAt: Date.now() + waitMs, waitMs });
      this.log.error({ file: file.relPath, error: r.error, retryInSeconds: waitMs / 1000 }, 'cannot hash a file (kept in the index; retried by a later rescan, or when it changes)');
      return;
    }
    this.failed.delete(file);
    this.hooks.apply(file, r, appeared);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.queued.clear(); // (nobody waits for a queued file: urgent() starts it)
    await this.pool.close();
  }
}

/** The file's extension from its name alone (`file.parsed` parses all of an IndexedFile's name, on each read). */
function extensionOf(file: DistFile): string {
  return distExtension(file.filename) ?? file.parsed.extension;
}

/** A file whose hashing failed (worker died twice) is retried after this, doubling up to the max. */
const HASH_RETRY_MIN_MS = 60_000;
const HASH_RETRY_MAX_MS = 3_600_000;

/** Files in the hashing pool at once (enough to keep every worker busy). */
const HASH_WINDOW = 1024;

/** Above this much output a gzip stream is taken as complete (bounds the work on a bomb). */
const GZIP_VERIFY_LIMIT = 256 * 1024 ** 2;

/** Does the file's first `size` bytes hold a complete gzip stream? Decoded off the main thread. */
async function gzipComplete(localPath: string, size: number): Promise<boolean> {
  if (size === 0) return false;
  let out = 0;
  const tooBig = new Error('limit');
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.length;
      cb(out > GZIP_VERIFY_LIMIT ? tooBig : null);
    },
  });
  try {
    await pipeline(createReadStream(localPath, { start: 0, end: size - 1 }), createGunzip(), sink);
    return true;
  } catch (err) {
    return err === tooBig;
  }
}
