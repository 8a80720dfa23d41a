// The streaming zip reader (wheels, sdist .zip, eggs): yauzl over a file or a buffer, one
// central-directory entry at a time, reading only the selected member.

import type { Readable } from 'node:stream';
import type { Entry as ZipEntry, Options as ZipOptions, ZipFile } from 'yauzl';
import { archiveError, corrupt, isSystemError, oneLine } from './archive-errors.js';
import { noop, waitForEvent, type Job } from './job.js';
import { ZipSelection } from './selection.js';
import type { ExtractLimits } from './types.js';

export type ZipOpener = (options: ZipOptions, cb: (err: Error | null, zipfile?: ZipFile) => void) => void;

export function extractFromZip(openZip: ZipOpener, kind: 'wheel' | 'zip' | 'egg', limits: ExtractLimits, job: Job): void {
  const selection = new ZipSelection(kind, limits);

  let zip: ZipFile | null = null;
  let fdClosed = false;
  let awaitingEntry = false;
  let closeRequested = false;
  let activeStream: Readable | null = null;

  const closeZip = (): void => {
    if (zip === null) return;
    if (awaitingEntry) {
      // a central-directory read is in flight: close when it completes so the
      // descriptor is never closed under a pending read
      closeRequested = true;
      return;
    }
    if (zip.isOpen) zip.close();
  };

  // An open still in flight when the job settles (a timeout) holds a descriptor soon: the
  // cleanup waits until that one is closed too, so that no descriptor outlives the promise.
  let releaseOpen: () => void = noop;
  const openReleased = new Promise<void>((resolve) => (releaseOpen = resolve));

  job.onCleanup(() => {
    if (activeStream !== null) {
      activeStream.on('error', noop);
      activeStream.destroy();
      activeStream = null;
    }
    if (zip === null) return openReleased;
    const z = zip;
    closeZip();
    if (fdClosed || !isFdReader(z)) return;
    return waitForEvent(z, 'close');
  });

  const options: ZipOptions = {
    lazyEntries: true,
    autoClose: true,
    validateEntrySizes: true,
    // names are decoded and validated by us: yauzl would abort the whole
    // archive on a `../` name, we only want to ignore such entries
    decodeStrings: false,
    strictFileNames: true,
  };

  openZip(options, (err, zipfile) => {
    if (err || !zipfile) {
      releaseOpen();
      if (!job.settled) {
        job.fail(isSystemError(err) ? archiveError('UNREADABLE', `cannot read file: ${oneLine(err)}`) : corrupt('zip', oneLine(err)));
      }
      return;
    }
    zip = zipfile;
    zipfile.on('error', (e: unknown) => {
      awaitingEntry = false;
      if (!job.settled) job.fail(corrupt('zip', oneLine(e)));
      if (closeRequested) closeZip();
    });
    zipfile.once('close', () => {
      fdClosed = true;
    });
    if (job.settled) {
      if (isFdReader(zipfile)) zipfile.once('close', releaseOpen);
      else releaseOpen();
      closeZip();
      return;
    }
    releaseOpen();
    const tooMany = selection.checkEntryCount(zipfile.entryCount);
    if (tooMany !== null) {
      job.fail(tooMany);
      return;
    }

    const next = (): void => {
      if (job.settled) return;
      awaitingEntry = true;
      zipfile.readEntry();
    };

    zipfile.on('end', () => {
      awaitingEntry = false;
      if (closeRequested) closeZip();
      if (job.settled) return;
      job.settle(selection.end());
    });

    zipfile.on('entry', (entry: ZipEntry) => {
      awaitingEntry = false;
      if (job.settled) {
        closeZip();
        return;
      }
      const step = selection.consider(entry);
      if (step.action === 'skip') {
        next();
        return;
      }
      if (step.action === 'fail') {
        job.fail(step.error);
        return;
      }
      readZipEntry(zipfile, entry, selection, limits, job, (s) => {
        activeStream = s;
      }, (bytes) => {
        activeStream = null;
        if (job.settled) return;
        const result = selection.accept(bytes, step.name, step.dir);
        if (result === null) next();
        else job.settle(result);
      });
    });

    next();
  });
}

/** True when the zip was opened from a file (its reader closes a descriptor and emits 'close'). */
function isFdReader(zip: ZipFile): boolean {
  const reader: unknown = Reflect.get(zip, 'reader');
  return typeof reader === 'object' && reader !== null && typeof Reflect.get(reader, 'fd') === 'number';
}

function readZipEntry(
  zipfile: ZipFile,
  entry: ZipEntry,
  selection: ZipSelection,
  limits: ExtractLimits,
  job: Job,
  onStream: (s: Readable) => void,
  onDone: (bytes: Buffer) => void,
): void {
  // the central directory may lie: never accept more than it declared, nor
  // more than the limit
  const cap = Math.min(entry.uncompressedSize, limits.maxMetadataBytes);
  const label = selection.label;
  zipfile.openReadStream(entry, (err, stream) => {
    if (err || !stream) {
      if (!job.settled) job.fail(corrupt('zip', oneLine(err)));
      return;
    }
    if (job.settled) {
      stream.on('error', noop);
      stream.destroy();
      return;
    }
    onStream(stream);
    const chunks: Buffer[] = [];
    let total = 0;
    stream.on('data', (chunk: Buffer) => {
      if (job.settled) return;
      total += chunk.length;
      if (total > cap) {
        job.fail(archiveError('TOO_LARGE', `${label} inflates to more than the ${cap} bytes declared`));
        return;
      }
      chunks.push(chunk);
    });
    stream.on('error', (e: unknown) => {
      if (!job.settled) job.fail(corrupt('zip', `${label}: ${oneLine(e)}`));
    });
    stream.on('end', () => {
      if (job.settled) return;
      const bytes = Buffer.concat(chunks, total);
      const problem = selection.verify(bytes, entry);
      if (problem !== null) {
        job.fail(problem);
        return;
      }
      onDone(bytes);
    });
  });
}
