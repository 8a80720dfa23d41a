// Worker thread: hashes files and reads their core metadata, off the main thread.
// Receives batches of HashTask, answers with batches of HashResult (in the order they finish).
//
// Most distribution files are small (a wheel of a few KB): for them the cost is per file, not
// per byte, so a small file is done in one synchronous step: one open, one fstat, one read into
// a reused buffer, sha256 of those bytes, and the metadata parsed from the same bytes in memory.
// Small files are done in slices (bounded in files and bytes), each answered with one message;
// between slices the thread takes new messages, so urgent work waits at most one slice. Bigger
// files, and files whose digests need more than sha256, take the asynchronous path (streamed
// above IN_MEMORY_LIMIT), a few at a time beside the slices.

import { Digester } from '../core/digests.js';
import { hash } from 'node:crypto';
import { closeSync, fstatSync, openSync, read, readlinkSync, readSync, type Stats } from 'node:fs';
import { promisify } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { extractMetadata, extractMetadataFromBuffer, extractMetadataSync } from '../metadata/extract.js';
import type { ArchiveKind, ExtractResult } from '../metadata/types.js';
import { summarizeMetadata } from '../metadata/summary.js';
import type { HashResult, HashTask, HashWorkerData } from './hash-pool.js';
import { decodeTasks, encodeResults, STOP, WORKER_NICE, type TaskBatch } from './hash-messages.js';

// Test hook (the crash tests): PYPI_LITE_TEST_WORKER_EXIT=<file name>[,<file name>...] makes a
// worker exit when it starts reading one of those files; with an `once:` prefix only the first
// workers do, not the replacements of dead ones. Unset in normal use.
const crashHook = process.env.PYPI_LITE_TEST_WORKER_EXIT ?? '';
const crashOnce = crashHook.startsWith('once:');
const crashOn = new Set((crashOnce ? crashHook.slice('once:'.length) : crashHook).split(',').filter(Boolean));
const isReplacement = (workerData as HashWorkerData | null)?.replacement === true;

/**
 * Hashing is background work: the main thread (requests, and at a cold start applying every
 * result: catalog, cache) is the critical path, and with a worker per core the three threads
 * shared two cores equally. So a worker lowers its own thread's priority (Linux: setpriority on
 * a thread id changes that thread only; nice 10 gives the main thread ~90% of a contended core).
 * An idle main thread leaves the workers every core. Best effort: elsewhere, or when refused,
 * the worker runs at the process's priority.
 */
function lowerPriority(): void {
  try {
    const tid = Number(path.basename(readlinkSync('/proc/thread-self')));
    if (Number.isInteger(tid) && tid > 0 && tid !== process.pid) os.setPriority(tid, Math.min(19, Math.max(os.getPriority(tid), WORKER_NICE)));
  } catch {
    /* not Linux, or not allowed: keep the process's priority */
  }
}
lowerPriority();

function crashIfAsked(task: HashTask): void {
  if (crashOn.size && crashOn.has(path.basename(task.path)) && !(crashOnce && isReplacement)) process.exit(70);
}

/** Files up to this size are done synchronously, read into the reused buffer. */
const SYNC_LIMIT = 1024 * 1024;
/** Asynchronous path: files up to this size are read whole (parsed in memory), bigger ones streamed. */
const IN_MEMORY_LIMIT = 16 * 1024 * 1024;
const CHUNK = 1024 * 1024;
/** A slice of synchronous work ends after this many files or bytes read. */
const SLICE_FILES = 64;
const SLICE_BYTES = 4 * 1024 * 1024;
/** Files on the asynchronous path at once (each holds at most IN_MEMORY_LIMIT). */
const ASYNC_CONCURRENCY = 4;

const readAsync = promisify(read);

function failure(task: HashTask, err: unknown): HashResult {
  return { id: task.id, ok: false, error: err instanceof Error ? err.message : String(err) };
}

function okResult(task: HashTask, st: Stats, sha256: string): HashResult & { ok: true } {
  return { id: task.id, ok: true, size: st.size, mtimeMs: st.mtimeMs, dev: st.dev, ino: st.ino, ctimeMs: st.ctimeMs, sha256 };
}

function addMetadata(result: HashResult & { ok: true }, extracted: ExtractResult, kind: ArchiveKind): HashResult {
  if (extracted.ok) {
    result.metadata = summarizeMetadata(extracted.bytes, kind);
  } else {
    result.metadata = null;
    result.metadataError = extracted.error;
    result.metadataErrorCode = extracted.code;
  }
  return result;
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* already reported the read error */
  }
}

// ---------------------------------------------------------------------------------------------
// the synchronous path (small files)

/** Reused for every small file: nothing from it may outlive the step (results are copies). */
let scratch = Buffer.allocUnsafe(64 * 1024);

/** What the synchronous step did: its result, or the file takes the asynchronous path. */
type Step = { kind: 'done'; result: HashResult; bytes: number } | { kind: 'later' };

/**
 * One small file, start to end, synchronously. The metadata comes from the same bytes that
 * were hashed. Left for the asynchronous path: a file over SYNC_LIMIT, and one where the
 * in-memory reader cannot decide (ZIP64, a data error mid-stream; rare), which the streaming
 * reader then reads (so that no copy of the bytes waits here, however many there are).
 */
function smallFile(task: HashTask): Step {
  crashIfAsked(task);
  let fd: number | undefined;
  try {
    fd = openSync(task.path, 'r');
    const st = fstatSync(fd);
    if (!st.isFile()) return { kind: 'done', result: { id: task.id, ok: false, error: 'not a regular file' }, bytes: 0 };
    if (st.size > SYNC_LIMIT) return { kind: 'later' };
    if (scratch.length < st.size) scratch = Buffer.allocUnsafe(Math.min(SYNC_LIMIT, 2 ** Math.ceil(Math.log2(st.size))));
    let off = 0;
    while (off < st.size) {
      const n = readSync(fd, scratch, off, st.size - off, off);
      if (n === 0) break;
      off += n;
    }
    closeSync(fd);
    fd = undefined;
    const bytes = scratch.subarray(0, off);
    const result = okResult(task, st, hash('sha256', bytes, 'hex'));
    if (!task.archive) return { kind: 'done', result, bytes: off };
    const kind = task.archive;
    const fast = extractMetadataSync(bytes, kind);
    return fast === null ? { kind: 'later' } : { kind: 'done', result: addMetadata(result, fast, kind), bytes: off };
  } catch (err) {
    return { kind: 'done', result: failure(task, err), bytes: 0 };
  } finally {
    if (fd !== undefined) closeQuietly(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// the asynchronous path (big files, extra digests)

async function digestFile(task: HashTask): Promise<HashResult> {
  let fd: number | undefined;
  crashIfAsked(task);
  try {
    // Files up to IN_MEMORY_LIMIT are read with synchronous calls (a thread-pool round trip
    // per call costs more than it saves), bigger ones asynchronously, so that the slices of
    // small files go on between their chunks.
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
        digester.update(buf.subarray(0, bytesRead));
        pos += bytesRead;
      }
    }
    closeSync(fd);
    fd = undefined;
    const digests = digester.digest();
    const result = okResult(task, st, digests.sha256);
    if (digests.md5) result.md5 = digests.md5;
    if (digests.blake2b256) result.blake2b256 = digests.blake2b256;
    if (!task.archive) return result;
    const kind = task.archive;
    return addMetadata(result, whole ? await extractMetadataFromBuffer(whole, kind) : await extractMetadata(task.path, kind), kind);
  } catch (err) {
    return failure(task, err);
  } finally {
    if (fd !== undefined) closeQuietly(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// scheduling and answers

// Results go back in one message per slice (or per event-loop turn for the asynchronous path),
// so that one slow file (a big download, a bomb being refused) never holds up the rest.
let ready: HashResult[] = [];
let flushScheduled = false;
function send(result: HashResult): void {
  ready.push(result);
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(flush);
}
function flush(): void {
  flushScheduled = false;
  if (!ready.length) return;
  const out = ready;
  ready = [];
  parentPort?.postMessage(encodeResults(out));
}

/** FIFO with O(1) shift; urgent batches go to the front. */
class TaskQueue {
  private items: HashTask[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  shift(): HashTask | undefined {
    const t = this.items[this.head];
    if (t === undefined) return undefined;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return t;
  }
  add(batch: HashTask[], front: boolean): void {
    if (!front) {
      for (const t of batch) this.items.push(t);
      return;
    }
    this.items = [...batch, ...this.items.slice(this.head)];
    this.head = 0;
  }
}

const queue = new TaskQueue();
const asyncQueue = new TaskQueue();
let asyncRunning = 0;
let sliceScheduled = false;

function pumpAsync(): void {
  while (asyncRunning < ASYNC_CONCURRENCY) {
    const task = asyncQueue.shift();
    if (!task) return;
    asyncRunning++;
    void digestFile(task).then((r) => {
      asyncRunning--;
      send(r);
      pumpAsync();
    });
  }
}

function scheduleSlice(): void {
  if (sliceScheduled || !queue.length) return;
  sliceScheduled = true;
  setImmediate(slice);
}

/** Small files until the slice is full, then one message with their results. */
function slice(): void {
  sliceScheduled = false;
  let files = 0;
  let bytes = 0;
  while (files < SLICE_FILES && bytes < SLICE_BYTES) {
    const task = queue.shift();
    if (!task) break;
    if (task.extraDigests) {
      asyncQueue.add([task], task.urgent === true);
      continue;
    }
    const step = smallFile(task);
    if (step.kind === 'later') {
      asyncQueue.add([task], task.urgent === true);
      continue;
    }
    files++;
    bytes += step.bytes;
    ready.push(step.result);
  }
  pumpAsync();
  flush();
  scheduleSlice();
}

parentPort?.on('message', (message: TaskBatch | typeof STOP) => {
  // Between two slices: never inside a file's synchronous step (see STOP).
  if (message === STOP) process.exit(0);
  const batch = decodeTasks(message);
  queue.add(batch, batch[0]?.urgent === true);
  scheduleSlice();
});
