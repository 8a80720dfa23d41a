// Worker thread: hashes files and reads their core metadata, off the main thread.
// Receives batches of HashTask, answers with batches of HashResult (same order).

import { Digester } from '../core/digests.js';
import { closeSync, fstatSync, openSync, read, readSync } from 'node:fs';
import { promisify } from 'node:util';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { extractMetadata, extractMetadataFromBuffer } from '../metadata/extract.js';
import type { ArchiveKind } from '../metadata/types.js';
import { summarizeMetadata } from '../metadata/summary.js';
import type { HashResult, HashTask, HashWorkerData } from './hash-pool.js';

// Test hook (the crash tests): PYPI_LITE_TEST_WORKER_EXIT=<file name>[,<file name>...] makes a
// worker exit when it starts reading one of those files; with an `once:` prefix only the first
// workers do, not the replacements of dead ones. Unset in normal use.
const crashHook = process.env.PYPI_LITE_TEST_WORKER_EXIT ?? '';
const crashOnce = crashHook.startsWith('once:');
const crashOn = new Set((crashOnce ? crashHook.slice('once:'.length) : crashHook).split(',').filter(Boolean));
const isReplacement = (workerData as HashWorkerData | null)?.replacement === true;

const IN_MEMORY_LIMIT = 16 * 1024 * 1024;
const CHUNK = 1024 * 1024;

const readAsync = promisify(read);

async function digestFile(task: HashTask): Promise<HashResult> {
  let fd: number | undefined;
  if (crashOn.size && crashOn.has(path.basename(task.path)) && !(crashOnce && isReplacement)) process.exit(70);
  try {
    // Small files are read with synchronous calls: blocking is what this thread is for, and
    // the promise API costs a thread-pool round trip per call, several times the cost of
    // reading a small wheel (~30 us synchronously against ~250 us). Big files are read
    // asynchronously, so that the rest of the batch is not stuck behind them.
    fd = openSync(task.path, 'r');
    const st = fstatSync(fd);
    if (!st.isFile()) return { id: task.id, ok: false, error: 'not a regular file' };
    const digester = await Digester.create({ md5: task.extraDigests, blake2b256: task.extraDigests });
    let whole: Buffer | null = null;
    if (st.size <= IN_MEMORY_LIMIT) {
      whole = Buffer.allocUnsafe(st.size);
      let off = 0;
      while (off < st.size) {
        const bytesRead = readSync(fd, whole, off, st.size - off, off);
        if (bytesRead === 0) break;
        off += bytesRead;
      }
      if (off !== st.size) whole = whole.subarray(0, off);
      digester.update(whole);
    } else {
      const buf = Buffer.allocUnsafe(CHUNK);
      let pos = 0;
      for (;;) {
        const { bytesRead } = await readAsync(fd, buf, 0, CHUNK, pos);
        if (bytesRead === 0) break;
        const chunk = buf.subarray(0, bytesRead);
        digester.update(chunk);
        pos += bytesRead;
      }
    }
    closeSync(fd);
    fd = undefined;
    const result: HashResult = { id: task.id, ok: true, size: st.size, mtimeMs: st.mtimeMs, dev: st.dev, ino: st.ino, ctimeMs: st.ctimeMs, ...digester.digest() };
    if (task.archive) {
      const kind: ArchiveKind = task.archive;
      const extracted = whole ? await extractMetadataFromBuffer(whole, kind) : await extractMetadata(task.path, kind);
      if (extracted.ok) {
        result.metadata = summarizeMetadata(extracted.bytes, kind);
      } else {
        result.metadata = null;
        result.metadataError = extracted.error;
        result.metadataErrorCode = extracted.code;
      }
    }
    return result;
  } catch (err) {
    return { id: task.id, ok: false, error: err instanceof Error ? err.message : String(err) };
  } finally {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        /* already reported the read error */
      }
    }
  }
}

// Results go back as soon as they are ready (grouped per event-loop turn), so that one slow
// file (a big download, a bomb being refused) never holds up the rest of its batch.
let ready: HashResult[] = [];
let flushScheduled = false;
function send(result: HashResult): void {
  ready.push(result);
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(() => {
    flushScheduled = false;
    const out = ready;
    ready = [];
    parentPort?.postMessage(out);
  });
}

// A few files at a time (bounded memory: small files are read whole); urgent ones first.
const CONCURRENCY = 4;
const queue: HashTask[] = [];
let running = 0;
function next(): void {
  while (running < CONCURRENCY && queue.length) {
    const task = queue.shift()!;
    running++;
    void digestFile(task).then((r) => {
      running--;
      send(r);
      next();
    });
  }
}

parentPort?.on('message', (batch: HashTask[]) => {
  if (batch[0]?.urgent) queue.unshift(...batch);
  else queue.push(...batch);
  next();
});
