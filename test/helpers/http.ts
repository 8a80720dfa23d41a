// Low-level HTTP helpers for the serving tests. `fetch` normalizes paths (`..`, backslashes),
// follows redirects and decompresses bodies, so tests that care about the bytes on the wire or
// send hostile request targets use these instead.

import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One request with node:http: the path is sent as given (no normalization), nothing is decoded. */
export function request(
  url: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: Number(u.port), path, method: opts.method ?? 'GET', headers: opts.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * Send raw bytes as the request head over a TCP socket and return the status code, the raw
 * head and the body as the server wrote them (the connection is closed by `Connection: close`).
 */
export function rawRequest(url: string, head: string | Buffer, timeoutMs = 5_000): Promise<{ status: number; head: string; body: Buffer }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('raw request timed out'));
    }, timeoutMs);
    sock.on('connect', () => sock.end(head));
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const sep = all.indexOf('\r\n\r\n');
      const headText = (sep === -1 ? all : all.subarray(0, sep)).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(headText);
      resolve({ status: m ? Number(m[1]) : 0, head: headText, body: sep === -1 ? Buffer.alloc(0) : all.subarray(sep + 4) });
    });
  });
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The media type of a Content-Type header, without parameters, lower-cased. */
export function mediaType(contentType: string | null | undefined): string {
  return (contentType ?? '').split(';')[0].trim().toLowerCase();
}

/** The list of field names in a Vary header, lower-cased. */
export function varyFields(vary: string | null | undefined): string[] {
  return (vary ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
}

export const JSON_V1 = 'application/vnd.pypi.simple.v1+json';
export const HTML_V1 = 'application/vnd.pypi.simple.v1+html';
export const PIP_ACCEPT = 'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01';
export const UV_ACCEPT = 'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.2, text/html; q=0.01';

/** The PEP 691 project page, as the tests read it. */
export interface ProjectJson {
  meta: { 'api-version': string };
  name: string;
  files: {
    filename: string;
    url: string;
    hashes: Record<string, string>;
    'requires-python'?: string;
    'core-metadata'?: { sha256: string } | boolean;
    'dist-info-metadata'?: unknown;
    yanked: boolean | string;
    size: number;
    'upload-time': string;
  }[];
  versions: string[];
}

/** Anchors of an HTML page: href and text (entities decoded), plus the raw attribute string. */
export interface Anchor {
  href: string;
  text: string;
  attrs: Record<string, string>;
}

export function decodeEntities(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&#x27;/g, "'")
    .replace(/&amp;/g, '&');
}

export function anchors(html: string): Anchor[] {
  const out: Anchor[] = [];
  const re = /<a\s([^>]*)>([^<]*)<\/a>/g;
  for (let m = re.exec(html); m; m = re.exec(html)) {
    const attrs: Record<string, string> = {};
    const attrRe = /([a-zA-Z:-]+)="([^"]*)"/g;
    for (let a = attrRe.exec(m[1]); a; a = attrRe.exec(m[1])) attrs[a[1]] = decodeEntities(a[2]);
    out.push({ href: attrs.href ?? '', text: decodeEntities(m[2]), attrs });
  }
  return out;
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}
