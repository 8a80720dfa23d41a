// The in-bucket index and change feed that keep replicas on one bucket in step, with no other
// shared component. Everything lives under the root's reserved prefix `<prefix>.pypi-lite/`
// (a dot segment: never listed, never served as a package):
//
//   feed/<ms, 13 digits>-<replica>-<seq, 8 digits>.json   one batch of records, never rewritten
//   index/<epoch, 10 digits>.json                          a snapshot: the state up to a feed name
//
// A record says: put (key, etag, size, mtime and what is known of the bytes: sha256, metadata
// summary or metadata error), delete (key), or "the yank state changed". Names sort by time, so
// a ListObjectsV2 with StartAfter finds the new ones. Every replica lists the feed every second
// from a window (WINDOW_MS) behind its own clock, and remembers the names it has read in that
// window: a batch written by a slow writer, or by a replica whose clock lags by less than the
// window, is still read, and none is read twice. What a replica missed anyway (a clock off by
// more than the window, a feed object that could not be read) is repaired by the store's
// periodic full listing; only digests would then be recomputed, never wrong ones served,
// because what is known is keyed by the object's ETag and size.
//
// Compaction: when more than COMPACT_AT feed objects follow the newest snapshot, a replica
// writes the next snapshot (`index/<epoch+1>`, a conditional create: of two replicas racing,
// one writes it). A snapshot holds the whole state and the feed name it covers up to (a window
// behind the writer's clock: records after that name are replayed on top, and replaying a
// record that is already in the state changes nothing). Feed objects older than the previous
// snapshot's cover and older than GRACE_MS, and older snapshots, are then removed.

import { randomBytes } from 'node:crypto';
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';
import type { KnownDigests, StoreEntry, StoreEvent } from './types.js';

export const RESERVED = '.pypi-lite/';

export type FeedRecord =
  | { op: 'put'; key: string; etag: string; size: number; mtimeMs: number; known?: KnownDigests }
  | { op: 'delete'; key: string }
  | { op: 'yanks' };

interface IndexEntry {
  etag: string;
  size: number;
  mtimeMs: number;
  known?: KnownDigests;
}

interface Snapshot {
  v: 1;
  epoch: number;
  /** Feed objects up to this name (inclusive) are in the state. */
  covers: string;
  entries: [key: string, entry: IndexEntry][];
}

export interface FeedOptions {
  client: S3Client;
  bucket: string;
  /** The root's key prefix: '' or ending in '/'. */
  prefix: string;
  log: Logger;
  /** How often the feed is listed (default 1000 ms). */
  pollMs?: number;
  /** How far behind its own clock a replica lists the feed again (clock skew, slow writers). */
  windowMs?: number;
  /** Feed objects after the newest snapshot that make a replica write the next one. */
  compactAt?: number;
  /** How long a feed object stays after a later snapshot covers it. */
  graceMs?: number;
  /** Records are gathered this long into one feed object (default 50 ms). */
  batchMs?: number;
}

export const WINDOW_MS = 30_000;
const COMPACT_AT = 500;
const GRACE_MS = 10 * 60_000;
/** Records kept for a store that is down: beyond that, the oldest are dropped (the periodic listing repairs). */
const MAX_PENDING = 50_000;
/** Records per feed object. */
const MAX_BATCH = 2_000;

const pad = (n: number, width: number): string => String(Math.max(0, Math.floor(n))).padStart(width, '0');

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

export type FeedListener = (event: StoreEvent) => void;

/** The feed of one root: the in-memory index (recall/record) and the poller (events). */
export class S3Feed {
  /** This process's name in feed object names (a new one per start). */
  readonly replica = randomBytes(4).toString('hex');
  private readonly index = new Map<string, IndexEntry>();
  /** Feed names read within the window (de-duplication), with the time they sort at. */
  private readonly seen = new Set<string>();
  private readonly pending: FeedRecord[] = [];
  private seq = 0;
  private flushTimer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private readonly listeners = new Set<FeedListener>();
  private readonly yankListeners = new Set<() => void>();
  /** When the last successful listing of the feed started (the next one starts a window before it). */
  private lastListedAt = Date.now();
  private snapshotEpoch = 0;
  private snapshotCovers = '';
  /** Feed objects known to follow the newest snapshot (the compaction trigger). */
  private sinceSnapshot = 0;
  private compacting = false;
  private down = false;
  private closed = false;
  private loadPromise: Promise<void> | null = null;
  private readonly feedPrefix: string;
  private readonly indexPrefix: string;
  private readonly log: Logger;
  private readonly pollMs: number;
  private readonly windowMs: number;
  private readonly compactAt: number;
  private readonly graceMs: number;
  private readonly batchMs: number;
  /** Counters for /metrics and the tests. */
  readonly stats = { published: 0, read: 0, recalled: 0, snapshots: 0 };

  constructor(private readonly opts: FeedOptions) {
    this.feedPrefix = `${opts.prefix}${RESERVED}feed/`;
    this.indexPrefix = `${opts.prefix}${RESERVED}index/`;
    this.log = opts.log.child({ part: 'feed' });
    this.pollMs = opts.pollMs ?? 1000;
    this.windowMs = opts.windowMs ?? WINDOW_MS;
    this.compactAt = opts.compactAt ?? COMPACT_AT;
    this.graceMs = opts.graceMs ?? GRACE_MS;
    this.batchMs = opts.batchMs ?? 50;
  }

  /** Load the newest snapshot and the feed after it (once; a store lists only after this). */
  load(): Promise<void> {
    this.loadPromise ??= this.loadAll().catch((err: unknown) => {
      this.loadPromise = null; // tried again by the next call
      throw err;
    });
    return this.loadPromise;
  }

  private async loadAll(): Promise<void> {
    const snapshots = await this.listNames(this.indexPrefix);
    const newest = snapshots.at(-1);
    if (newest) {
      const snap = await this.readJson<Snapshot>(newest).catch((err: unknown) => {
        this.log.warn({ err, snapshot: newest }, 'cannot read the index snapshot; the feed and the listing rebuild it');
        return null;
      });
      if (snap?.v === 1) {
        for (const [key, e] of snap.entries) this.index.set(key, e);
        this.snapshotEpoch = snap.epoch;
        this.snapshotCovers = snap.covers;
      }
    }
    // Replay everything after the snapshot's cover, and a window behind it (late writers).
    this.lastListedAt = Date.now();
    const names = await this.listNames(this.feedPrefix, this.snapshotCovers ? this.startAfter(this.timeOf(this.snapshotCovers) - this.windowMs) : undefined);
    this.sinceSnapshot = names.filter((n) => n > this.snapshotCovers).length;
    await this.readAll(names, false);
    this.log.debug({ keys: this.index.size, feed: names.length, epoch: this.snapshotEpoch }, 'in-bucket index loaded');
  }

  /** Start listing the feed every pollMs; events go to the listener. */
  subscribe(listener: FeedListener): () => void {
    this.listeners.add(listener);
    this.pollTimer ??= setInterval(() => void this.poll(), this.pollMs);
    this.pollTimer.unref();
    return () => this.listeners.delete(listener);
  }

  /** Told when another replica changed the yank state. */
  onYanks(listener: () => void): () => void {
    this.yankListeners.add(listener);
    return () => this.yankListeners.delete(listener);
  }

  /** What the index knows of exactly these bytes. */
  recall(entry: StoreEntry): KnownDigests | undefined {
    const e = this.index.get(entry.key);
    if (!e?.known || e.etag !== entry.etag || e.size !== entry.size) return undefined;
    this.stats.recalled++;
    return e.known;
  }

  /** What is known of entry's bytes (hashed here, or an upload): into the index and the feed. */
  record(entry: StoreEntry, known: KnownDigests): void {
    if (entry.etag === undefined) return;
    const e = this.index.get(entry.key);
    if (e && e.etag === entry.etag && e.size === entry.size && e.known?.sha256 === known.sha256 && e.known.metadata !== undefined && sameMetadata(e.known, known)) return;
    const next: IndexEntry = { etag: entry.etag, size: entry.size, mtimeMs: entry.mtimeMs, known };
    this.index.set(entry.key, next);
    this.publish({ op: 'put', key: entry.key, ...next });
  }

  /** The object at key was removed through this replica. */
  removed(key: string): void {
    this.index.delete(key);
    this.publish({ op: 'delete', key });
  }

  /** The yank state was changed through this replica. */
  yanksChanged(): void {
    this.publish({ op: 'yanks' });
  }

  /** Keys the index holds (tests, compaction). */
  get size(): number {
    return this.index.size;
  }

  private publish(record: FeedRecord): void {
    if (this.closed) return;
    this.pending.push(record);
    if (this.pending.length > MAX_PENDING) {
      this.pending.splice(0, this.pending.length - MAX_PENDING);
      this.warnDown('feed backlog full: dropping the oldest records (the periodic listing repairs what other replicas miss)');
    }
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = null;
      void this.flush();
    }, this.batchMs);
  }

  /** Write the pending records (one feed object per batch). Resolves when they are written or kept for later. */
  flush(): Promise<void> {
    if (!this.flushing) {
      // (Cleared by a then(), never inside the run: a run with nothing to write ends at once,
      // before it could be assigned, and a stale finished one would then stay forever.)
      const run = this.writePending();
      this.flushing = run;
      void run.then(() => {
        if (this.flushing === run) this.flushing = null;
      });
    }
    return this.flushing;
  }

  private async writePending(): Promise<void> {
    while (this.pending.length) {
      const batch = this.pending.slice(0, MAX_BATCH);
      const name = this.nextName();
      try {
        await this.opts.client.send(
          new PutObjectCommand({ Bucket: this.opts.bucket, Key: name, Body: JSON.stringify({ v: 1, replica: this.replica, records: batch }), ContentType: 'application/json', IfNoneMatch: '*' }),
        );
      } catch (err) {
        // Not written (the store is down): kept, retried with the next record or poll.
        this.warnDown('cannot write to the change feed; retrying', err);
        return;
      }
      this.pending.splice(0, batch.length);
      this.seen.add(name);
      this.sinceSnapshot++;
      this.stats.published += batch.length;
    }
  }

  /** One listing of the feed window: read and apply the names not read yet. */
  poll(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.polling ??= (async () => {
      try {
        await this.load();
        if (this.pending.length && !this.flushTimer) await this.flush();
        await this.readNew();
        if (this.down) {
          this.down = false;
          this.log.info('the change feed is reachable again');
        }
        if (this.sinceSnapshot >= this.compactAt) await this.compact();
      } catch (err) {
        this.warnDown('cannot list the change feed; retrying every poll', err);
      } finally {
        this.polling = null;
      }
    })();
    return this.polling;
  }

  /**
   * List the feed from a window behind the previous successful listing (after an outage: all
   * of it since then), read what was not read yet.
   */
  private async readNew(): Promise<void> {
    const started = Date.now();
    const from = Math.min(started, this.lastListedAt) - this.windowMs;
    const names = await this.listNames(this.feedPrefix, this.startAfter(from));
    await this.readAll(names, true);
    this.lastListedAt = started;
    // Names behind the window are never listed again: forget them.
    const floor = this.nameAt(from - this.windowMs);
    for (const n of this.seen) if (n < floor) this.seen.delete(n);
  }

  private async readAll(names: string[], emit: boolean): Promise<void> {
    const fresh = names.filter((n) => !this.seen.has(n));
    // Read in parallel (bounded), apply in name order.
    const bodies = new Array<FeedRecord[] | null>(fresh.length).fill(null);
    let next = 0;
    const worker = async () => {
      while (next < fresh.length) {
        const i = next++;
        const body = await this.readJson<{ v: number; replica: string; records: FeedRecord[] }>(fresh[i]).catch((err: unknown) => {
          // Gone (compacted meanwhile) or unreadable: the listing repairs what it said.
          if (httpStatus(err) !== 404) this.log.warn({ err, name: fresh[i] }, 'cannot read a change feed object');
          return null;
        });
        bodies[i] = body && body.replica !== this.replica && Array.isArray(body.records) ? body.records : [];
      }
    };
    await Promise.all(Array.from({ length: Math.min(16, fresh.length) }, worker));
    for (let i = 0; i < fresh.length; i++) {
      this.seen.add(fresh[i]);
      if (fresh[i] > this.snapshotCovers && emit) this.sinceSnapshot++;
      this.stats.read++;
      for (const r of bodies[i] ?? []) this.apply(r, emit);
    }
  }

  private apply(r: FeedRecord, emit: boolean): void {
    if (r.op === 'put') {
      this.index.set(r.key, { etag: r.etag, size: r.size, mtimeMs: r.mtimeMs, ...(r.known ? { known: r.known } : {}) });
      if (emit) this.emit({ type: 'file', key: r.key, entry: { key: r.key, size: r.size, mtimeMs: r.mtimeMs, etag: r.etag } });
    } else if (r.op === 'delete') {
      this.index.delete(r.key);
      if (emit) this.emit({ type: 'file', key: r.key, entry: null });
    } else if (r.op === 'yanks' && emit) {
      for (const l of this.yankListeners) l();
    }
  }

  private emit(event: StoreEvent): void {
    for (const l of this.listeners) l(event);
  }

  /** Write the next snapshot, unless another replica got there first; then remove what it makes obsolete. */
  async compact(): Promise<boolean> {
    if (this.compacting || this.closed) return false;
    this.compacting = true;
    try {
      // The snapshot must hold everything up to now: read what the feed has first.
      await this.load();
      await this.readNew();
      const snapshots = await this.listNames(this.indexPrefix);
      const newestEpoch = snapshots.length ? Number(snapshots.at(-1)!.slice(this.indexPrefix.length, this.indexPrefix.length + 10)) : 0;
      if (newestEpoch > this.snapshotEpoch) {
        // Another replica compacted: its snapshot covers what we read; follow it.
        const snap = await this.readJson<Snapshot>(snapshots.at(-1)!);
        this.snapshotEpoch = snap.epoch;
        this.snapshotCovers = snap.covers;
        this.sinceSnapshot = [...this.seen].filter((n) => n > snap.covers).length;
        return false;
      }
      const epoch = this.snapshotEpoch + 1;
      const covers = this.nameAt(Date.now() - this.windowMs);
      const snap: Snapshot = { v: 1, epoch, covers, entries: [...this.index] };
      try {
        await this.opts.client.send(new PutObjectCommand({ Bucket: this.opts.bucket, Key: `${this.indexPrefix}${pad(epoch, 10)}.json`, Body: JSON.stringify(snap), ContentType: 'application/json', IfNoneMatch: '*' }));
      } catch (err) {
        if (httpStatus(err) === 412) return false; // another replica wrote this epoch: read it next time
        throw err;
      }
      const previous = this.snapshotCovers;
      this.snapshotEpoch = epoch;
      this.snapshotCovers = covers;
      this.sinceSnapshot = [...this.seen].filter((n) => n > covers).length;
      this.stats.snapshots++;
      this.log.info({ epoch, keys: snap.entries.length }, 'in-bucket index compacted');
      // Feed objects a snapshot before this one covered, past the grace period, and older snapshots.
      // (Readers replay from a window behind the newest cover, far after both limits.)
      const graceLimit = this.nameAt(Date.now() - this.graceMs);
      const old = previous ? (await this.listNames(this.feedPrefix)).filter((n) => n <= previous && n <= graceLimit) : [];
      await this.removeAll([...old, ...snapshots.slice(0, -1)]);
      return true;
    } catch (err) {
      this.log.warn({ err }, 'cannot compact the in-bucket index; retrying later');
      return false;
    } finally {
      this.compacting = false;
    }
  }

  private async removeAll(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const chunk = keys.slice(i, i + 1000);
      if (chunk.length) await this.opts.client.send(new DeleteObjectsCommand({ Bucket: this.opts.bucket, Delete: { Objects: chunk.map((Key) => ({ Key })), Quiet: true } }));
    }
  }

  private nextName(): string {
    return `${this.nameAt(Date.now())}-${this.replica}-${pad(++this.seq, 8)}.json`;
  }

  /** The feed name prefix of a moment (13-digit milliseconds). */
  private nameAt(ms: number): string {
    return `${this.feedPrefix}${pad(ms, 13)}`;
  }

  private startAfter(ms: number): string {
    return this.nameAt(ms);
  }

  private timeOf(name: string): number {
    return Number(name.slice(this.feedPrefix.length, this.feedPrefix.length + 13));
  }

  private async listNames(prefix: string, startAfter?: string): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.opts.client.send(
        new ListObjectsV2Command({ Bucket: this.opts.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : startAfter ? { StartAfter: startAfter } : {}) }),
      );
      for (const o of page.Contents ?? []) if (o.Key?.endsWith('.json')) out.push(o.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  }

  private async readJson<T>(key: string): Promise<T> {
    const r = await this.opts.client.send(new GetObjectCommand({ Bucket: this.opts.bucket, Key: key }));
    const text = (await r.Body?.transformToString()) ?? '';
    return JSON.parse(text) as T;
  }

  private warnDown(msg: string, err?: unknown): void {
    if (this.down) return;
    this.down = true;
    this.log.warn(err ? { err } : {}, msg);
  }

  /** Stop polling; write what is pending (bounded by the caller's patience). */
  async close(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
    await this.flush();
    this.closed = true;
    await this.polling;
  }
}

function sameMetadata(a: KnownDigests, b: KnownDigests): boolean {
  return JSON.stringify(a.metadata) === JSON.stringify(b.metadata) && a.metadataError === b.metadataError;
}
