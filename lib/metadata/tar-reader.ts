// The streaming .tar.gz reader (sdists): gunzip and tar-stream over a file or a buffer,
// counting decompressed bytes, reading only the selected member.

import type { Readable } from 'node:stream';
import { Transform, type TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import tarStream from 'tar-stream';
import { archiveError, corrupt, isSystemError, oneLine } from './archive-errors.js';
import { noop, waitForEvent, type Job } from './job.js';
import { TarSelection } from './selection.js';
import type { ExtractLimits } from './types.js';

export function extractFromTarGz(openStream: () => Readable, limits: ExtractLimits, job: Job): void {
  const source = openStream();
  const gunzip = zlib.createGunzip();
  const extract = tarStream.extract();
  const selection = new TarSelection(limits);
  let scanned = 0;
  let readingTarget = false;

  const counter = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
      scanned += chunk.length;
      if (scanned > limits.maxScanBytes && !readingTarget) {
        job.fail(archiveError('SCAN_LIMIT', `scanned more than ${limits.maxScanBytes} bytes without finding PKG-INFO`));
        cb();
        return;
      }
      cb(null, chunk);
    },
  });

  job.onCleanup(() => {
    for (const s of [source, gunzip, counter]) {
      s.on('error', noop);
      s.unpipe();
      s.destroy();
    }
    extract.on('error', noop);
    extract.destroy();
    // wait for the file descriptor (if any) to be released
    if (source.closed) return;
    return waitForEvent(source, 'close');
  });

  source.on('error', (e: unknown) => {
    job.fail(isSystemError(e) ? archiveError('UNREADABLE', `cannot read file: ${oneLine(e)}`) : corrupt('gzip', oneLine(e)));
  });
  gunzip.on('error', (e: unknown) => job.fail(corrupt('gzip', oneLine(e))));
  counter.on('error', (e: unknown) => job.fail(corrupt('gzip', oneLine(e))));
  extract.on('error', (e: unknown) => job.fail(corrupt('tar', oneLine(e))));
  extract.on('finish', () => job.fail(archiveError('NO_METADATA', 'no PKG-INFO in sdist')));

  extract.on('entry', (header, stream, next) => {
    stream.on('error', noop);
    if (job.settled) return;
    const original = header.name;
    const size = header.size ?? 0;
    const step = selection.consider(original, header.type, size);
    if (step.action === 'fail') {
      job.fail(step.error);
      return;
    }
    if (step.action === 'skip') {
      stream.on('end', () => {
        if (!job.settled) next();
      });
      stream.resume();
      return;
    }
    readingTarget = true;
    const chunks: Buffer[] = [];
    let total = 0;
    stream.on('data', (data: unknown) => {
      if (job.settled) return;
      if (!(data instanceof Uint8Array)) {
        job.fail(corrupt('tar', 'unexpected chunk type'));
        return;
      }
      const chunk = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      total += chunk.length;
      if (total > size || total > limits.maxMetadataBytes) {
        job.fail(archiveError('TOO_LARGE', `PKG-INFO is larger than ${Math.min(size, limits.maxMetadataBytes)} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    stream.on('end', () => {
      if (job.settled) return;
      if (total !== size) {
        job.fail(corrupt('tar', `PKG-INFO: expected ${size} bytes, got ${total}`));
        return;
      }
      job.succeed(Buffer.concat(chunks, total), original);
    });
  });

  source.pipe(gunzip);
  gunzip.pipe(counter);
  counter.pipe(extract);
}
