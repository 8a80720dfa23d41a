// HTTP requests to the upstream index (node's fetch), bounded in size and time. Redirects are
// followed by hand, only to http(s) URLs and at most MAX_REDIRECTS times; anything else is an
// UpstreamError, which the callers turn into a 502/504 (or serve what they have cached).

export const JSON_ACCEPT = 'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01';
const MAX_REDIRECTS = 5;

export type UpstreamFailure = 'timeout' | 'unavailable' | 'bad';

export class UpstreamError extends Error {
  constructor(
    readonly kind: UpstreamFailure,
    message: string,
  ) {
    super(message);
  }
}

function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

/** Credentials of the upstream URL (https://user:token@mirror/simple/), as Basic auth for its origin. */
export interface UpstreamAuth {
  origin: string;
  header: string;
}

/**
 * Take the credentials out of an upstream URL, as pip does with an index URL: the URL without
 * them is what is fetched, logged and shown (/health, errors); the credentials go only into an
 * Authorization header to the same origin (not to a files host elsewhere, not after a redirect
 * to another origin).
 */
export function splitCredentials(raw: string): { url: string; auth: UpstreamAuth | null } {
  const u = new URL(raw);
  if (!u.username && !u.password) return { url: raw, auth: null };
  const user = decodeURIComponent(u.username);
  const password = decodeURIComponent(u.password);
  u.username = '';
  u.password = '';
  return { url: u.toString(), auth: { origin: u.origin, header: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` } };
}

/**
 * GET with manual redirects. `signal` bounds the whole exchange; the caller reads the body.
 * Throws UpstreamError for a refused redirect, a network failure or an abort.
 */
export async function request(
  url: string,
  headers: Record<string, string>,
  signal: AbortSignal,
  timedOut: () => boolean,
  auth: UpstreamAuth | null = null,
): Promise<{ res: Response; url: string }> {
  let current = url;
  for (let hop = 0; ; hop++) {
    let res: Response;
    const sent = auth && new URL(current).origin === auth.origin ? { ...headers, authorization: auth.header } : headers;
    try {
      res = await fetch(current, { headers: sent, redirect: 'manual', signal });
    } catch (err) {
      if (timedOut()) throw new UpstreamError('timeout', `no answer from ${current} in time`);
      throw new UpstreamError('unavailable', `cannot reach ${current}: ${describe(err)}`);
    }
    if (res.status < 300 || res.status >= 400 || res.status === 304) return { res, url: current };
    await res.body?.cancel().catch(() => {});
    const to = res.headers.get('location');
    if (!to || hop >= MAX_REDIRECTS) throw new UpstreamError('bad', `${current} redirects ${to ? 'too often' : 'without a Location'}`);
    let next: URL;
    try {
      next = new URL(to, current);
    } catch {
      throw new UpstreamError('bad', `${current} redirects to an invalid URL`);
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new UpstreamError('bad', `${current} redirects to a ${next.protocol} URL, which is not followed`);
    current = next.toString();
  }
}

/** Read a whole body, failing as soon as it exceeds maxBytes. */
export async function readBounded(res: Response, maxBytes: number, timedOut: () => boolean): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw new UpstreamError('bad', `the answer is larger than ${maxBytes} bytes`);
  }
  if (!res.body) return Buffer.alloc(0);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw new UpstreamError('bad', `the answer is larger than ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof UpstreamError) throw err;
    if (timedOut()) throw new UpstreamError('timeout', 'the answer did not arrive in time');
    throw new UpstreamError('unavailable', `the answer broke off: ${describe(err)}`);
  }
  return Buffer.concat(chunks);
}

export type PageAnswer =
  | { status: 'ok'; body: Buffer; contentType: string; etag: string | null; lastModified: string | null; url: string }
  | { status: 'not-modified' }
  | { status: 'not-found' };

/** Fetch a project page (JSON preferred), conditionally when validators are given. */
export async function fetchPage(
  url: string,
  opts: { timeoutMs: number; maxBytes: number; etag?: string | null; lastModified?: string | null; auth?: UpstreamAuth | null },
): Promise<PageAnswer> {
  const ctrl = new AbortController();
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    ctrl.abort();
  }, opts.timeoutMs);
  const timedOut = () => expired;
  try {
    const headers: Record<string, string> = { accept: JSON_ACCEPT, 'user-agent': 'pypi-lite' };
    if (opts.etag) headers['if-none-match'] = opts.etag;
    if (opts.lastModified) headers['if-modified-since'] = opts.lastModified;
    const { res, url: finalUrl } = await request(url, headers, ctrl.signal, timedOut, opts.auth ?? null);
    if (res.status === 304) {
      await res.body?.cancel().catch(() => {});
      return { status: 'not-modified' };
    }
    if (res.status === 404 || res.status === 410) {
      await res.body?.cancel().catch(() => {});
      return { status: 'not-found' };
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {});
      // An error status is about this page; only network failures count the upstream as down.
      throw new UpstreamError('bad', `${finalUrl} answered ${res.status}`);
    }
    const body = await readBounded(res, opts.maxBytes, timedOut);
    return {
      status: 'ok',
      body,
      contentType: (res.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase(),
      etag: res.headers.get('etag'),
      lastModified: res.headers.get('last-modified'),
      url: finalUrl,
    };
  } finally {
    clearTimeout(timer);
  }
}
