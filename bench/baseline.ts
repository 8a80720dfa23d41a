// Captures what pypi-lite serves so that the baseline server can answer with the same bytes:
// every sampled project page in HTML and JSON, and the root list as pip asks for it (JSON,
// gzip) and in HTML.

import { promises as fsp } from 'node:fs';
import { get, HTML_ACCEPT, PIP_ACCEPT } from './procs.js';
import type { StoredPage } from './baseline-server.js';

export const ROOT_PATH = '/simple/';

async function capture(url: string, p: string, accept: string, gzip: boolean): Promise<StoredPage> {
  const headers: Record<string, string> = { Accept: accept };
  if (gzip) headers['Accept-Encoding'] = 'gzip';
  const r = await get(`${url}${p}`, headers);
  if (r.status !== 200) throw new Error(`GET ${p} (${accept}) answered ${r.status}`);
  const contentType = String(r.headers['content-type'] ?? '');
  const isGzip = r.headers['content-encoding'] === 'gzip';
  if (gzip !== isGzip) throw new Error(`GET ${p}: expected ${gzip ? 'a gzip' : 'an identity'} body`);
  return { path: p, format: contentType.includes('json') ? 'json' : 'html', gzip, contentType, body: r.body.toString('base64') };
}

/**
 * Fetch the pages (which also renders and caches them in pypi-lite, so that the measurements
 * see its steady state) and write them where the baseline server reads them.
 */
export async function capturePages(url: string, projectPaths: string[], file: string, concurrency = 16): Promise<{ pages: number; bytes: number }> {
  const jobs: (() => Promise<StoredPage>)[] = [];
  for (const p of projectPaths) {
    jobs.push(() => capture(url, p, HTML_ACCEPT, false), () => capture(url, p, PIP_ACCEPT, false));
  }
  jobs.push(
    () => capture(url, ROOT_PATH, PIP_ACCEPT, true),
    () => capture(url, ROOT_PATH, PIP_ACCEPT, false),
    () => capture(url, ROOT_PATH, HTML_ACCEPT, true),
    () => capture(url, ROOT_PATH, HTML_ACCEPT, false),
  );
  const pages: StoredPage[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < jobs.length) pages.push(await jobs[next++]());
    }),
  );
  const text = JSON.stringify(pages);
  await fsp.writeFile(file, text);
  return { pages: pages.length, bytes: pages.reduce((n, p) => n + Buffer.from(p.body, 'base64').length, 0) };
}

/** Warm a server's page cache by requesting every page once (no capture). */
export async function warmPages(url: string, projectPaths: string[], concurrency = 16): Promise<void> {
  const jobs: [string, Record<string, string>][] = [];
  for (const p of projectPaths) jobs.push([p, { Accept: HTML_ACCEPT }], [p, { Accept: PIP_ACCEPT }]);
  jobs.push([ROOT_PATH, { Accept: PIP_ACCEPT, 'Accept-Encoding': 'gzip' }]);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < jobs.length) {
        const [p, headers] = jobs[next++];
        await get(`${url}${p}`, headers);
      }
    }),
  );
}
