// Verified upstream files (distributions and PEP 658 metadata), stored by their sha256 under
// <cache>/files/. A download goes to a temporary file while it is hashed and, for the first
// client, streamed to that client; it is committed (renamed into place) only when its sha256
// is the one the upstream page listed. The last chunk is held back until then, so a client never
// receives a complete body of wrong bytes: a mismatch is a 502 if nothing was sent yet, else a
// broken connection. Concurrent requests for one file share one download. With a size bound,
// the least recently used files are removed.

import { FsStore } from '../store/fs-store.js';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { ServerResponse } from 'node:http';
import path from 'node:path';
import type { Logger } from 'pino';
import { HttpError, httpError } from '../core/errors.js';
import { request, UpstreamError, type UpstreamAuth } from './client.js';
import type { UpstreamMetrics } from './metrics.js';

export interface BlobSpec {
  kind: 'file' | 'metadata';
  sha256: string;
  url: string;
  filename: string;
  /** Listed size, if the page gave one. */
  size: number | null;
  maxBytes: number;
}

export interface Blob {
  path: string;
  /** Its key in the cache's store (what downloads open). */
  key: string;
  size: number;
  mtimeMs: number;
}

export class FileCache {
  private readonly filesDir: string;
  private readonly tmpDir: string;
  /** sha256 -> size, in least-recently-used-first order. */
  private readonly lru = new Map<string, number>();
  private total = 0;
  private readonly inflight = new Map<string, Promise<void>>();
  /** Aborted at shutdown: running downloads stop and leave nothing behind. */
  private readonly closing = new AbortController();

  constructor(
    dir: string,
    private readonly opts: { maxBytes: number | null; idleTimeoutMs: number; auth?: UpstreamAuth | null },
    private readonly log: Logger,
    private readonly metrics: UpstreamMetrics | null = null,
  ) {
    this.filesDir = path.join(dir, 'files');
    this.tmpDir = path.join(dir, 'tmp');
    this.store = new FsStore(this.filesDir, log);
  }

  get bytes(): number {
    return this.total;
  }

  /** Create the directories, remove leftovers of interrupted downloads, and list what is cached (once, at start). */
  async init(): Promise<void> {
    await fsp.rm(this.tmpDir, { recursive: true, force: true });
    await fsp.mkdir(this.tmpDir, { recursive: true });
    await fsp.mkdir(this.filesDir, { recursive: true });
    const found: { sha: string; size: number; mtimeMs: number }[] = [];
    for (const sub of await fsp.readdir(this.filesDir)) {
      if (!/^[0-9a-f]{2}$/.test(sub)) continue;
      for (const name of await fsp.readdir(path.join(this.filesDir, sub))) {
        if (!/^[0-9a-f]{64}$/.test(name)) continue;
        const st = await fsp.stat(path.join(this.filesDir, sub, name)).catch(() => null);
        if (st?.isFile()) found.push({ sha: name, size: st.size, mtimeMs: st.mtimeMs });
      }
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const f of found) this.add(f.sha, f.size);
    await this.evict(null);
  }

  /** The verified files as a package store (keys `ab/abcd…`): served like local files. */
  readonly store: FsStore;

  private blobKey(sha: string): string {
    return `${sha.slice(0, 2)}/${sha}`;
  }

  private blobPath(sha: string): string {
    return this.store.pathOf(this.blobKey(sha));
  }

  private add(sha: string, size: number): void {
    const old = this.lru.get(sha);
    if (old !== undefined) this.total -= old;
    this.lru.delete(sha);
    this.lru.set(sha, size);
    this.total += size;
  }

  private async evict(keep: string | null): Promise<void> {
    const max = this.opts.maxBytes;
    if (max === null) return;
    for (const [sha, size] of this.lru) {
      if (this.total <= max) break;
      if (sha === keep || this.inflight.has(sha)) continue;
      this.lru.delete(sha);
      this.total -= size;
      await fsp.rm(this.blobPath(sha), { force: true });
      this.log.info({ sha256: sha, size }, 'upstream cache: evicted the least recently used file');
    }
  }

  /** The cached, verified file with this sha256, if any (and marks it used). */
  async cached(sha: string): Promise<Blob | null> {
    if (!this.lru.has(sha)) return null;
    const p = this.blobPath(sha);
    const st = await fsp.stat(p).catch(() => null);
    if (!st?.isFile()) {
      this.total -= this.lru.get(sha) ?? 0;
      this.lru.delete(sha);
      return null;
    }
    this.add(sha, st.size);
    return { path: p, key: this.blobKey(sha), size: st.size, mtimeMs: st.mtimeMs };
  }

  /** Stop every running download (at shutdown) and wait until they have cleaned up. */
  async close(): Promise<void> {
    this.closing.abort();
    await Promise.allSettled([...this.inflight.values()]);
  }

  isDownloading(sha: string): boolean {
    return this.inflight.has(sha);
  }

  /**
   * Download and verify a file unless that is already under way. With `sink`, this call's
   * download streams to it (and answers it completely); a shared download does not, and the
   * caller serves the cached file afterwards. Rejects with an HttpError (502/504).
   */
  fetch(spec: BlobSpec, sink: ServerResponse | null): Promise<void> {
    const running = this.inflight.get(spec.sha256);
    if (running) return running;
    const p = this.download(spec, sink).finally(() => this.inflight.delete(spec.sha256));
    this.inflight.set(spec.sha256, p);
    return p;
  }

  private async download(spec: BlobSpec, sinkArg: ServerResponse | null): Promise<void> {
    let sink = sinkArg;
    const tmp = path.join(this.tmpDir, `${spec.sha256}.${randomBytes(6).toString('hex')}`);
    const fh = await fsp.open(tmp, 'wx', 0o644);
    let closed = false;
    let committed = false;
    const ctrl = new AbortController();
    let idle = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        idle = true;
        ctrl.abort();
      }, this.opts.idleTimeoutMs);
    };
    const fail = (code: 'UPSTREAM_FILE_MISMATCH' | 'UPSTREAM_BAD_RESPONSE', detail: string) => httpError(code, `${spec.filename}: ${detail}`);
    try {
      arm();
      const signal = AbortSignal.any([ctrl.signal, this.closing.signal]);
      const { res } = await request(spec.url, { 'accept-encoding': 'identity', 'user-agent': 'pypi-lite' }, signal, () => idle, this.opts.auth ?? null);
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => {});
        throw new UpstreamError('bad', `${spec.url} answered ${res.status}`);
      }
      const header = res.headers.get('content-length');
      const declared = header !== null && /^\d+$/.test(header) ? Number(header) : null;
      if (declared !== null && spec.size !== null && declared !== spec.size) throw fail('UPSTREAM_FILE_MISMATCH', `the upstream sends ${declared} bytes, its page listed ${spec.size}`);
      const limit = spec.size ?? spec.maxBytes;
      if (declared !== null && declared > limit) throw fail('UPSTREAM_BAD_RESPONSE', `larger than ${limit} bytes`);
      const length = declared ?? spec.size;

      // The client's response starts with the first chunk that is passed on (not before: a
      // mismatch found before anything was sent is still a clean 502).
      const head = (s: ServerResponse) => {
        if (s.headersSent) return;
        s.statusCode = 200;
        s.setHeader('Content-Type', 'application/octet-stream');
        s.setHeader('Content-Disposition', `attachment; filename="${spec.filename.replace(/["\\]/g, '_')}"`);
        s.setHeader('ETag', `"${spec.sha256}"`);
        s.setHeader('Cache-Control', 'public, max-age=300');
        if (length !== null) s.setHeader('Content-Length', length);
      };
      const pass = async (chunk: Uint8Array): Promise<void> => {
        if (!sink) return;
        if (sink.destroyed) {
          sink = null;
          return;
        }
        head(sink);
        if (!sink.write(chunk)) {
          const s = sink;
          await new Promise<void>((resolve) => {
            const done = () => {
              s.off('drain', done);
              s.off('close', done);
              resolve();
            };
            s.on('drain', done);
            s.on('close', done);
          });
        }
      };

      const hash = createHash('sha256');
      let total = 0;
      let held: Uint8Array | null = null;
      if (res.body) {
        const reader = (res.body as ReadableStream<Uint8Array>).getReader();
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            arm();
            total += value.byteLength;
            if (total > limit) {
              await reader.cancel().catch(() => {});
              throw spec.size !== null ? fail('UPSTREAM_FILE_MISMATCH', `longer than the ${spec.size} bytes its page listed`) : fail('UPSTREAM_BAD_RESPONSE', `larger than ${limit} bytes`);
            }
            hash.update(value);
            await fh.write(value);
            if (held) await pass(held);
            held = value;
          }
        } catch (err) {
          if (err instanceof HttpError) throw err;
          if (idle) throw new UpstreamError('timeout', `${spec.url} sent nothing for ${this.opts.idleTimeoutMs / 1000} s`);
          throw new UpstreamError('unavailable', `${spec.url} broke off: ${(err as Error).message}`);
        }
      }
      clearTimeout(timer);
      const digest = hash.digest('hex');
      if (digest !== spec.sha256) throw fail('UPSTREAM_FILE_MISMATCH', `its sha256 is ${digest}, its page listed ${spec.sha256}`);
      if (spec.size !== null && total !== spec.size) throw fail('UPSTREAM_FILE_MISMATCH', `${total} bytes, its page listed ${spec.size}`);
      await fh.close();
      closed = true;
      const dest = this.blobPath(spec.sha256);
      await fsp.mkdir(path.dirname(dest), { recursive: true });
      await fsp.rename(tmp, dest);
      committed = true;
      this.add(spec.sha256, total);
      this.metrics?.file(spec.kind, 'ok');
      this.log.info({ file: spec.filename, size: total, sha256: spec.sha256 }, 'upstream file verified and cached');
      await this.evict(spec.sha256);
      if (held) await pass(held);
      if (sink && !sink.destroyed) {
        head(sink);
        sink.end();
      }
    } catch (err) {
      const mismatch = err instanceof HttpError && err.code === 'UPSTREAM_FILE_MISMATCH';
      this.metrics?.file(spec.kind, mismatch ? 'mismatch' : 'error');
      const e =
        err instanceof HttpError
          ? err
          : err instanceof UpstreamError
            ? httpError(err.kind === 'timeout' ? 'UPSTREAM_TIMEOUT' : err.kind === 'bad' ? 'UPSTREAM_BAD_RESPONSE' : 'UPSTREAM_UNAVAILABLE', err.message)
            : err;
      if (mismatch) this.log.error({ file: spec.filename, url: spec.url, err: (err as Error).message }, 'upstream file does not match its listed sha256: not cached, not served');
      // Bytes already went out: break the connection so that the client sees an incomplete body.
      if (sink?.headersSent) sink.destroy();
      throw e;
    } finally {
      clearTimeout(timer);
      if (!closed) await fh.close().catch(() => {});
      if (!committed) await fsp.rm(tmp, { force: true });
    }
  }
}
