// The package store of an S3 bucket (or a prefix of one): `s3://bucket/prefix`. A storage key
// is the object key below `prefix/`. Objects under the reserved `prefix/.pypi-lite/` (the change
// feed, index snapshots, claims, yanks) are never listed or served: their segment starts with a
// dot, which no key may (isValidKey), and a listing jumps over them without reading them.
//
// Bytes are only ever the described ones: open() heads the object and every ranged GET sends
// If-Match with its ETag; localFile() downloads to a temporary file in the local staging
// directory, checked against the expected ETag. Uploads are staged locally and created with one
// PutObject carrying If-None-Match: * (of two racing creates exactly one wins; 412 = exists).
//
// A store that cannot be reached (or refuses us: access denied, a missing bucket) is reported
// as STORE_UNAVAILABLE (503 with the reason) by every operation, its state shows in /health,
// and a probe every few seconds notices when it is back.

import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type ListObjectsV2CommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Logger } from 'pino';
import { httpError } from '../core/errors.js';
import { StoreStartError, type S3Location } from './s3-client.js';
import { S3Claims } from './s3-claims.js';
import { S3Feed } from './s3-feed.js';
import { S3TextObject } from './s3-text.js';
import { checkKey, isValidKey, type ByteRange, type ClaimResult, type KnownDigests, type ListOptions, type LocalFile, type OpenOptions, type PackageStore, type PutResult, type PutSource, type StoreEntry, type StoreEvent, type StoreObject, type StoreWatch, type StoredTextFile } from './types.js';

/** The reserved segment below the prefix: everything of pypi-lite's own that is not a package. */
export const RESERVED_SEGMENT = '.pypi-lite';

/** The temporary copies of localFile() in the staging directory. */
const COPY_PREFIX = '.pypi-lite-get-';

/** A store's state as /health shows it. */
export interface StoreHealth {
  root: string;
  state: 'ok' | 'unavailable';
  /** Why it is unavailable (one line). */
  error?: string;
  /** Since when (ISO time). */
  since?: string;
}

export { StoreStartError };

export interface S3StoreOptions {
  location: S3Location;
  /** Reads, listings, heads (retried a bounded number of times). */
  client: S3Client;
  /** Writes (streamed from a file: not retried by the SDK, which cannot rewind the stream). */
  writeClient?: S3Client;
  /** A local directory for uploads before they are put, and for localFile() copies. */
  stagingDir: string;
  /** The watch's full listing diff runs this often (ms). */
  listIntervalMs: number;
  /** While the store is unavailable, a probe runs this often (ms). */
  probeIntervalMs?: number;
  /** Keys per listing page (S3's maximum and default: 1000). */
  pageSize?: number;
  /** How often the change feed of the replicas is listed (ms; default 1000). */
  feedPollMs?: number;
  log: Logger;
}

/** A watch waiting for its first listing: the first full list() started after `after` completes with it (null: it did not complete). */
interface BaselineWaiter {
  after: number;
  take(listing: Map<string, StoreEntry> | null): void;
}

interface Classified {
  kind: 'missing' | 'precondition' | 'conflict' | 'unavailable';
  reason: string;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'EPROTO']);

function fieldOf(err: unknown, name: string): unknown {
  return typeof err === 'object' && err !== null && name in err ? (err as Record<string, unknown>)[name] : undefined;
}

/** What an SDK error means for us. */
export function classifyS3Error(err: unknown, bucket: string): Classified {
  const meta = fieldOf(err, '$metadata');
  const status = typeof fieldOf(meta, 'httpStatusCode') === 'number' ? (fieldOf(meta, 'httpStatusCode') as number) : undefined;
  const named = fieldOf(err, 'Code') ?? fieldOf(err, 'name');
  const name = typeof named === 'string' ? named : 'Error';
  const code = fieldOf(err, 'code');
  if (status === undefined || (typeof code === 'string' && NETWORK_CODES.has(code)) || name === 'TimeoutError' || name === 'RequestTimeout') {
    const what = typeof code === 'string' ? code : name === 'TimeoutError' ? 'timed out' : err instanceof Error ? err.message.slice(0, 120) : name;
    return { kind: 'unavailable', reason: `the S3 store cannot be reached (${what})` };
  }
  if (name === 'NoSuchBucket') return { kind: 'unavailable', reason: `the S3 bucket ${bucket} does not exist` };
  if (status === 404) return { kind: 'missing', reason: 'not found' };
  if (status === 412) return { kind: 'precondition', reason: 'precondition failed' };
  if (status === 409 && name === 'ConditionalRequestConflict') return { kind: 'conflict', reason: name };
  if (status === 403 || name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || name === 'AccessDenied') {
    return { kind: 'unavailable', reason: `the S3 store refused access to bucket ${bucket} (${name}): check the credentials and the bucket policy` };
  }
  if (status === 301 || name === 'PermanentRedirect' || name === 'AuthorizationHeaderMalformed') {
    return { kind: 'unavailable', reason: `the S3 store refused the request (${name}): check AWS_REGION, AWS_ENDPOINT_URL and --s3-path-style` };
  }
  return { kind: 'unavailable', reason: `the S3 store answered ${status} ${name}` };
}

class S3Object implements StoreObject {
  constructor(
    readonly entry: StoreEntry,
    private readonly store: S3Store,
  ) {}

  /** The bytes of range (all: none), fetched when asked for; If-Match keeps them the described ones. */
  stream(range?: ByteRange): Readable {
    const out = new PassThrough();
    const abort = new AbortController();
    out.once('close', () => abort.abort());
    this.store.getBody(this.entry, range, abort.signal).then(
      (body) => pipeline(body, out).catch((err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err)))),
      (err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err))),
    );
    return out;
  }

  async close(): Promise<void> {
    /* nothing held: every stream is its own request */
  }
}

export class S3Store implements PackageStore {
  readonly id: string;
  readonly stagingDir: string;
  readonly bucket: string;
  /** '' or 'prefix/'. */
  private readonly base: string;
  private readonly client: S3Client;
  private readonly writeClient: S3Client;
  private readonly log: Logger;
  private readonly listIntervalMs: number;
  private readonly probeIntervalMs: number;
  private down: { reason: string; since: number } | null = null;
  private probeTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** The replicas' in-bucket index and change feed (lib/store/s3-feed.ts). */
  readonly feed: S3Feed;
  private readonly claims: S3Claims;
  readonly yankList: StoredTextFile;
  /** Full listings started so far (the watches' baseline hand-off). */
  private listSeq = 0;
  private readonly baselineWaiters = new Set<BaselineWaiter>();

  constructor(private readonly opts: S3StoreOptions) {
    this.id = opts.location.id;
    this.bucket = opts.location.bucket;
    this.base = opts.location.prefix ? `${opts.location.prefix}/` : '';
    this.stagingDir = opts.stagingDir;
    this.client = opts.client;
    this.writeClient = opts.writeClient ?? opts.client;
    this.listIntervalMs = opts.listIntervalMs;
    this.probeIntervalMs = opts.probeIntervalMs ?? 2_000;
    this.log = opts.log.child({ store: this.id });
    const shared = { client: this.writeClient, bucket: this.bucket, prefix: this.base };
    this.feed = new S3Feed({ ...shared, client: this.client, log: this.log, ...(opts.feedPollMs ? { pollMs: opts.feedPollMs } : {}) });
    this.claims = new S3Claims({ ...shared, client: this.client, log: this.log, replica: this.feed.replica });
    this.yankList = new S3TextObject({ ...shared, client: this.client, name: 'yanks', announce: () => this.feed.yanksChanged(), subscribe: (l) => this.feed.onYanks(l) });
  }

  private objectKey(key: string): string {
    return this.base + checkKey(key);
  }

  /**
   * Can the store be used? Lists one key (needs the same permission as serving) and prepares the
   * staging directory. Throws StoreStartError with one line naming the problem.
   */
  async check(): Promise<void> {
    try {
      await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.base, MaxKeys: 1 }));
    } catch (err) {
      const c = classifyS3Error(err, this.bucket);
      throw new StoreStartError(`cannot use ${this.id}: ${c.kind === 'unavailable' ? c.reason : `the S3 store answered ${c.reason}`}`);
    }
    await fsp.mkdir(this.stagingDir, { recursive: true });
    // Copies left by a process that died (only old ones: another process may share the directory).
    for (const name of await fsp.readdir(this.stagingDir)) {
      if (!name.startsWith(COPY_PREFIX)) continue;
      const file = path.join(this.stagingDir, name);
      const st = await fsp.stat(file).catch(() => null);
      if (st && Date.now() - st.mtimeMs > 3_600_000) await fsp.rm(file, { force: true });
    }
  }

  /** The store's state for /health. */
  health(): StoreHealth {
    return this.down ? { root: this.id, state: 'unavailable', error: this.down.reason, since: new Date(this.down.since).toISOString() } : { root: this.id, state: 'ok' };
  }

  get available(): boolean {
    return this.down === null;
  }

  private markUp(): void {
    if (!this.down) return;
    this.log.info({ downForSeconds: Math.round((Date.now() - this.down.since) / 1000) }, 'S3 store available again');
    this.down = null;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = null;
  }

  private markDown(reason: string): void {
    if (!this.down) {
      this.down = { reason, since: Date.now() };
      this.log.error({ reason }, 'S3 store unavailable: downloads and uploads answer 503 until it is back');
    } else this.down.reason = reason;
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    if (this.probeTimer || this.closed) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null;
      void this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.base, MaxKeys: 1 })).then(
        () => this.markUp(),
        (err: unknown) => this.markDown(classifyS3Error(err, this.bucket).reason),
      );
    }, this.probeIntervalMs);
    this.probeTimer.unref();
  }

  /** Run one SDK call: the store's state follows its outcome; a store failure becomes STORE_UNAVAILABLE. */
  private async call<T>(fn: () => Promise<T>): Promise<{ ok: T } | { failed: Classified }> {
    try {
      const ok = await fn();
      this.markUp();
      return { ok };
    } catch (err) {
      // The caller gave up (a client that went away): says nothing about the store.
      if (fieldOf(err, 'name') === 'AbortError') throw err;
      const c = classifyS3Error(err, this.bucket);
      if (c.kind !== 'unavailable') {
        this.markUp();
        return { failed: c };
      }
      this.markDown(c.reason);
      throw httpError('STORE_UNAVAILABLE', c.reason);
    }
  }

  private entryOf(key: string, size: number | undefined, lastModified: Date | undefined, etag: string | undefined): StoreEntry {
    // Whole seconds: listings give milliseconds, HEAD (an HTTP date) seconds; one entry must look the same from both.
    const ms = lastModified ? lastModified.getTime() : Date.now();
    return { key, size: size ?? 0, mtimeMs: ms - (ms % 1000), ...(etag ? { etag } : {}) };
  }

  async *list(opts: ListOptions = {}): AsyncIterable<StoreEntry[]> {
    const top = opts.prefix ?? '';
    if (top !== '') checkKey(top);
    const listPrefix = this.base + (top === '' ? '' : `${top}/`);
    const reserved = `${this.base}${RESERVED_SEGMENT}/`;
    // Just after every key below the reserved prefix ('0' follows '/').
    const pastReserved = `${this.base}${RESERVED_SEGMENT}0`;
    // A full listing is also the baseline of a watch that is waiting for one (every valid key).
    const seq = top === '' ? ++this.listSeq : 0;
    const collected = seq && [...this.baselineWaiters].some((w) => seq > w.after) ? new Map<string, StoreEntry>() : null;
    // What the bucket's index knows (snapshot + feed) is loaded before the first entry, so the
    // indexer recalls digests instead of reading objects (a warm start is the listing).
    await this.feed.load().catch((err: unknown) => this.log.warn({ err }, 'cannot read the in-bucket index; objects are hashed again'));
    let complete = false;
    let token: string | undefined;
    let startAfter: string | undefined;
    try {
      for (;;) {
        const r = await this.call(() =>
          this.client.send(
            new ListObjectsV2Command({
              Bucket: this.bucket,
              Prefix: listPrefix,
              ...(this.opts.pageSize ? { MaxKeys: this.opts.pageSize } : {}),
              ...(token ? { ContinuationToken: token } : startAfter ? { StartAfter: startAfter } : {}),
            }),
          ),
        );
        if ('failed' in r) throw new Error(`cannot list ${this.id}: ${r.failed.reason}`);
        const page: ListObjectsV2CommandOutput = r.ok;
        let last: string | undefined;
        const batch: StoreEntry[] = [];
        for (const o of page.Contents ?? []) {
          if (!o.Key) continue;
          last = o.Key;
          if (!o.Key.startsWith(this.base)) continue;
          const key = o.Key.slice(this.base.length);
          // Directory markers ('dir/'), dotfiles, the reserved prefix, names no key may hold.
          if (!isValidKey(key)) continue;
          const entry = this.entryOf(key, o.Size, o.LastModified, o.ETag);
          collected?.set(key, entry);
          if (opts.accept && !opts.accept(key.slice(key.lastIndexOf('/') + 1))) continue;
          batch.push(entry);
        }
        if (batch.length) yield batch;
        if (!page.IsTruncated) break;
        if (last !== undefined && last.startsWith(reserved)) {
          // The page ended inside the reserved prefix: jump over the rest of it unread.
          token = undefined;
          startAfter = pastReserved;
        } else {
          token = page.NextContinuationToken;
          if (!token) break;
        }
      }
      complete = true;
    } finally {
      if (collected) for (const w of [...this.baselineWaiters]) if (seq > w.after) w.take(complete ? collected : null);
    }
  }

  async stat(key: string): Promise<StoreEntry | null> {
    const objectKey = this.objectKey(key);
    const r = await this.call(() => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: objectKey })));
    if ('failed' in r) return null;
    return this.entryOf(key, r.ok.ContentLength, r.ok.LastModified, r.ok.ETag);
  }

  async open(key: string, opts: OpenOptions = {}): Promise<StoreObject | null> {
    const objectKey = this.objectKey(key);
    const r = await this.call(() => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: objectKey, ...(opts.etag ? { IfMatch: opts.etag } : {}) })));
    if ('failed' in r) return null;
    return new S3Object(this.entryOf(key, r.ok.ContentLength, r.ok.LastModified, r.ok.ETag), this);
  }

  /** A GET of the entry's bytes (a range of them), only if the object still has its ETag. */
  async getBody(entry: StoreEntry, range: ByteRange | undefined, signal?: AbortSignal): Promise<Readable> {
    const objectKey = this.objectKey(entry.key);
    const r = await this.call(() =>
      this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: objectKey, ...(entry.etag ? { IfMatch: entry.etag } : {}), ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
        signal ? { abortSignal: signal } : {},
      ),
    );
    if ('failed' in r) throw Object.assign(new Error(`${entry.key}: ${r.failed.kind === 'precondition' ? 'the object changed since it was opened' : r.failed.reason}`), { code: 'ENOENT' });
    const body = r.ok.Body;
    if (!(body instanceof Readable)) throw new Error(`${entry.key}: the S3 client returned no stream`);
    return body;
  }

  async putIfAbsent(key: string, source: PutSource): Promise<PutResult> {
    const objectKey = this.objectKey(key);
    for (let attempt = 0; ; attempt++) {
      const r = await this.putFile(objectKey, source, true);
      if ('ok' in r) return { created: true, entry: await this.entryAfterPut(key, r.ok) };
      if (r.failed.kind === 'precondition') return { created: false, reason: 'exists' };
      // AWS: a conflicting conditional write in flight; retry once it settled.
      if (r.failed.kind === 'conflict' && attempt < 3) continue;
      throw httpError('STORE_UNAVAILABLE', `${r.failed.reason} while storing ${key}`);
    }
  }

  async put(key: string, source: PutSource): Promise<StoreEntry> {
    const objectKey = this.objectKey(key);
    const r = await this.putFile(objectKey, source, false);
    if ('failed' in r) throw httpError('STORE_UNAVAILABLE', `${r.failed.reason} while storing ${key}`);
    return this.entryAfterPut(key, r.ok);
  }

  private async putFile(objectKey: string, source: PutSource, ifAbsent: boolean): Promise<{ ok: { etag: string | undefined; size: number } } | { failed: Classified }> {
    const size = (await fsp.stat(source.path)).size;
    const r = await this.call(() =>
      this.writeClient.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: objectKey,
          Body: createReadStream(source.path),
          ContentLength: size,
          ContentType: 'application/octet-stream',
          ...(ifAbsent ? { IfNoneMatch: '*' } : {}),
        }),
      ),
    );
    return 'ok' in r ? { ok: { etag: r.ok.ETag, size } } : r;
  }

  /** The entry of what was just put: its Last-Modified as listings will show it (a HEAD), unless the object changed again meanwhile. */
  private async entryAfterPut(key: string, put: { etag: string | undefined; size: number }): Promise<StoreEntry> {
    const head = await this.stat(key).catch(() => null);
    if (head && (!put.etag || head.etag === put.etag)) return head;
    return this.entryOf(key, put.size, undefined, put.etag);
  }

  async remove(key: string): Promise<boolean> {
    const objectKey = this.objectKey(key);
    // S3 deletes answer 204 whether or not there was an object: a HEAD says which.
    if (!(await this.stat(key))) return false;
    const r = await this.call(() => this.writeClient.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey })));
    if ('failed' in r && r.failed.kind !== 'missing') throw httpError('STORE_UNAVAILABLE', `${r.failed.reason} while removing ${key}`);
    this.feed.removed(key);
    return true;
  }

  /** PackageStore.recall: what the bucket's index knows of exactly these bytes. */
  recall(entry: StoreEntry): KnownDigests | undefined {
    return this.feed.recall(entry);
  }

  /** PackageStore.record: into the bucket's index, announced to the other replicas. */
  record(entry: StoreEntry, known: KnownDigests): void {
    this.feed.record(entry, known);
  }

  /** PackageStore.claim (lib/store/s3-claims.ts); a store failure is a 503. */
  async claim(names: string[], key: string): Promise<ClaimResult> {
    try {
      return await this.claims.claim(names, key);
    } catch (err) {
      throw this.failure(err, `claiming ${key}`);
    }
  }

  async release(names: string[], key: string): Promise<void> {
    try {
      await this.claims.release(names, key);
    } catch (err) {
      // The file is gone already; its claims expire once nothing is at its key.
      this.log.warn({ err, key }, 'cannot release the claims of a removed file; they expire');
    }
  }

  private failure(err: unknown, doing: string): Error {
    const c = classifyS3Error(err, this.bucket);
    if (c.kind === 'unavailable') this.markDown(c.reason);
    return httpError('STORE_UNAVAILABLE', `${c.reason} while ${doing}`);
  }

  /** Write what the feed holds (before a shutdown). */
  async flush(): Promise<void> {
    await this.feed.close();
  }

  /**
   * A temporary copy in the staging directory (a dotfile), removed by release(). With
   * opts.etag, only those bytes: a key that is missing or holds other bytes gives a path that
   * does not exist, which readers report as a missing file (as FsStore's would).
   */
  async localFile(key: string, opts: OpenOptions = {}): Promise<LocalFile> {
    const objectKey = this.objectKey(key);
    const temp = path.join(this.stagingDir, `${COPY_PREFIX}${process.pid}-${randomBytes(8).toString('hex')}.tmp`);
    const release = (): Promise<void> => fsp.rm(temp, { force: true });
    const r = await this.call(() => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey, ...(opts.etag ? { IfMatch: opts.etag } : {}) })));
    if ('failed' in r) return { path: temp, release };
    const body = r.ok.Body;
    if (!(body instanceof Readable)) throw new Error(`${key}: the S3 client returned no stream`);
    try {
      await pipeline(body, createWriteStream(temp, { flags: 'wx', mode: 0o600 }));
      const size = (await fsp.stat(temp)).size;
      if (r.ok.ContentLength !== undefined && size !== r.ok.ContentLength) throw new Error(`${key}: got ${size} of ${r.ok.ContentLength} bytes`);
    } catch (err) {
      await release();
      const c = classifyS3Error(err, this.bucket);
      if (c.kind === 'unavailable') {
        this.markDown(c.reason);
        throw httpError('STORE_UNAVAILABLE', c.reason);
      }
      throw err;
    }
    return { path: temp, release };
  }

  /** A presigned GET of the object, valid for expiresInSeconds (--s3-redirect). */
  async downloadUrl(key: string, expiresInSeconds: number, filename: string): Promise<string> {
    const objectKey = this.objectKey(key);
    return getSignedUrl(
      this.client,
      new GetObjectCommand({ Bucket: this.bucket, Key: objectKey, ResponseContentDisposition: `attachment; filename="${filename.replace(/["\\]/g, '_')}"` }),
      { expiresIn: expiresInSeconds },
    );
  }

  /**
   * Objects put by other tools (`aws s3 cp`), found by a full listing every listIntervalMs
   * compared with the previous one: a new or changed object (ETag or size) is reported with its
   * entry, a vanished one with null. The first listing (the baseline) is the scan's own when one
   * starts right after watch() (as the indexer's does): a warm start lists the bucket once.
   * `ready` resolves once the baseline is taken. A listing that fails (the store is down)
   * reports nothing and is tried again sooner.
   */
  watch(listener: (event: StoreEvent) => void): StoreWatch {
    let known: Map<string, StoreEntry> | null = null;
    let timer: NodeJS.Timeout | null = null;
    let stopped = false;
    const tick = async (): Promise<void> => {
      try {
        const now = new Map<string, StoreEntry>();
        for await (const batch of this.list()) {
          if (stopped) return;
          for (const e of batch) now.set(e.key, e);
        }
        if (stopped) return;
        if (known) {
          for (const [key, e] of now) {
            const before = known.get(key);
            if (!before || before.etag !== e.etag || before.size !== e.size) listener({ type: 'file', key, entry: e });
          }
          for (const key of known.keys()) if (!now.has(key)) listener({ type: 'file', key, entry: null });
        }
        known = now;
      } catch (err) {
        if (!known) this.log.warn({ err }, 'cannot take the first listing for the change watch; retrying');
      }
    };
    const schedule = (): void => {
      if (stopped) return;
      timer = setTimeout(() => void tick().finally(schedule), this.down ? Math.min(this.listIntervalMs, this.probeIntervalMs) : this.listIntervalMs);
      timer.unref();
    };
    let resolveReady!: () => void;
    const ready = new Promise<void>((resolve) => (resolveReady = resolve));
    const ownBaseline = (): void => void tick().finally(() => (resolveReady(), schedule()));
    const since = this.listSeq;
    const waiter: BaselineWaiter = {
      after: since,
      take: (listing) => {
        this.baselineWaiters.delete(waiter);
        if (timer) clearTimeout(timer);
        if (stopped) return resolveReady();
        if (!listing) return ownBaseline();
        known = listing;
        resolveReady();
        schedule();
      },
    };
    this.baselineWaiters.add(waiter);
    // No full listing started by the caller right away (or none completed within an interval):
    // take one of our own.
    const fallback = (): void => {
      if (!this.baselineWaiters.has(waiter)) return;
      this.baselineWaiters.delete(waiter);
      ownBaseline();
    };
    setImmediate(() => {
      if (this.listSeq === since) return fallback();
      timer = setTimeout(fallback, this.listIntervalMs);
      timer.unref();
    });
    // The other replicas' changes, within a poll (about a second).
    const unsubscribe = this.feed.subscribe(listener);
    return {
      ready,
      close: () => {
        stopped = true;
        this.baselineWaiters.delete(waiter);
        if (timer) clearTimeout(timer);
        resolveReady();
        unsubscribe();
      },
    };
  }

  /** Stop probing (the SDK clients are the caller's). */
  close(): void {
    this.closed = true;
    void this.feed.close();
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = null;
  }
}
