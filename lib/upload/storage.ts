// A multer storage engine that streams the uploaded file into a temporary dotfile inside the
// target root (invisible to the watcher and the index) while computing its digests, and
// fsyncs it, so that what is later linked into place is complete and durable.

import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Request } from 'express';
import type multer from 'multer';

export const TEMP_PREFIX = '.pypi-lite-upload-';

export interface StoredUpload {
  tempPath: string;
  size: number;
  sha256: string;
  md5: string;
  blake2b256: string;
}

/** Storage result as multer sees it (it merges these fields into the file object). */
export interface StoredFileInfo {
  path: string;
  size: number;
  digests: StoredUpload | null;
}

class Hasher extends Transform {
  readonly sha256: Hash = createHash('sha256');
  readonly md5: Hash = createHash('md5');
  readonly blake2b: Hash = createHash('blake2b512', { outputLength: 32 });
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.sha256.update(chunk);
    this.md5.update(chunk);
    this.blake2b.update(chunk);
    cb(null, chunk);
  }
}

export class TempFileStorage implements multer.StorageEngine {
  /** Temp files currently being written, removed on shutdown. */
  readonly live = new Set<string>();

  constructor(private readonly dir: string) {}

  _handleFile(_req: Request, file: Express.Multer.File, cb: (error?: unknown, info?: Partial<Express.Multer.File>) => void): void {
    if (file.fieldname !== 'content') {
      // gpg_signature and friends are accepted and ignored, as PyPI does today.
      file.stream.resume();
      file.stream.on('end', () => cb(null, { size: 0 }));
      return;
    }
    const tempPath = path.join(this.dir, `${TEMP_PREFIX}${process.pid}-${randomBytes(8).toString('hex')}.tmp`);
    this.live.add(tempPath);
    const hasher = new Hasher();
    const out = createWriteStream(tempPath, { flags: 'wx', mode: 0o644 });
    pipeline(file.stream, hasher, out).then(
      () => {
        const digests: StoredUpload = {
          tempPath,
          size: hasher.bytes,
          sha256: hasher.sha256.digest('hex'),
          md5: hasher.md5.digest('hex'),
          blake2b256: hasher.blake2b.digest('hex'),
        };
        const info: Partial<StoredFileInfo> = { path: tempPath, size: hasher.bytes, digests };
        cb(null, info as Partial<Express.Multer.File>);
      },
      (err: unknown) => {
        void this.discard(tempPath).finally(() => cb(err));
      },
    );
  }

  _removeFile(_req: Request, file: Express.Multer.File, cb: (error: Error | null) => void): void {
    if (!file.path) return cb(null);
    void this.discard(file.path).then(() => cb(null));
  }

  async discard(tempPath: string): Promise<void> {
    this.live.delete(tempPath);
    await fsp.rm(tempPath, { force: true }).catch(() => {});
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
