// Downloads: GET/HEAD /packages/<relative path> and the PEP 658 metadata files
// (/packages/<file>.metadata). A path is only ever looked up in the catalog's map, never
// joined onto a directory, so no request can reach a file that is not in the index.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';
import type { CatalogView, DistFile } from '../catalog/catalog.js';
import { HttpError, httpError } from '../core/errors.js';
import { etagMatches } from '../http/respond.js';
import type { MetadataSource } from '../metadata/reader.js';
import type { StoreObject } from '../store/types.js';

export interface FilesDeps {
  catalog: CatalogView;
  metadata: MetadataSource<DistFile>;
  /** --s3-redirect: answer downloads from stores that can with a presigned URL valid this many seconds. */
  redirectSeconds?: number | null;
}

const MAX_PATH = 1024;

/** Decode /packages/<...> into a catalog key; null for anything malformed or suspicious. */
export function decodeFilePath(pathname: string): string | null {
  if (!pathname.startsWith('/packages/') || pathname.length > MAX_PATH) return null;
  const segments = pathname.slice('/packages/'.length).split('/');
  const out: string[] = [];
  for (const seg of segments) {
    let s: string;
    try {
      s = decodeURIComponent(seg);
    } catch {
      return null;
    }
    if (s === '' || s === '.' || s === '..' || s.startsWith('.') || /[\\/\u0000-\u001f\u007f]/.test(s)) return null;
    out.push(s);
  }
  return out.length ? out.join('/') : null;
}

/** What serving a file from disk needs to know of it (a DistFile, or a cached upstream file). */
export type ServedFile = Pick<DistFile, 'store' | 'relPath' | 'filename' | 'size' | 'mtimeMs' | 'sha256' | 'identity' | 'etag'>;

function strongEtag(file: ServedFile): string {
  return file.sha256 ? `"${file.sha256}"` : `"${file.size.toString(16)}-${Math.floor(file.mtimeMs).toString(16)}"`;
}

/** Parse a single `bytes=` range; null = ignore the header (serve 200), 'unsatisfiable' = 416. */
export function parseRange(header: string, size: number): { start: number; end: number } | null | 'unsatisfiable' {
  const m = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header.trim());
  if (!m) return null; // multiple ranges or other units: serve the whole file
  const [, a, b] = m;
  let start: number;
  let end: number;
  if (a === '' && b === '') return null;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
    if (b !== '' && Number(b) < start) return null;
  }
  if (start >= size || size === 0) return 'unsatisfiable';
  return { start, end };
}

function ifRangeAllows(req: IncomingMessage, etag: string, lastModified: string): boolean {
  const raw = req.headers['if-range'];
  const ifRange = Array.isArray(raw) ? raw[0] : raw;
  if (!ifRange) return true;
  if (ifRange.startsWith('"') || ifRange.startsWith('W/')) return ifRange === etag;
  const since = Date.parse(ifRange);
  return !Number.isNaN(since) && Math.floor(Date.parse(lastModified) / 1000) <= Math.floor(since / 1000);
}

export async function serveDist(req: IncomingMessage, res: ServerResponse, file: ServedFile): Promise<void> {
  // Only the very file that was indexed is served (FsStore: O_NOFOLLOW, so a file swapped for
  // a symbolic link after indexing is not followed, and the same device and inode, so neither
  // is a directory on the way swapped for a link). A file renamed over the indexed one is
  // refused the same way until the watcher (or a rescan) has indexed it, which takes a
  // fraction of a second.
  // An object store's object is opened only while it has the indexed ETag. A store that cannot
  // be reached is a 503 with its reason (HttpError), not a missing file.
  const opened = file.identity ? { expect: file.identity } : file.etag ? { etag: file.etag } : {};
  const obj = await file.store.open(file.relPath, opened).catch((err: unknown) => {
    if (err instanceof HttpError) throw err;
    return null;
  });
  if (!obj) throw httpError('FILE_NOT_FOUND');
  try {
    const st = obj.entry;
    const size = st.size;
    const ctimeMs = st.identity?.ctimeMs ?? 0;
    // The indexed digest names these bytes only if nothing changed (ctime: rewritten in place
    // with the size and mtime kept; an object: the same ETag).
    const same = file.etag ? st.etag === file.etag && st.size === file.size : st.size === file.size && st.mtimeMs === file.mtimeMs && (!file.identity || ctimeMs === file.identity.ctimeMs);
    const etag = same ? strongEtag(file) : `"${size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}-${Math.floor(ctimeMs).toString(16)}"`;
    const lastModified = new Date(st.mtimeMs).toUTCString();
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Content-Disposition', `attachment; filename="${file.filename.replace(/["\\]/g, '_')}"`);
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('ETag', etag);
    res.setHeader('Last-Modified', lastModified);
    res.setHeader('Cache-Control', 'public, max-age=300');
    if (etagMatches(req.headers['if-none-match'], etag)) {
      res.statusCode = 304;
      res.end();
      return;
    }
    const ims = req.headers['if-modified-since'];
    if (!req.headers['if-none-match'] && ims && Math.floor(st.mtimeMs / 1000) <= Math.floor(Date.parse(ims) / 1000)) {
      res.statusCode = 304;
      res.end();
      return;
    }
    let start = 0;
    let end = size - 1;
    const rangeHeader = req.headers.range;
    if (rangeHeader && ifRangeAllows(req, etag, lastModified)) {
      const r = parseRange(rangeHeader, size);
      if (r === 'unsatisfiable') throw httpError('RANGE_NOT_SATISFIABLE', undefined, { 'Content-Range': `bytes */${size}` });
      if (r) {
        start = r.start;
        end = r.end;
        res.statusCode = 206;
        res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
      }
    }
    if (res.statusCode !== 206) res.statusCode = 200;
    res.setHeader('Content-Length', size === 0 ? 0 : end - start + 1);
    if (req.method === 'HEAD' || size === 0) {
      res.end();
      return;
    }
    if (obj.read) await sendBytes(obj.read.bind(obj), res, start, end);
    else await pipeline(obj.stream({ start, end }), res).catch(() => {});
  } finally {
    await obj.close();
  }
}

const CHUNK = 256 * 1024;

/**
 * Send bytes start..end of the file and end the response, reading into two buffers that are
 * reused (each is refilled once the socket has taken its previous contents). A read stream
 * would allocate a fresh buffer per chunk: 400 external allocations per 100 MB, each adding to
 * V8's external memory pressure, which with a large catalog in the heap meant a full garbage
 * collection every few chunks (a download then cost several times the CPU of the baseline).
 * A client that goes away ends the loop; a read error destroys the response.
 */
async function sendBytes(read: NonNullable<StoreObject['read']>, res: ServerResponse, start: number, end: number): Promise<void> {
  const size = Math.min(CHUNK, end - start + 1);
  const bufs = [Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(size)];
  const flushed: Promise<boolean>[] = [Promise.resolve(true), Promise.resolve(true)];
  const closed = new Promise<boolean>((resolve) => res.once('close', () => resolve(false)));
  let pos = start;
  for (let k = 0; pos <= end; k ^= 1) {
    // false: the client went away (or the write failed); nothing more to do.
    if (!(await Promise.race([flushed[k], closed])) || res.destroyed) return;
    let bytesRead: number;
    try {
      bytesRead = await read(bufs[k], 0, Math.min(size, end - pos + 1), pos);
    } catch (err) {
      res.destroy(err as Error);
      return;
    }
    if (bytesRead === 0) break; // the file shrank since the stat
    pos += bytesRead;
    flushed[k] = new Promise<boolean>((resolve) => res.write(bufs[k].subarray(0, bytesRead), (err) => resolve(!err)));
  }
  if (!(await Promise.race([Promise.all(flushed).then((ok) => ok.every(Boolean)), closed]))) return;
  await Promise.race([new Promise<void>((resolve) => res.end(resolve)), closed]);
}

async function serveMetadata(req: IncomingMessage, res: ServerResponse, deps: FilesDeps, file: DistFile): Promise<void> {
  if (!file.metadata?.servable) throw httpError('METADATA_NOT_FOUND');
  const bytes = await deps.metadata.read(file);
  if (!bytes) throw httpError('METADATA_NOT_FOUND');
  sendMetadata(req, res, file.metadata.sha256, bytes);
}

/** A core metadata file (PEP 658), named by its sha256: ETag, 304, HEAD. */
export function sendMetadata(req: IncomingMessage, res: ServerResponse, sha256: string, bytes: Buffer): void {
  const etag = `"${sha256}"`;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('ETag', etag);
  res.setHeader('Cache-Control', 'public, max-age=300');
  if (etagMatches(req.headers['if-none-match'], etag)) {
    res.statusCode = 304;
    res.end();
    return;
  }
  res.statusCode = 200;
  res.setHeader('Content-Length', bytes.length);
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

/**
 * --s3-redirect: send the client to a presigned URL of the object (307), valid for a short
 * time, so the bytes flow from the store. Only a client the route's access check let through
 * gets one (with -a download: an authenticated one); never cached by shared caches.
 */
async function redirectToStore(res: ServerResponse, file: DistFile, seconds: number): Promise<void> {
  const url = await file.store.downloadUrl!(file.relPath, seconds, file.filename);
  res.statusCode = 307;
  res.setHeader('Location', url);
  res.setHeader('Cache-Control', `private, max-age=${Math.max(0, Math.min(60, seconds - 30))}`);
  res.end();
}

/** Express handler for GET/HEAD /packages/<path> (see lib/routes.ts). */
export function fileRoutes(deps: FilesDeps) {
  return async (req: Request, res: Response): Promise<void> => {
    const rel = decodeFilePath(req.path);
    if (!rel) throw httpError('FILE_NOT_FOUND');
    const file = deps.catalog.fileAt(rel);
    if (file) {
      if (deps.redirectSeconds && file.store.downloadUrl) return redirectToStore(res, file, deps.redirectSeconds);
      return serveDist(req, res, file);
    }
    if (rel.endsWith('.metadata')) {
      const dist = deps.catalog.fileAt(rel.slice(0, -'.metadata'.length));
      if (dist) {
        req.routeName = 'metadata';
        return serveMetadata(req, res, deps, dist);
      }
    }
    throw httpError('FILE_NOT_FOUND');
  };
}
