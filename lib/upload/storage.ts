// A multer storage engine that streams the uploaded file into a temporary dotfile inside the
// target root (invisible to the watcher and the index) while computing its digests, and
// fsyncs it, so that what is later linked into place is complete and durable.

import { randomBytes } from 'node:crypto';
import { promises as fsp, type Dir, type Dirent } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setImmediate as turn } from 'node:timers/promises';
import type { Request } from 'express';
import type multer from 'multer';
import { Digester } from '../core/digests.js';
import { httpError } from '../core/errors.js';
import type { FileDiverter } from './form-guard.js';

export const TEMP_PREFIX = '.pypi-lite-upload-';

export interface StoredUpload {
  tempPath: string;
  size: number;
  sha256: string;
  /** Computed when the client sent md5_digest / blake2_256_digest before the file. */
  md5?: string;
  blake2b256?: string;
}

/** Storage result as multer sees it (it merges these fields into the file object). */
export interface StoredFileInfo {
  path: string;
  size: number;
  digests: StoredUpload | null;
}

/** Bytes gathered before one write: the socket hands out 64 KiB chunks. */
export const WRITE_BATCH = 1024 * 1024;
/** Batches being written at once (each at its own offset, on the thread pool). */
export const WRITES_IN_FLIGHT = 4;
/** Bytes written between two fdatasync calls started while the file still streams in. */
export const SYNC_EVERY = 16 * 1024 * 1024;
/** A file this large is a stream the process is told about (see StreamHook). */
export const LARGE_STREAM = 4 * 1024 * 1024;

/**
 * Told when an upload's file passes LARGE_STREAM bytes (lib/core/heap.ts relaxes the heap's
 * growth meanwhile); returns the function to call once, when that file's stream has ended.
 */
export type StreamHook = () => () => void;

/**
 * Creates the temp file, hashes what is written to it as it arrives and writes it in batches
 * of about WRITE_BATCH bytes (one writev of the chunks as they came, no copy), the next batch
 * gathering while up to WRITES_IN_FLIGHT earlier ones are written. One write per 64 KiB chunk,
 * as a plain fs.WriteStream does, cost 1.5-3.5 s of CPU per GB here (a thread-pool round trip
 * and a syscall each); 1 MiB batches about 0.3 s. With one batch in flight, a loaded machine
 * stalled the upload on each write's round trip (1 MiB: 3 ms in the kernel, 20 ms until the
 * main thread saw it done); several in flight keep the socket read. At most WRITES_IN_FLIGHT + 1
 * batches are held (backpressure holds the rest in the request's socket). Fails with PAYLOAD_TOO_LARGE past `maxBytes`. Closes the file when it
 * finishes or fails; removing it is the owner's job.
 *
 * The store syncs the file before it becomes visible. Left to that moment, the whole file goes
 * to the disk after the last byte arrived (100 MB: a tenth of a second or more on the answer's
 * path); an fdatasync every SYNC_EVERY bytes, one at a time and not waited for, writes it out
 * while the rest still streams in, and the final sync finds little left to do.
 */
class TempFileSink extends Writable {
  private fh: fsp.FileHandle | null = null;
  private digester: Digester | null = null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Batches being written. */
  private readonly inFlight = new Set<Promise<void>>();
  /** The first write that failed (reported by the next write or the final flush). */
  private failed: Error | null = null;
  /** Where the next batch goes in the file. */
  private position = 0;
  private syncing: Promise<void> | null = null;
  private unsynced = 0;
  /** Ends what `onLarge` was told (once the file passed LARGE_STREAM bytes). */
  private largeEnded: (() => void) | null = null;
  bytes = 0;

  constructor(
    readonly tempPath: string,
    private readonly want: { md5: boolean; blake2b256: boolean },
    private readonly maxBytes: number,
    private readonly onLarge: StreamHook | null = null,
  ) {
    super({ highWaterMark: WRITE_BATCH });
  }

  override _construct(cb: (err?: Error | null) => void): void {
    Digester.create(this.want)
      .then(async (digester) => {
        this.digester = digester;
        this.fh = await fsp.open(this.tempPath, 'wx', 0o644);
      })
      .then(() => cb(), cb);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) return cb(httpError('PAYLOAD_TOO_LARGE', `limit is ${this.maxBytes} bytes`));
    if (this.bytes >= LARGE_STREAM && this.onLarge && !this.largeEnded) this.largeEnded = this.onLarge();
    this.digester!.update(chunk);
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.failed) return cb(this.failed);
    if (this.pendingBytes < WRITE_BATCH) return cb();
    // Start this batch and take more while it is written; with too many in flight, wait for one.
    const start = (): void => {
      if (this.failed) return cb(this.failed);
      this.startBatch();
      cb();
    };
    if (this.inFlight.size < WRITES_IN_FLIGHT) return start();
    void Promise.race(this.inFlight).then(start);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.startBatch();
    Promise.all(this.inFlight)
      .then(() => {
        if (this.failed) throw this.failed;
        return this.syncing;
      })
      .then(() => this.fh!.close())
      .then(() => {
        this.fh = null;
        cb();
      }, cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // (Finished or failed: a Writable is destroyed either way.)
    this.largeEnded?.();
    const fh = this.fh;
    this.fh = null;
    // close() waits for a write still in flight.
    if (fh) fh.close().then(() => cb(err), () => cb(err));
    else cb(err);
  }

  /** What was written (once finished). */
  result(): StoredUpload {
    return { tempPath: this.tempPath, size: this.bytes, ...this.digester!.digest() };
  }

  /** Write the pending chunks at their place in the file (tracked in inFlight; never rejects). */
  private startBatch(): void {
    if (this.pendingBytes === 0) return;
    const chunks = this.pending;
    const bytes = this.pendingBytes;
    const position = this.position;
    this.pending = [];
    this.pendingBytes = 0;
    this.position += bytes;
    const p: Promise<void> = this.writeBatch(chunks, bytes, position).then(
      () => void this.inFlight.delete(p),
      (err: unknown) => {
        this.inFlight.delete(p);
        this.failed ??= err instanceof Error ? err : new Error(String(err));
      },
    );
    this.inFlight.add(p);
  }

  private async writeBatch(chunks: Buffer[], bytes: number, position: number): Promise<void> {
    this.unsynced += bytes;
    while (bytes > 0) {
      const { bytesWritten } = await this.fh!.writev(chunks, position);
      bytes -= bytesWritten;
      position += bytesWritten;
      if (bytes > 0) dropWritten(chunks, bytesWritten); // a short write (a full disk is an error instead)
    }
    if (this.unsynced >= SYNC_EVERY && this.syncing === null) {
      this.unsynced = 0;
      const fh = this.fh!;
      // Best effort (the store's own sync is the one that counts): a failure shows there.
      this.syncing = fh
        .datasync()
        .catch(() => {})
        .then(() => {
          this.syncing = null;
        });
    }
  }
}

/** Remove the first n bytes from a list of chunks (after a short writev). */
function dropWritten(chunks: Buffer[], n: number): void {
  while (n > 0) {
    const first = chunks[0];
    if (first.length <= n) {
      chunks.shift();
      n -= first.length;
    } else {
      chunks[0] = first.subarray(n);
      n = 0;
    }
  }
}

/** Has the form announced this digest field (twine sends the fields before the file)? */
function announced(body: unknown, key: string): boolean {
  return typeof body === 'object' && body !== null && key in body;
}

export class TempFileStorage implements multer.StorageEngine {
  /** Temp files currently being written, removed on shutdown. */
  readonly live = new Set<string>();
  /** Temp files whose write stream is still open (settles once it is closed, written or not). */
  private readonly writing = new Map<string, Promise<void>>();
  /** Temp files by request, for `abandon`. */
  private readonly byRequest = new WeakMap<Request, Set<string>>();
  /** What may take a request's content file off busboy's hands (its FormGuard, see `divertFrom`). */
  private readonly diverters = new WeakMap<Request, FileDiverter>();

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number = Infinity,
    private readonly onLarge: StreamHook | null = null,
  ) {}

  /** The writer of a temp file of this request (md5 and blake2b too when the form announced them). */
  private sink(req: Request, tempPath: string): TempFileSink {
    return new TempFileSink(tempPath, { md5: announced(req.body, 'md5_digest'), blake2b256: announced(req.body, 'blake2_256_digest') }, this.maxBytes, this.onLarge);
  }

  /** A new temp file of this request: tracked until it is settled or discarded. */
  private track(req: Request): { tempPath: string; writeDone: () => void } {
    const tempPath = path.join(this.dir, `${TEMP_PREFIX}${process.pid}-${randomBytes(8).toString('hex')}.tmp`);
    this.live.add(tempPath);
    const mine = this.byRequest.get(req) ?? new Set<string>();
    this.byRequest.set(req, mine.add(tempPath));
    let writeDone!: () => void;
    this.writing.set(tempPath, new Promise<void>((resolve) => (writeDone = resolve)));
    return { tempPath, writeDone };
  }

  /**
   * Let the request's FormGuard write its content file: when busboy reports that file while the
   * guard holds the part (see FormGuard.claim), its body goes from the guard straight into a
   * temp file (hashed on the way) and busboy sees the part empty.
   */
  divertFrom(req: Request, diverter: FileDiverter): void {
    this.diverters.set(req, diverter);
  }

  /** A temp file the FormGuard writes; `done` settles once it is complete or failed and removed. */
  private diversion(req: Request): { sink: TempFileSink; done: Promise<StoredUpload> } {
    const { tempPath, writeDone } = this.track(req);
    const sink = this.sink(req, tempPath);
    const done = new Promise<StoredUpload>((resolve, reject) => {
      sink.once('finish', () => resolve(sink.result()));
      sink.once('close', () => reject(sink.errored ?? new Error('the upload was cut short')));
    });
    // A failed file is removed before anyone waiting for it goes on.
    const settled = done.then(
      () => {
        this.writing.delete(tempPath);
        writeDone();
      },
      async () => {
        await this.discard(tempPath);
        this.writing.delete(tempPath);
        writeDone();
      },
    );
    const result = settled.then(() => done);
    result.catch(() => {}); // multer may have given up on the file: abandon() cleans up
    return { sink, done: result };
  }

  _handleFile(req: Request, file: Express.Multer.File, cb: (error?: unknown, info?: Partial<Express.Multer.File>) => void): void {
    if (file.fieldname !== 'content') {
      // gpg_signature and friends are accepted and ignored, as PyPI does today.
      file.stream.resume();
      file.stream.on('end', () => cb(null, { size: 0 }));
      return;
    }
    const diverter = this.diverters.get(req);
    if (diverter?.claimable()) {
      // busboy reports this part while parsing its header: the guard writes its body.
      const diverted = this.diversion(req);
      // The first few bytes reach busboy too (the guard writes them into the file itself).
      const echoed = diverter.claim(diverted.sink);
      file.path = diverted.sink.tempPath;
      let seen = 0;
      file.stream.on('data', (chunk: Buffer) => (seen += chunk.length));
      file.stream.once('end', () => {
        void diverted.done.then(
          (digests) => {
            if (seen !== echoed) return cb(new Error('the file part was read twice'));
            const info: Partial<StoredFileInfo> = { path: digests.tempPath, size: digests.size, digests };
            cb(null, info);
          },
          (err: unknown) => cb(err),
        );
      });
      return;
    }
    const { tempPath, writeDone } = this.track(req);
    // Tell multer the path now, not only once the file is complete: when the request fails while
    // the file is still being written, multer then removes it (_removeFile, which waits for the
    // write to stop) before the answer goes out, instead of leaving that to this callback, which
    // multer does not wait for once the file stream has failed.
    file.path = tempPath;
    const sink = this.sink(req, tempPath);
    pipeline(file.stream, sink).then(
      () => {
        const digests = sink.result();
        this.writing.delete(tempPath);
        writeDone();
        const info: Partial<StoredFileInfo> = { path: tempPath, size: digests.size, digests };
        cb(null, info);
      },
      async (err: unknown) => {
        file.stream.resume();
        // A sink destroyed while its file was being opened creates the file before it closes: wait.
        if (!sink.closed) await new Promise<void>((resolve) => sink.once('close', () => resolve()));
        await this.discard(tempPath);
        this.writing.delete(tempPath);
        writeDone();
        cb(err);
      },
    );
  }

  _removeFile(_req: Request, file: Express.Multer.File, cb: (error: Error | null) => void): void {
    if (!file.path) return cb(null);
    const tempPath = file.path;
    const writing = this.writing.get(tempPath) ?? Promise.resolve();
    void writing.then(() => this.discard(tempPath)).then(() => cb(null));
  }

  async discard(tempPath: string): Promise<void> {
    this.live.delete(tempPath);
    await fsp.rm(tempPath, { force: true }).catch(() => {});
  }

  /**
   * The request is refused while multer may still be working on it: wait until each of its
   * files has stopped being written, then remove them, so that nothing is left once the answer
   * goes out. (multer's own clean-up comes later and finds nothing.)
   */
  async abandon(req: Request): Promise<void> {
    const mine = this.byRequest.get(req);
    if (!mine) return;
    await Promise.all(
      [...mine].map(async (tempPath) => {
        await (this.writing.get(tempPath) ?? Promise.resolve());
        await this.discard(tempPath);
      }),
    );
  }

  /** The upload was moved into place: stop tracking its temp name. */
  settled(tempPath: string): void {
    this.live.delete(tempPath);
  }

  async removeAll(): Promise<void> {
    await Promise.all([...this.live].map((p) => this.discard(p)));
  }
}

/** Remove temp files a crashed process left behind in a root. */
export async function sweepTempFiles(dir: string): Promise<number> {
  let removed = 0;
  // A slice at a time: the root may hold a million files (one array of their names was ~60 MB
  // at the start of such a server). Each slice is read synchronously from the directory
  // handle's buffer, with a turn of the event loop between slices: `for await` over the handle
  // made a promise per entry, and a sweep of 100,000 names cost 140-170 ms of CPU and ~190 MB
  // of garbage right after the start (at a million, seconds).
  let handle: Dir;
  try {
    handle = await fsp.opendir(dir, { bufferSize: SWEEP_SLICE });
  } catch {
    return 0;
  }
  try {
    for (;;) {
      const found: string[] = [];
      let e: Dirent | null = null;
      for (let i = 0; i < SWEEP_SLICE && (e = handle.readSync()) !== null; i++) if (e.name.startsWith(TEMP_PREFIX)) found.push(e.name);
      for (const name of found) {
        // Keep the temp files of another live process sharing this root.
        const pid = Number(name.slice(TEMP_PREFIX.length).split('-')[0]);
        if (Number.isInteger(pid) && pid !== process.pid && isAlive(pid)) continue;
        await fsp.rm(path.join(dir, name), { force: true }).catch(() => {});
        removed++;
      }
      if (e === null) break;
      await turn();
    }
  } catch {
    // The directory went away or cannot be read further: nothing more to sweep.
  } finally {
    await handle.close().catch(() => {});
  }
  return removed;
}

/** Names read between two turns of the event loop while sweeping. */
const SWEEP_SLICE = 1024;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
