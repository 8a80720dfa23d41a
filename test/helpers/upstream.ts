// A tiny upstream index for the proxy tests: a node:http server on 127.0.0.1 serving a static
// PEP 503 tree (HTML pages with ETags and 304s, files under /files/) plus whatever hostile
// answers a test registers. It records every request, so tests can assert what the proxy fetched.

import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { escapeHtml } from '../../lib/simple/render.js';

export interface TreeFile {
  filename: string;
  bytes: Buffer;
  /** What the page lists as sha256 (default: the real one). */
  listedSha256?: string;
  /** Bytes actually served (default: `bytes`). */
  served?: Buffer;
  requiresPython?: string;
  yanked?: string;
  /** Wait this long before answering the file request. */
  delayMs?: number;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export class StaticUpstream {
  readonly projects = new Map<string, TreeFile[]>();
  /** Custom answers by path (checked first). */
  readonly handlers = new Map<string, Handler>();
  readonly requests: { method: string; url: string; headers: http.IncomingHttpHeaders; status?: number }[] = [];
  private server: http.Server | null = null;
  url = '';
  port = 0;

  add(project: string, file: TreeFile): void {
    const list = this.projects.get(project) ?? [];
    list.push(file);
    this.projects.set(project, list);
  }

  page(project: string): Buffer {
    const links = (this.projects.get(project) ?? []).map((f) => {
      const sha = f.listedSha256 ?? createHash('sha256').update(f.bytes).digest('hex');
      const attrs = `${f.requiresPython ? ` data-requires-python="${escapeHtml(f.requiresPython)}"` : ''}${f.yanked !== undefined ? ` data-yanked="${escapeHtml(f.yanked)}"` : ''}`;
      return `<a href="../../files/${encodeURIComponent(f.filename)}#sha256=${sha}"${attrs}>${escapeHtml(f.filename)}</a><br>`;
    });
    return Buffer.from(`<!DOCTYPE html><html><head><title>Links for ${project}</title></head><body>\n${links.join('\n')}\n</body></html>\n`);
  }

  /** Requests whose path starts with this prefix. */
  seen(prefix: string): { method: string; url: string; headers: http.IncomingHttpHeaders; status?: number }[] {
    return this.requests.filter((r) => r.url.startsWith(prefix));
  }

  async start(port = 0): Promise<void> {
    this.server = http.createServer((req, res) => {
      const entry: { method: string; url: string; headers: http.IncomingHttpHeaders; status?: number } = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
      this.requests.push(entry);
      res.on('finish', () => (entry.status = res.statusCode));
      const pathname = (req.url ?? '/').split('?')[0];
      const custom = this.handlers.get(pathname);
      if (custom) return custom(req, res);
      let m = /^\/simple\/([^/]+)\/$/.exec(pathname);
      if (m && this.projects.has(m[1])) {
        const body = this.page(m[1]);
        const etag = `"${createHash('sha1').update(body).digest('hex')}"`;
        if (req.headers['if-none-match'] === etag) {
          res.writeHead(304, { etag });
          return res.end();
        }
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', etag, 'content-length': body.length });
        return res.end(body);
      }
      m = /^\/files\/([^/]+)$/.exec(pathname);
      const name = m ? decodeURIComponent(m[1]) : null;
      const file = name ? [...this.projects.values()].flat().find((f) => f.filename === name) : undefined;
      if (file) {
        const bytes = file.served ?? file.bytes;
        const send = () => {
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
          res.end(bytes);
        };
        if (file.delayMs) setTimeout(send, file.delayMs);
        else send();
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    this.url = `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/** Files of a cache directory's verified-file store (sha256 names). */
export async function cachedBlobs(cacheDir: string): Promise<string[]> {
  const out: string[] = [];
  const files = path.join(cacheDir, 'files');
  for (const sub of await fsp.readdir(files).catch(() => [])) for (const f of await fsp.readdir(path.join(files, sub))) out.push(f);
  return out;
}
