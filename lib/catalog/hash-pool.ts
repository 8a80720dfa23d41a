// A small pool of worker threads that hash files and read their metadata. Work is sent in
// batches (per-file messages would cost more than hashing a small wheel); urgent files (those
// of a project page somebody is waiting for, or an upload) jump the queue.
//
// A worker that dies (a crash in native code, out of memory, process.exit) is replaced at once,
// and the files it held are retried once. Which of them killed it is unknown, so each retry
// runs alone in a worker ("suspects"): a second death is then that file's, and answers
// `ok: false, transient: true` (nothing is known against the bytes; the caller keeps the file).

import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { ArchiveErrorCode, ArchiveKind, MetadataSummary } from '../metadata/types.js';
import { decodeResults, encodeTasks, STOP, type ResultBatch } from './hash-messages.js';

export interface HashTask {
  id: number;
  path: string;
  /** Read core metadata from this kind of archive (omitted: hash only). */
  archive?: ArchiveKind;
  /** Also compute md5 and blake2b-256 (the JSON API's digests). */
  extraDigests?: boolean;
  /** Set by the pool: the worker starts it before the files it already holds. */
  urgent?: boolean;
}

export type HashResult =
  | {
      id: number;
      ok: true;
      size: number;
      mtimeMs: number;
      dev: number;
      ino: number;
      ctimeMs: number;
      sha256: string;
      md5?: string;
      blake2b256?: string;
      metadata?: MetadataSummary | null;
      metadataError?: string;
      metadataErrorCode?: ArchiveErrorCode;
    }
  /** transient: the pool failed (a worker died twice, or the pool closed), not the file. */
  | { id: number; ok: false; error: string; transient?: boolean };

type Job = { task: HashTask; resolve: (r: HashResult) => void; taken: boolean; suspect: boolean };

/** Data every worker gets: `replacement` is true for a worker started after one died. */
export interface HashWorkerData {
  replacement: boolean;
}

/** FIFO with O(1) shift, so that 100,000 queued files cost nothing to drain. */
class Queue {
  private items: Job[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(job: Job): void {
    this.items.push(job);
  }
  take(max: number): Job[] {
    const out: Job[] = [];
    while (out.length < max && this.head < this.items.length) {
      const job = this.items[this.head++];
      if (!job.taken) {
        job.taken = true;
        out.push(job);
      }
    }
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return out;
  }
  drain(): Job[] {
    return this.take(Number.MAX_SAFE_INTEGER);
  }
}

const MAX_BATCH = 256;
/** A worker gets more work once fewer than this many of its files are unfinished. */
const LOW_WATER = 128;

interface Slot {
  worker: Worker;
  /** Jobs sent to this worker and not answered yet, by task id. */
  inflight: Map<number, Job>;
  dead: boolean;
  /** Running one suspect alone: gets no other work until it answers. */
  isolating: boolean;
  /** Retires the worker once it has had nothing to do for IDLE_EXIT_MS. */
  idleTimer: NodeJS.Timeout | null;
}

/**
 * A worker with nothing to do exits after this long. Workers start only when something needs
 * hashing: a warm start (every digest cached) starts none, and after a cold start or a burst of
 * new files they go away again. Each one costs ~0.3 s of CPU to start (compiling its modules)
 * and ~30-40 MB of RSS while it lives; restarting one later costs the first file that much latency.
 */
const IDLE_EXIT_MS = 30_000;

/**
 * A worker's young generation (V8's default lets it grow to 3 x 16 MB): almost nothing a
 * worker allocates outlives its file (the bytes are in a reused buffer or outside the heap), so
 * a small one costs no more CPU in scavenges and keeps ~25 MB less RSS per worker at a cold start.
 */
const WORKER_YOUNG_MB = 4;

export class HashPool {
  private readonly workers: Slot[] = [];
  private readonly urgent = new Queue();
  private readonly normal = new Queue();
  /** Retries of files a dead worker held, run one at a time. */
  private readonly suspects = new Queue();
  /** Queued, not yet started jobs by task id, so that a waiting page can promote them. */
  private readonly queuedById = new Map<number, Job>();
  private nextId = 1;
  private closed = false;
  private pumpScheduled = false;

  /** Workers that died and were replaced (for logs and tests). */
  restarts = 0;
  private readonly url = new URL('./hash-worker.js', import.meta.url);

  /** At most this many workers, started on demand (see IDLE_EXIT_MS). */
  private readonly size: number;

  constructor(
    size = Math.max(1, os.availableParallelism()),
    private readonly onWorkerDied: (reason: string, orphans: number) => void = () => {},
    private readonly idleExitMs = IDLE_EXIT_MS,
  ) {
    this.size = Math.max(1, size);
  }

  /** Workers running now (started on demand, retired when idle). */
  get running(): number {
    return this.workers.length;
  }

  /** Start workers for the waiting work: one per waiting file, up to the pool's size. */
  private grow(): void {
    const waiting = this.urgent.length + this.normal.length + this.suspects.length;
    let idle = 0;
    for (const w of this.workers) if (w.inflight.size === 0) idle++;
    for (let want = waiting - idle; want > 0 && this.workers.length < this.size; want--) this.workers.push(this.spawn(false));
  }

  /** Retire the worker after IDLE_EXIT_MS without work (armed whenever it runs dry). */
  private idleSoon(slot: Slot): void {
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    slot.idleTimer = setTimeout(() => {
      slot.idleTimer = null;
      const i = this.workers.indexOf(slot);
      if (slot.dead || slot.inflight.size > 0 || i === -1) return;
      slot.dead = true; // retired: its 'exit' is no death
      this.workers.splice(i, 1);
      void stopWorker(slot.worker);
    }, this.idleExitMs);
    slot.idleTimer.unref();
  }

  private spawn(replacement: boolean): Slot {
    const workerData: HashWorkerData = { replacement };
    const worker = new Worker(this.url, { workerData, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_MB } });
    const slot: Slot = { worker, inflight: new Map(), dead: false, isolating: false, idleTimer: null };
    worker.on('message', (batch: ResultBatch) => {
      const results = decodeResults(batch);
      for (const r of results) {
        const job = slot.inflight.get(r.id);
        slot.inflight.delete(r.id);
        job?.resolve(r);
      }
      if (slot.inflight.size === 0) {
        slot.isolating = false;
        this.idleSoon(slot);
      }
      // Later: the resolved callers queue their next files in the microtasks after this.
      this.pumpSoon();
    });
    // 'error' (an uncaught exception) is followed by 'exit'; either one retires the slot.
    worker.on('error', (err) => this.died(slot, err.message));
    worker.on('exit', (code) => this.died(slot, `exit code ${code}`));
    worker.unref();
    this.idleSoon(slot);
    return slot;
  }

  /** Replace a dead worker and retry (once) the files it held. */
  private died(slot: Slot, reason: string): void {
    if (slot.dead) return;
    slot.dead = true;
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    const orphans = [...slot.inflight.values()];
    slot.inflight.clear();
    const i = this.workers.indexOf(slot);
    if (this.closed || i === -1) {
      for (const job of orphans) job.resolve({ id: job.task.id, ok: false, error: 'pool closed', transient: true });
      return;
    }
    this.restarts++;
    this.workers[i] = this.spawn(true);
    this.onWorkerDied(reason, orphans.length);
    for (const job of orphans) {
      if (job.suspect) {
        job.resolve({ id: job.task.id, ok: false, error: `the hashing worker died twice while reading this file (${reason})`, transient: true });
        continue;
      }
      this.suspects.push({ task: job.task, resolve: job.resolve, taken: false, suspect: true });
    }
    this.pump();
  }

  get backlog(): number {
    let inFlight = 0;
    for (const w of this.workers) inFlight += w.inflight.size;
    return this.urgent.length + this.normal.length + this.suspects.length + inFlight;
  }

  run(task: Omit<HashTask, 'id'>, urgent = false): Promise<HashResult> {
    return new Promise((resolve) => this.submit(task, urgent, resolve));
  }

  /**
   * `run` with a callback (no promise per file: a cold start submits every file). Returns the
   * task's id, which its result carries (one callback can serve many files) and `promote` takes.
   */
  submit(task: Omit<HashTask, 'id'>, urgent: boolean, done: (r: HashResult) => void): number {
    const t: HashTask = { id: this.nextId++, path: task.path };
    if (this.closed) {
      done({ id: t.id, ok: false, error: 'pool closed' });
      return t.id;
    }
    if (task.archive) t.archive = task.archive;
    if (task.extraDigests) t.extraDigests = true;
    const job: Job = { task: t, resolve: done, taken: false, suspect: false };
    (urgent ? this.urgent : this.normal).push(job);
    if (urgent) this.pump();
    else {
      this.queuedById.set(t.id, job);
      this.pumpSoon();
    }
    return t.id;
  }

  /**
   * Pump once callers are done queueing for now (files are queued one at a time: pumping at
   * each would send most of them one per message, and a message costs more than a small file).
   */
  private pumpSoon(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Move the queued job with this task id (submit's) to the front. Returns false if it is not queued. */
  promote(id: number): boolean {
    const job = this.queuedById.get(id);
    if (!job || job.taken) return false;
    this.queuedById.delete(id);
    this.urgent.push({ task: job.task, resolve: job.resolve, taken: false, suspect: false });
    job.taken = true;
    this.pump();
    return true;
  }

  private pump(): void {
    if (this.closed) return;
    this.grow();
    // A suspect goes alone to an idle worker, which gets nothing else until it answers.
    for (const slot of this.workers) {
      if (!this.suspects.length) break;
      if (slot.inflight.size > 0) continue;
      const one = this.suspects.take(1);
      if (one.length) slot.isolating = true;
      this.send(slot, one);
    }
    const open = this.workers.filter((w) => !w.isolating);
    if (!open.length) return;
    // Urgent work goes at once to the least busy worker, in small batches, even if that worker
    // still has files in hand: the worker interleaves them, so a page never waits for a batch.
    while (this.urgent.length) {
      const slot = open.reduce((a, b) => (b.inflight.size < a.inflight.size ? b : a));
      const batch = this.urgent.take(4);
      for (const job of batch) job.task.urgent = true;
      if (!this.send(slot, batch)) break;
    }
    for (const slot of open) {
      if (slot.inflight.size >= LOW_WATER) continue;
      if (!this.send(slot, this.normal.take(MAX_BATCH - slot.inflight.size))) return;
    }
  }

  private send(slot: Slot, batch: Job[]): boolean {
    if (!batch.length) return false;
    if (slot.idleTimer) {
      clearTimeout(slot.idleTimer);
      slot.idleTimer = null;
    }
    for (const job of batch) {
      this.queuedById.delete(job.task.id);
      slot.inflight.set(job.task.id, job);
    }
    slot.worker.postMessage(encodeTasks(batch.map((j) => j.task)));
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    const pending = [...this.urgent.drain(), ...this.normal.drain(), ...this.suspects.drain()];
    for (const job of pending) job.resolve({ id: job.task.id, ok: false, error: 'pool closed', transient: true });
    for (const w of this.workers) if (w.idleTimer) clearTimeout(w.idleTimer);
    await Promise.all(this.workers.map((w) => stopWorker(w.worker)));
  }
}

/** How long a worker asked to stop may take to finish the step it is in before it is terminated. */
const STOP_GRACE_MS = 5_000;

/**
 * End a worker between two slices of files (the STOP message). terminate() can interrupt it
 * inside a file's synchronous inflate, and Node 22 then aborts the whole process while it
 * cleans up the half-made zlib handle ("close before init": seen in CI, when a test ended a busy
 * worker; a server stopped during a cold start would do the same). A worker that does not stop
 * within STOP_GRACE_MS (one step over a huge file) is terminated.
 */
export function stopWorker(worker: Worker): Promise<void> {
  if (worker.threadId === -1) return Promise.resolve(); // exited already
  // (Workers are unref'd: without this, a process with nothing else to do would exit before
  // the worker's 'exit', and the caller's next steps, e.g. the digest cache's last flush at a
  // graceful stop, would never run.)
  worker.ref();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      worker.terminate().then(() => resolve(), () => resolve());
    }, STOP_GRACE_MS);
    timer.unref();
    worker.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    worker.postMessage(STOP);
  });
}
