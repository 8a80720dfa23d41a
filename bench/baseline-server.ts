// The benchmark's baseline: a bare node:http server with no logic. It answers the Simple API
// paths with the exact bytes pypi-lite served (fetched beforehand, see bench/baseline.ts), with
// the same Content-Type, streams the same 100 MB file with fs.createReadStream, and takes an
// upload by streaming the request body to disk while hashing it with sha256 (and, for
// POST /upload?fsync=1, fsyncs the file before answering, as pypi-lite does). Whatever
// pypi-lite costs on top of this is the cost of its own code.
//
//   node dist/bench/baseline-server.js <pages.json> <big file> <big file url path> <upload dir>
//
// Prints "listening http://127.0.0.1:PORT" once it accepts connections.

import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fsp, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface StoredPage {
  path: string;
  /** 'json' when pypi-lite chose JSON for pip's Accept header, else 'html'. */
  format: 'html' | 'json';
  gzip: boolean;
  contentType: string;
  /** base64 */
  body: string;
}

interface Page {
  contentType: string;
  body: Buffer;
  gzip: boolean;
}

function main(): void {
  const [pagesFile, bigFile, bigUrl, uploadDir] = process.argv.slice(2);
  if (!pagesFile || !bigFile || !bigUrl || !uploadDir) {
    process.stderr.write('usage: baseline-server <pages.json> <big file> <big url path> <upload dir>\n');
    process.exit(2);
  }
  const pages = new Map<string, Page>();
  for (const p of JSON.parse(readFileSync(pagesFile, 'utf8')) as StoredPage[]) {
    pages.set(`${p.path} ${p.format}${p.gzip ? ' gz' : ''}`, { contentType: p.contentType, body: Buffer.from(p.body, 'base64'), gzip: p.gzip });
  }
  const bigSize = statSync(bigFile).size;
  let uploads = 0;

  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (req.method === 'GET' && url === bigUrl) {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': bigSize });
      createReadStream(bigFile).pipe(res);
      return;
    }
    if (req.method === 'POST') {
      const file = path.join(uploadDir, `upload-${process.pid}-${uploads++}.tmp`);
      const hash = createHash('sha256');
      const hasher = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      pipeline(req, hasher, createWriteStream(file))
        .then(async () => {
          if (url.endsWith('?fsync=1')) {
            const fh = await fsp.open(file, 'r+');
            await fh.sync().finally(() => fh.close());
          }
          const digest = hash.digest('hex');
          res.writeHead(200, { 'Content-Type': 'text/plain' });
          res.end(`OK ${digest}\n`);
        })
        .catch((err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        })
        .finally(() => void fsp.rm(file, { force: true }));
      return;
    }
    // The only "logic": pick the stored representation the request asks for.
    const format = (req.headers.accept ?? '').includes('json') ? 'json' : 'html';
    const gz = (req.headers['accept-encoding'] ?? '').includes('gzip');
    const page = (gz && pages.get(`${url} ${format} gz`)) || pages.get(`${url} ${format}`);
    if (!page) {
      res.writeHead(404, { 'Content-Length': 0 });
      res.end();
      return;
    }
    const headers: http.OutgoingHttpHeaders = { 'Content-Type': page.contentType, 'Content-Length': page.body.length };
    if (page.gzip) headers['Content-Encoding'] = 'gzip';
    res.writeHead(200, headers);
    res.end(page.body);
  });
  server.keepAliveTimeout = 5_000;
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    process.stdout.write(`listening http://127.0.0.1:${port}\n`);
  });
  process.on('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}

main();
