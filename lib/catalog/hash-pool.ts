// A small pool of worker threads that hash files and read their metadata. Work is sent in
// batches (per-file messages would cost more than hashing a small wheel); urgent files (those
// of a project page somebody is waiting for, or an upload) jump the queue.

import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { MetadataSummary } from './catalog.js';
import type { ArchiveKind } from '../metadata/extract.js';

export interface HashTask {
  id: number;
  path: string;
  /** Read core metadata from this kind of archive (omitted: hash only). */
  archive?: ArchiveKind;
  /** Also compute md5 and blake2b-256 (the JSON API's digests). */
  extraDigests?: boolean;
}

export type HashResult =
  | {
      id: number;
      ok: true;
      size: number;
      mtimeMs: number;
      sha256: string;
      md5?: string;
      blake2b256?: string;
      metadata?: MetadataSummary | null;
      metadataError?: string;
    }
  | { id: number; ok: false; error: string };

type Job = { task: HashTask; resolve: (r: HashResult) => void; taken: boolean };

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
      const job = this.items[this.head++]!;
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

const MAX_BATCH = 64;

export class HashPool {
  private readonly workers: { worker: Worker; busy: Job[] | null }[] = [];
  private readonly urgent = new Queue();
  private readonly normal = new Queue();
  /** Queued, not yet started jobs by path, so that a waiting page can promote them. */
  private readonly queuedByPath = new Map<string, Job>();
  private nextId = 1;
  private closed = false;

  constructor(size = Math.max(1, os.availableParallelism())) {
    const url = new URL('./hash-worker.js', import.meta.url);
    for (let i = 0; i < size; i++) {
      const worker = new Worker(url);
      const slot: { worker: Worker; busy: Job[] | null } = { worker, busy: null };
      worker.on('message', (results: HashResult[]) => {
        const jobs = slot.busy ?? [];
        slot.busy = null;
        const byId = new Map(results.map((r) => [r.id, r]));
        for (const job of jobs) job.resolve(byId.get(job.task.id) ?? { id: job.task.id, ok: false, error: 'lost result' });
        this.pump();
      });
      worker.on('error', (err) => {
        const jobs = slot.busy ?? [];
        slot.busy = null;
        for (const job of jobs) job.resolve({ id: job.task.id, ok: false, error: `worker failed: ${err.message}` });
      });
      worker.unref();
      this.workers.push(slot);
    }
  }

  get backlog(): number {
    let inFlight = 0;
    for (const w of this.workers) inFlight += w.busy?.length ?? 0;
    return this.urgent.length + this.normal.length + inFlight;
  }

  run(task: Omit<HashTask, 'id'>, urgent = false): Promise<HashResult> {
    if (this.closed) return Promise.resolve({ id: 0, ok: false, error: 'pool closed' });
    return new Promise((resolve) => {
      const job: Job = { task: { ...task, id: this.nextId++ }, resolve, taken: false };
      (urgent ? this.urgent : this.normal).push(job);
      if (!urgent) this.queuedByPath.set(task.path, job);
      this.pump();
    });
  }

  /** Move a queued job for this path to the front. Returns false if it is not queued. */
  promote(path: string): boolean {
    const job = this.queuedByPath.get(path);
    if (!job || job.taken) return false;
    this.queuedByPath.delete(path);
    this.urgent.push({ task: job.task, resolve: job.resolve, taken: false });
    job.taken = true;
    this.pump();
    return true;
  }

  private pump(): void {
    for (const slot of this.workers) {
      if (slot.busy) continue;
      // Urgent work goes out in small batches so that it is never stuck behind a big one.
      let batch = this.urgent.take(4);
      if (!batch.length) batch = this.normal.take(MAX_BATCH);
      if (!batch.length) return;
      for (const job of batch) if (this.queuedByPath.get(job.task.path) === job) this.queuedByPath.delete(job.task.path);
      slot.busy = batch;
      slot.worker.postMessage(batch.map((j) => j.task));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const pending = [...this.urgent.drain(), ...this.normal.drain()];
    for (const job of pending) job.resolve({ id: job.task.id, ok: false, error: 'pool closed' });
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}
