// A multer storage engine that streams the uploaded file into a temporary dotfile inside the
// target root (invisible to the watcher and the index) while computing its digests, and
// fsyncs it, so that what is later linked into place is complete and durable.

import { randomBytes } from 'node:crypto';
import { createWriteStream, promises as fsp, type WriteStream } from 'node:fs';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Request } from 'express';
import type multer from 'multer';
import { Digester } from '../core/digests.js';

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

class Hasher extends Transform {
  constructor(readonly digester: Digester) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.digester.update(chunk);
    cb(null, chunk);
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

  constructor(private readonly dir: string) {}

  _handleFile(req: Request, file: Express.Multer.File, cb: (error?: unknown, info?: Partial<Express.Multer.File>) => void): void {
    if (file.fieldname !== 'content') {
      // gpg_signature and friends are accepted and ignored, as PyPI does today.
      file.stream.resume();
      file.stream.on('end', () => cb(null, { size: 0 }));
      return;
    }
    const tempPath = path.join(this.dir, `${TEMP_PREFIX}${process.pid}-${randomBytes(8).toString('hex')}.tmp`);
    this.live.add(tempPath);
    const mine = this.byRequest.get(req) ?? new Set<string>();
    this.byRequest.set(req, mine.add(tempPath));
    // Tell multer the path now, not only once the file is complete: when the request fails while
    // the file is still being written, multer then removes it (_removeFile, which waits for the
    // write to stop) before the answer goes out, instead of leaving that to this callback, which
    // multer does not wait for once the file stream has failed.
    file.path = tempPath;
    let writeDone!: () => void;
    this.writing.set(tempPath, new Promise<void>((resolve) => (writeDone = resolve)));
    const want = { md5: announced(req.body, 'md5_digest'), blake2b256: announced(req.body, 'blake2_256_digest') };
    let out: WriteStream | null = null;
    Digester.create(want)
      .then(async (digester) => {
        const hasher = new Hasher(digester);
        out = createWriteStream(tempPath, { flags: 'wx', mode: 0o644 });
        await pipeline(file.stream, hasher, out);
        const digests: StoredUpload = { tempPath, size: digester.bytes, ...digester.digest() };
        const info: Partial<StoredFileInfo> = { path: tempPath, size: digester.bytes, digests };
        this.writing.delete(tempPath);
        writeDone();
        cb(null, info);
      })
      .catch(async (err: unknown) => {
        file.stream.resume();
        // A write stream destroyed while still opening creates its file afterwards: wait for it.
        const stream = out;
        if (stream && !stream.closed) {
          await new Promise<void>((resolve) => {
            stream.once('close', () => resolve());
            stream.destroy();
          });
        }
        await this.discard(tempPath);
        this.writing.delete(tempPath);
        writeDone();
        cb(err);
      });
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
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (!name.startsWith(TEMP_PREFIX)) continue;
    // Keep the temp files of another live process sharing this root.
    const pid = Number(name.slice(TEMP_PREFIX.length).split('-')[0]);
    if (Number.isInteger(pid) && pid !== process.pid && isAlive(pid)) continue;
    await fsp.rm(path.join(dir, name), { force: true }).catch(() => {});
    removed++;
  }
  return removed;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
