// Bounds on the text fields of the upload form, against the real server: each field has a limit
// fit for what it carries (description up to 1 MiB, the rest 64 KiB), the fields of one request
// have one in total, and a request over a limit is answered while it is still being sent, without
// the server's memory growing by what the client sends.

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { spawnServer, tempDir, waitHealthy, type Spawned } from './helpers/server.js';
import { RawClient, eventually, multipart, post, postHead, pyArchive, sleep, tempUploads, twineFields, type Field } from './helpers/upload.js';

const MiB = 1024 * 1024;

/** The server's peak resident memory since the last reset (Linux: /proc/<pid>/status VmHWM), in bytes. */
async function peakRss(pid: number): Promise<number> {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(await fsp.readFile(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error('no VmHWM');
  return Number(m[1]) * 1024;
}

/** Reset the peak to the current resident size (writing 5 to clear_refs, Linux >= 4.0). */
async function resetPeak(pid: number): Promise<void> {
  await fsp.writeFile(`/proc/${pid}/clear_refs`, '5');
}

function fieldPart(boundary: string, name: string): { head: Buffer; tail: Buffer } {
  return { head: Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n`), tail: Buffer.from('\r\n') };
}

interface Streamed {
  /** Bytes of the body sent before the answer arrived (or all of them). */
  sent: number;
  total: number;
  client: RawClient;
  /** Temp upload files present the moment the answer's head arrived. */
  tempsAtAnswer: string[];
}

/**
 * POST a multipart body made of `pieces` (a generator of buffers, produced lazily so that the test
 * never holds the whole body), 1 MiB at a time, and stop sending as soon as an answer arrives.
 */
async function stream(port: number, root: string, contentType: string, total: number, pieces: Iterable<Buffer>): Promise<Streamed> {
  const client = await RawClient.connect(port);
  await client.write(postHead('/', contentType, total));
  let sent = 0;
  const answered = () => client.received.includes('\r\n\r\n');
  let tempsAtAnswer: string[] | null = null;
  const snapshot = async () => {
    if (tempsAtAnswer === null && answered()) tempsAtAnswer = await tempUploads(root);
  };
  client.socket.on('data', () => void snapshot());
  for (const piece of pieces) {
    if (answered() || client.socket.destroyed) break;
    await client.write(piece);
    sent += piece.length;
    // At a pace the server can keep up with (about 100 MiB/s), so that what was sent before the
    // answer arrived says when the server answered, not how fast loopback buffers fill.
    if (piece.length >= MiB) await sleep(10);
  }
  expect(await eventually(() => answered(), 20_000), 'an answer').to.equal(true);
  await snapshot();
  return { sent, total, client, tempsAtAnswer: tempsAtAnswer ?? [] };
}

/** `bytes` bytes of "x", as 1 MiB pieces. */
function* filler(bytes: number): Generator<Buffer> {
  const block = Buffer.alloc(MiB, 'x');
  for (let left = bytes; left > 0; left -= MiB) yield left >= MiB ? block : block.subarray(0, left);
}

describe('upload form limits: bounded text fields, answered early, memory bounded', function () {
  this.timeout(120_000);

  let srv: Spawned;
  let work: string;
  let root: string;

  before(async () => {
    work = await tempDir('pypi-lite-formlimits-');
    root = path.join(work, 'root');
    await fsp.mkdir(root);
    srv = await spawnServer(['-a', '.', '-P', '.', '--disable-fallback', root]);
    await waitHealthy(srv.url);
  });

  after(async () => {
    const code = await srv?.stop();
    expect(code, srv?.output()).to.equal(0);
    expect(srv.output()).not.to.match(/"level":50|unexpected error/);
    await fsp.rm(work, { recursive: true, force: true });
  });

  /** The server keeps serving, and nothing of the refused uploads is left. */
  async function nothingLeft(): Promise<void> {
    const health = await fetch(`${srv.url}/health`);
    expect(health.status).to.equal(200);
    expect(await eventually(async () => (await tempUploads(root)).length === 0)).to.equal(true);
    expect((await fsp.readdir(root)).filter((n) => !n.startsWith('.'))).to.deep.equal([]);
  }

  it('400 for a 200 KiB summary (fields other than description are limited to 64 KiB)', async () => {
    const bytes = await pyArchive(work, 'lim_pkg-1.0.tar.gz', { kind: 'sdist', name: 'lim-pkg', version: '1.0' });
    const fields = twineFields('lim-pkg', '1.0', 'lim_pkg-1.0.tar.gz', bytes, { summary: 's'.repeat(200 * 1024) });
    const ans = await post(`${srv.url}/`, multipart(fields, { filename: 'lim_pkg-1.0.tar.gz', bytes }));
    expect(ans.status, ans.statusText).to.equal(400);
    expect(ans.statusText).to.equal('A form field is too large: summary is larger than 65536 bytes');
    expect(ans.body).to.include(ans.statusText);
    await nothingLeft();
  });

  it('accepts a description of almost 1 MiB (what PyPI allows)', async () => {
    const bytes = await pyArchive(work, 'lim_ok-1.0.tar.gz', { kind: 'sdist', name: 'lim-ok', version: '1.0' });
    const fields = twineFields('lim-ok', '1.0', 'lim_ok-1.0.tar.gz', bytes, { description: 'd'.repeat(MiB - 10), license: 'l'.repeat(40 * 1024) });
    const ans = await post(`${srv.url}/`, multipart(fields, { filename: 'lim_ok-1.0.tar.gz', bytes }));
    expect(ans.status, ans.statusText).to.equal(200);
    await fsp.rm(path.join(root, 'lim_ok-1.0.tar.gz'));
    await nothingLeft();
  });

  it('a 64 MiB description is refused with 400 while the client is still sending it', async () => {
    const boundary = 'limits-boundary-1';
    const fields: Field[] = twineFields('lim-pkg', '1.0', 'lim_pkg-1.0.tar.gz', Buffer.from('x'));
    const before = multipart(fields, null, { boundary }).body;
    const lead = before.subarray(0, before.length - `--${boundary}--\r\n`.length);
    const desc = fieldPart(boundary, 'description');
    const end = Buffer.from(`--${boundary}--\r\n`);
    const total = lead.length + desc.head.length + 64 * MiB + desc.tail.length + end.length;
    const r = await stream(srv.port, root, `multipart/form-data; boundary=${boundary}`, total, [lead, desc.head, ...filler(64 * MiB), desc.tail, end]);
    expect(r.sent, `answered after ${r.sent} of ${r.total} bytes`).to.be.below(r.total / 2);
    expect(r.client.received).to.match(/^HTTP\/1\.1 400 A form field is too large: description is larger than 1048576 bytes\r\n/);
    r.client.socket.destroy();
    await nothingLeft();
  });

  it('64 fields of 1 MiB each: 413 once the fields pass 2 MiB in total, and the server\'s peak memory does not grow by the payload', async function () {
    const pid = srv.proc.pid!;
    try {
      await resetPeak(pid);
    } catch {
      this.skip(); // no clear_refs (not Linux, or not permitted): the peak cannot be measured
    }
    const start = await peakRss(pid);
    const boundary = 'limits-boundary-2';
    const lead = multipart(twineFields('lim-pkg', '1.0', 'lim_pkg-1.0.tar.gz', Buffer.from('x')), null, { boundary }).body;
    const head = lead.subarray(0, lead.length - `--${boundary}--\r\n`.length);
    const part = fieldPart(boundary, 'description');
    const end = Buffer.from(`--${boundary}--\r\n`);
    const count = 64;
    const total = head.length + count * (part.head.length + MiB - 64 + part.tail.length) + end.length;
    function* body(): Generator<Buffer> {
      yield head;
      for (let i = 0; i < count; i++) yield Buffer.concat([part.head, Buffer.alloc(MiB - 64, 'y'), part.tail]);
      yield end;
    }
    const r = await stream(srv.port, root, `multipart/form-data; boundary=${boundary}`, total, body());
    r.client.socket.destroy();
    const grown = (await peakRss(pid)) - start;
    expect(grown, `peak RSS grew by ${(grown / MiB).toFixed(1)} MiB for a ${(total / MiB).toFixed(0)} MiB form`).to.be.below(32 * MiB);
    expect(r.client.received).to.match(/^HTTP\/1\.1 413 Form fields too large: more than 2097152 bytes of text fields\r\n/);
    expect(r.sent, `answered after ${r.sent} of ${r.total} bytes`).to.be.below(r.total / 2);
    await nothingLeft();
  });

  it('a file sent before an oversize field: the temp file is gone when the answer arrives', async () => {
    const boundary = 'limits-boundary-3';
    const bytes = await pyArchive(work, 'lim_first-1.0.tar.gz', { kind: 'sdist', name: 'lim-first', version: '1.0', extra: 'z'.repeat(3 * MiB) });
    const withFile = multipart(twineFields('lim-first', '1.0', 'lim_first-1.0.tar.gz', bytes), { filename: 'lim_first-1.0.tar.gz', bytes }, { boundary, fileFirst: true }).body;
    const lead = withFile.subarray(0, withFile.length - `--${boundary}--\r\n`.length);
    const desc = fieldPart(boundary, 'description');
    const end = Buffer.from(`--${boundary}--\r\n`);
    const total = lead.length + desc.head.length + 32 * MiB + desc.tail.length + end.length;
    const r = await stream(srv.port, root, `multipart/form-data; boundary=${boundary}`, total, [lead, desc.head, ...filler(32 * MiB), desc.tail, end]);
    expect(r.client.received).to.match(/^HTTP\/1\.1 400 A form field is too large: description is larger than 1048576 bytes\r\n/);
    expect(r.tempsAtAnswer, 'temp files when the answer arrived').to.deep.equal([]);
    expect(r.sent).to.be.below(total);
    r.client.socket.destroy();
    await nothingLeft();
  });
});
