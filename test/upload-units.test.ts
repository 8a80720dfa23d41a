// Unit tests of the pieces behind upload integrity and form limits: the distribution key (which
// file names are one file), the version key, and the FormGuard's reading of multipart bodies
// however they are cut into chunks.

import { expect } from 'chai';
import { createRequire } from 'node:module';
import { Readable, Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { distKey, parseFilename } from '../lib/catalog/filename.js';
import { versionKey } from '../lib/catalog/version.js';
import { FormGuard, boundaryOf, type FormLimits } from '../lib/upload/form-guard.js';
import { eventually, multipart, post, postHead, RawClient, tempUploads, twineFields } from './helpers/upload.js';
import { makeConfig } from './helpers/config.js';
import { startServer, type RunningServer } from '../lib/server.js';
import { pino } from 'pino';
import { randomBytes } from 'node:crypto';
import { LARGE_STREAM, sweepTempFiles, TEMP_PREFIX } from '../lib/upload/storage.js';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** busboy (multer's parser; it ships no types): a multipart body in, 'field', 'file', 'error' and 'close' out. */
type BusboyFactory = (cfg: { headers: Record<string, string>; preservePath?: boolean; limits?: Record<string, number> }) => Writable;
const Busboy = createRequire(import.meta.url)('busboy') as BusboyFactory;

function key(filename: string): string {
  const parsed = parseFilename(filename);
  expect(parsed, filename).not.to.equal(null);
  return distKey(parsed!);
}

describe('distKey: one key for every spelling of one distribution file', () => {
  const same: string[][] = [
    ['demo-1.0-py3-none-any.whl', 'Demo-1.0-py3-none-any.whl', 'DEMO-1.0-py3-none-any.whl', 'demo-1.0-py3-none-any.WHL', 'demo-1.0.0-py3-none-any.whl', 'demo-v1.0-PY3-NONE-ANY.whl'],
    ['demo_pkg-1.0-py3-none-any.whl', 'demo.pkg-1.0-py3-none-any.whl', 'Demo__Pkg-1.0-py3-none-any.whl'],
    ['demo-1.0-py2.py3-none-any.whl', 'demo-1.0-py3.py2-none-any.whl'],
    ['demo-1.0-1-py3-none-any.whl', 'demo-1.0-01-py3-none-any.whl'],
    ['demo_pkg-2.0.tar.gz', 'demo.pkg-2.0.tar.gz', 'demo-pkg-2.0.tar.gz', 'Demo_Pkg-2.0.TAR.GZ', 'demo_pkg-2.0.0.tar.gz'],
    ['demo-1.0+abc.tar.gz', 'demo-1.0.0+ABC.tar.gz'],
  ];
  for (const group of same) {
    it(`${group[0]} = ${group.slice(1).join(', ')}`, () => {
      const keys = new Set(group.map(key));
      expect([...keys], group.join(' ')).to.have.length(1);
    });
  }

  const different: [string, string][] = [
    ['demo-1.0-py3-none-any.whl', 'demo-1.0-py2.py3-none-any.whl'],
    ['demo-1.0-py3-none-any.whl', 'demo-1.0-1-py3-none-any.whl'],
    ['demo-1.0-py3-none-any.whl', 'demo-1.0.1-py3-none-any.whl'],
    ['demo-1.0-py3-none-any.whl', 'demo-1.0.post0-py3-none-any.whl'],
    ['demo-1.0-py3-none-any.whl', 'demo2-1.0-py3-none-any.whl'],
    ['demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl', 'demo-1.0-cp311-cp311-musllinux_1_1_x86_64.whl'],
    ['demo-1.0.tar.gz', 'demo-1.0.zip'],
    ['demo-1.0.tar.gz', 'demo-1.0-py3-none-any.whl'],
    ['demo-1.0+abc.tar.gz', 'demo-1.0.tar.gz'],
  ];
  for (const [a, b] of different) {
    it(`${a} != ${b}`, () => {
      expect(key(a)).not.to.equal(key(b));
    });
  }
});

describe('versionKey', () => {
  it('is equal for PEP 440-equal spellings and different otherwise', () => {
    const eq = ['1.0', '1.0.0', 'v1.0', '1.0.0.0', '0!1.0', ' 1.0 '];
    expect(new Set(eq.map(versionKey)).size).to.equal(1);
    expect(versionKey('1.0-1')).to.equal(versionKey('1.0.post1'));
    expect(versionKey('1.0a')).to.equal(versionKey('1.0.0alpha0'));
    expect(versionKey('1.0rc1')).to.equal(versionKey('1.0c1'));
    expect(versionKey('0')).to.equal(versionKey('0.0'));
    const distinct = ['1.0', '1.0.1', '1.0a1', '1.0b1', '1.0rc1', '1.0.post1', '1.0.dev1', '1.0+local', '1!1.0', '10'];
    expect(new Set(distinct.map(versionKey)).size).to.equal(distinct.length);
    expect(versionKey('not a version')).to.equal(null);
  });
});

describe('FormGuard', () => {
  const limits: FormLimits = { fieldSize: 100, perField: { description: 1000 }, totalFieldBytes: 1500 };

  /** Feed `body` in chunks of `size` bytes; the bytes that came out, or the error. */
  async function feed(body: Buffer, boundary: string, size: number): Promise<{ out: Buffer } | { error: string }> {
    const chunks: Buffer[] = [];
    for (let i = 0; i < body.length; i += size) chunks.push(body.subarray(i, i + size));
    const out: Buffer[] = [];
    const target = new Writable({
      write(chunk: Buffer, _enc, cb) {
        out.push(chunk);
        cb();
      },
    });
    try {
      await pipeline(Readable.from(chunks, { objectMode: false }), new FormGuard(boundary, limits, target));
      await finished(target);
      return { out: Buffer.concat(out) };
    } catch (err) {
      return { error: err instanceof Error ? err.message : String(err) };
    }
  }

  const SIZES = [1, 2, 3, 5, 7, 13, 31, 64, 100, 257, 4096, 1 << 20];

  it('passes a body within the limits through unchanged, however it is cut (files are not counted)', async () => {
    const boundary = 'b0undary';
    const fileBytes = Buffer.from(`--b0undar\r\n--b0undarx ${'f'.repeat(5000)} \r\n-b0undary`);
    const body = multipart(
      [
        ['name', 'x'.repeat(100)],
        ['description', 'd'.repeat(1000)],
        ['summary', 's'.repeat(100)],
      ],
      { filename: 'demo-1.0.tar.gz', bytes: fileBytes },
      { boundary },
    ).body;
    for (const size of SIZES) {
      const r = await feed(body, boundary, size);
      expect(r, `chunks of ${size}`).to.have.property('out');
      if ('out' in r) expect(r.out.equals(body), `chunks of ${size}`).to.equal(true);
    }
  });

  it('fails on a field over its own limit, however the body is cut', async () => {
    const boundary = 'xyz';
    const body = multipart([['name', 'x'.repeat(10)], ['summary', 's'.repeat(101)]], null, { boundary }).body;
    for (const size of SIZES) {
      expect(await feed(body, boundary, size), `chunks of ${size}`).to.deep.equal({ error: 'A form field is too large: summary is larger than 100 bytes' });
    }
    const desc = multipart([['description', 'd'.repeat(1001)]], null, { boundary }).body;
    for (const size of SIZES) {
      expect(await feed(desc, boundary, size), `chunks of ${size}`).to.deep.equal({ error: 'A form field is too large: description is larger than 1000 bytes' });
    }
  });

  it('fails when the fields together pass the total, however the body is cut', async () => {
    const boundary = 'xyz';
    const fields: [string, string][] = Array.from({ length: 16 }, (_, i) => [`f${i}`, 'v'.repeat(100)]);
    const body = multipart(fields, null, { boundary }).body;
    for (const size of SIZES) {
      expect(await feed(body, boundary, size), `chunks of ${size}`).to.deep.equal({ error: 'Form fields too large: more than 1500 bytes of text fields' });
    }
  });

  it('counts a part with Content-Type application/octet-stream and no filename as a file, as busboy does', async () => {
    const boundary = 'xyz';
    const body = Buffer.from(`--xyz\r\nContent-Disposition: form-data; name="blob"\r\nContent-Type: application/octet-stream\r\n\r\n${'o'.repeat(5000)}\r\n--xyz--\r\n`);
    for (const size of SIZES) expect(await feed(body, boundary, size), `chunks of ${size}`).to.have.property('out');
  });

  /**
   * Feed `input` in chunks of `size` bytes to a guard whose target claims the content file
   * when `claims` says so (as the storage engine does when busboy reports it).
   */
  async function divert(input: Buffer, boundary: string, size: number, claims: boolean) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < input.length; i += size) chunks.push(input.subarray(i, i + size));
    const out: Buffer[] = [];
    const diverted: Buffer[] = [];
    let asked = 0;
    let echoed = 0;
    const sink = new Writable({
      highWaterMark: 7, // backpressure on every write
      write(chunk: Buffer, _enc, cb) {
        diverted.push(Buffer.from(chunk));
        setImmediate(cb);
      },
    });
    const sinkDone = finished(sink).then(
      () => 'finished',
      () => 'destroyed',
    );
    const target = new Writable({
      highWaterMark: 5,
      write(chunk: Buffer, _enc, cb) {
        out.push(Buffer.from(chunk));
        if (guard.claimable()) {
          asked++;
          if (claims) echoed = guard.claim(sink);
        }
        setImmediate(cb); // a target that takes its time: the guard waits for it
      },
    });
    const guard = new FormGuard(boundary, limits, target);
    await pipeline(Readable.from(chunks, { objectMode: false }), guard);
    await finished(target);
    if (!claims) sink.destroy();
    return { out: Buffer.concat(out).toString('latin1'), diverted: Buffer.concat(diverted).toString('latin1'), asked, echoed, sink: await sinkDone };
  }

  it('diverts the body of the first "content" file its target claims, however the body is cut: the target gets that part empty', async () => {
    const boundary = 'b0undary';
    const fileBytes = Buffer.from(`--b0undar\r\n--b0undarx ${'f'.repeat(5000)} \r\n-b0undary\r\n`);
    const fields: [string, string][] = [
      ['md5_digest', 'x'],
      ['name', 'demo'],
    ];
    const body = multipart(fields, { filename: 'demo-1.0.tar.gz', bytes: fileBytes }, { boundary }).body;
    const emptied = multipart(fields, { filename: 'demo-1.0.tar.gz', bytes: Buffer.alloc(0) }, { boundary }).body;
    // A second file part named content (multer refuses it) and the signature are not diverted.
    const sig = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="gpg_signature"; filename="a.asc"\r\n\r\nsig\r\n`);
    const again = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="content"; filename="b.tar.gz"\r\n\r\nmore\r\n`);
    const tailEnd = body.length - `--${boundary}--\r\n`.length;
    const withMore = Buffer.concat([body.subarray(0, tailEnd), sig, again, body.subarray(tailEnd)]);
    const withMoreEmptied = Buffer.concat([emptied.subarray(0, emptied.length - `--${boundary}--\r\n`.length), sig, again, body.subarray(tailEnd)]);
    for (const [input, expected] of [
      [body, emptied],
      [withMore, withMoreEmptied],
    ]) {
      for (const size of SIZES) {
        const r = await divert(input, boundary, size, true);
        // busboy gets the first bytes of the file along with its header, up to the first byte
        // its search need not hold back as the possible start of a boundary: here 21 (the file
        // starts "--b0undar\r\n--b0undarx"), no more.
        expect(r.echoed, `chunks of ${size}`).to.equal(21);
        const headerEnd = expected.indexOf('\r\n\r\n', expected.indexOf('filename="demo-1.0.tar.gz"')) + 4;
        const withEcho = Buffer.concat([expected.subarray(0, headerEnd), fileBytes.subarray(0, r.echoed), expected.subarray(headerEnd)]);
        expect(r.out, `chunks of ${size}`).to.equal(withEcho.toString('latin1'));
        expect(r.diverted, `chunks of ${size}`).to.equal(fileBytes.toString('latin1'));
        expect(r.sink, `chunks of ${size}`).to.equal('finished');
        expect(r.asked, `chunks of ${size}`).to.equal(1);
      }
    }
  });

  it('a content file its target does not claim (busboy refused or skipped the part) goes to the target byte for byte, and so does every later one', async () => {
    const boundary = 'b0undary';
    const fileBytes = Buffer.from(`--b0undar\r\n${'f'.repeat(3000)}\r\n`);
    const again = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="content"; filename="b.tar.gz"\r\n\r\nmore\r\n`);
    const body = multipart([['name', 'demo']], { filename: 'demo-1.0.tar.gz', bytes: fileBytes }, { boundary }).body;
    const tailEnd = body.length - `--${boundary}--\r\n`.length;
    const input = Buffer.concat([body.subarray(0, tailEnd), again, body.subarray(tailEnd)]);
    for (const size of SIZES) {
      const r = await divert(input, boundary, size, false);
      expect(r.out, `chunks of ${size}`).to.equal(input.toString('latin1'));
      expect(r.diverted, `chunks of ${size}`).to.equal('');
      expect(r.asked, `chunks of ${size}`).to.equal(2);
    }
  });

  it('a body that ends inside the diverted file: the sink is destroyed, not ended (the file is incomplete)', async () => {
    const boundary = 'b0undary';
    const body = multipart([['name', 'demo']], { filename: 'demo-1.0.tar.gz', bytes: Buffer.from('f'.repeat(3000)) }, { boundary }).body;
    const cut = body.subarray(0, body.length - 1000);
    for (const size of SIZES) {
      const r = await divert(cut, boundary, size, true);
      expect(r.sink, `chunks of ${size}`).to.equal('destroyed');
      expect(r.echoed, `chunks of ${size}`).to.equal(1);
      expect(r.out, `chunks of ${size}`).to.equal(cut.subarray(0, cut.indexOf('ffff') + 1).toString('latin1'));
    }
  });

  it('a body that starts with its boundary (no preamble, no CRLF before it) is passed on byte for byte', async () => {
    const boundary = 'xyz';
    const body = Buffer.from(`--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--xyz--\r\n`);
    for (const size of SIZES) {
      const r = await feed(body, boundary, size);
      expect(r, `chunks of ${size}`).to.have.property('out');
      if ('out' in r) expect(r.out.toString('latin1'), `chunks of ${size}`).to.equal(body.toString('latin1'));
    }
  });

  /**
   * What busboy reports of `body` fed in chunks of `size` bytes: fields, files (name, file name,
   * bytes, or "incomplete") and its error. With `guarded`, through a FormGuard whose content file
   * is claimed the way the storage engine claims it (the body then comes from the guard's sink).
   */
  async function busboyView(body: Buffer, boundary: string, size: number, guarded: boolean): Promise<{ events: string[]; diverted: number }> {
    const bb = Busboy({ headers: { 'content-type': `multipart/form-data; boundary="${boundary}"` }, preservePath: true, limits: { files: 2, parts: 8 } });
    const events: string[] = [];
    const files: Promise<string>[] = [];
    let diverted = 0;
    const guard = guarded ? new FormGuard(boundary, { fieldSize: 1 << 20, perField: {}, totalFieldBytes: 1 << 20 }, bb) : null;
    bb.on('field', (name: string, value: string) => events.push(`field ${name}=${value}`));
    bb.on('file', (name: string, stream: Readable, info: { filename?: string }) => {
      const at = events.push('') - 1;
      const seen: Buffer[] = [];
      stream.on('data', (c: Buffer) => seen.push(c));
      const streamed = finished(stream).then(
        () => Buffer.concat(seen),
        () => null,
      );
      let content: Promise<Buffer | null> = streamed;
      if (guard && name === 'content' && guard.claimable()) {
        const got: Buffer[] = [];
        const sink = new Writable({
          write(c: Buffer, _enc, cb) {
            got.push(c);
            cb();
          },
        });
        const echoed = guard.claim(sink);
        diverted++;
        content = Promise.all([streamed, finished(sink).then(() => true, () => false)]).then(([s, ok]) => {
          expect(s === null || s.length === echoed, 'busboy got the echoed bytes only').to.equal(true);
          return s !== null && ok ? Buffer.concat(got) : null;
        });
      }
      files.push(content.then((c) => (events[at] = `file ${name} ${JSON.stringify(info.filename)} ${c === null ? 'incomplete' : c.toString('latin1')}`)));
    });
    const done = new Promise<void>((resolve) => {
      bb.once('error', (err: Error) => {
        events.push(`error ${err.message}`);
        guard?.destroy();
        resolve();
      });
      bb.once('close', () => resolve());
    });
    const chunks: Buffer[] = [];
    for (let i = 0; i < body.length; i += size) chunks.push(body.subarray(i, i + size));
    const source = Readable.from(chunks, { objectMode: false });
    if (guard) source.pipe(guard);
    else source.pipe(bb);
    await done;
    await Promise.all(files);
    return { events, diverted };
  }

  it('with busboy itself behind it, busboy reports every body exactly as without the guard: the file it diverts is the one busboy took', async () => {
    const b = 'q-b0undary';
    const part = (head: string, value: string) => `--${b}\r\n${head}\r\n\r\n${value}\r\n`;
    const field = (name: string, value: string) => part(`Content-Disposition: form-data; name="${name}"`, value);
    const file = (disposition: string, value: string, type = 'application/octet-stream') => part(`Content-Disposition: form-data; ${disposition}\r\nContent-Type: ${type}`, value);
    const bytes = `PK${'z'.repeat(3000)}\r\n--q-b0undar\r\n${'y'.repeat(100)}`;
    const end = `--${b}--\r\n`;
    const cases: [string, string, number][] = [
      ['a plain upload', field('name', 'demo') + file('name="content"; filename="demo-1.0.tar.gz"', bytes) + end, 1],
      ['the file first', file('name="content"; filename="demo-1.0.tar.gz"', bytes) + field('name', 'demo') + end, 1],
      ['an empty file', file('name="content"; filename="demo-1.0.tar.gz"', '') + end, 0],
      ['a file that starts like a boundary', file('name="content"; filename="x.whl"', `\r\n--q-b0undar${bytes}`) + end, 1],
      ['a NUL in the file name (busboy refuses the header)', field('name', 'demo') + file('name="content"; filename="nul\u0000.whl"', bytes) + end, 0],
      ['the same, cut inside the part', field('name', 'demo') + file('name="content"; filename="nul\u0000.whl"', bytes), 0],
      ['a body cut inside the file', field('name', 'demo') + file('name="content"; filename="a.whl"', bytes), 1],
      ['a file after the closing boundary', field('name', 'demo') + end + file('name="content"; filename="a.whl"', bytes), 0],
      ['octet-stream without a file name', file('name="content"', bytes), 1],
      ['filename* only', file("name=\"content\"; filename*=UTF-8''caf%C3%A9.whl", bytes), 1],
      ['a header line without a colon', field('name', 'demo') + part('Content-Disposition: form-data; name="content"; filename="a.whl"\r\nbogus', bytes) + end, 0],
      ['two content files', file('name="content"; filename="a.whl"', bytes) + file('name="content"; filename="b.whl"', 'second') + end, 1],
      ['a third file past the files limit', file('name="gpg_signature"; filename="a.asc"', 'sig') + file('name="x"; filename="x.bin"', 'x') + file('name="content"; filename="a.whl"', bytes) + end, 0],
      ['more parts than the limit allows', Array.from({ length: 8 }, (_, i) => field(`f${i}`, 'v')).join('') + file('name="content"; filename="a.whl"', bytes) + end, 0],
    ];
    for (const [what, text, expectDiverted] of cases) {
      const body = Buffer.from(text, 'latin1');
      const plain = await busboyView(body, b, 1 << 20, false);
      for (const size of [1, 7, 64, 1000, 1 << 20]) {
        const viaGuard = await busboyView(body, b, size, true);
        expect(viaGuard.events, `${what}, chunks of ${size}`).to.deep.equal(plain.events);
        expect(viaGuard.diverted, `${what}, chunks of ${size}: diverted`).to.equal(expectDiverted);
      }
    }
  });

  it('boundaryOf reads plain and quoted boundary parameters', () => {
    expect(boundaryOf('multipart/form-data; boundary=abc')).to.equal('abc');
    expect(boundaryOf('multipart/form-data; charset=utf-8; BOUNDARY="a b;c"')).to.equal('a b;c');
    expect(boundaryOf('multipart/form-data; boundary="a\\"b"')).to.equal('a"b');
    expect(boundaryOf('multipart/form-data')).to.equal(null);
    expect(boundaryOf(undefined)).to.equal(null);
  });
});

describe('sweepTempFiles: the temp files an interrupted upload left in a root', () => {
  it('removes them wherever they are in a directory of many slices, and keeps what is not theirs', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pypi-lite-sweep-'));
    try {
      // 2,500 distribution files: the temp files are read in different slices of the directory.
      await Promise.all(Array.from({ length: 2500 }, (_, i) => fsp.writeFile(path.join(dir, `p${i}-1.0-py3-none-any.whl`), '')));
      const dead = [`${TEMP_PREFIX}999999999-a.tmp`, `${TEMP_PREFIX}999999999-b.tmp`, `${TEMP_PREFIX}${process.pid}-c.tmp`, `${TEMP_PREFIX}garbage.tmp`];
      // A live process sharing the root (here: the one that started the tests) keeps its own.
      const live = `${TEMP_PREFIX}${process.ppid}-d.tmp`;
      for (const n of [...dead, live]) await fsp.writeFile(path.join(dir, n), 'partial');
      expect(await sweepTempFiles(dir)).to.equal(dead.length);
      const left = await fsp.readdir(dir);
      expect(left.filter((n) => n.startsWith(TEMP_PREFIX))).to.deep.equal([live]);
      expect(left.length).to.equal(2501);
      expect(await sweepTempFiles(path.join(dir, 'missing'))).to.equal(0);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('large uploads tell the process they are streaming (the heap tuning relaxes meanwhile)', function () {
  this.timeout(30_000);
  let root: string;
  let running: RunningServer;
  const calls = { started: 0, ended: 0 };

  before(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'pypi-lite-large-'));
    const config = makeConfig({ roots: [root], authenticate: new Set(), anonymousUploads: true });
    running = await startServer(config, pino({ level: 'silent' }), {
      onLargeUpload: () => {
        calls.started++;
        return () => calls.ended++;
      },
    });
    await running.loaded;
  });
  after(async () => {
    await running?.close();
    await fsp.rm(root, { recursive: true, force: true });
  });
  beforeEach(() => {
    calls.started = 0;
    calls.ended = 0;
  });

  const wheel = (version: string, bytes: number) => {
    const content = randomBytes(bytes);
    const filename = `large_demo-${version}-py3-none-any.whl`;
    return { filename, content, fields: twineFields('large-demo', version, filename, content) };
  };

  for (const fileFirst of [false, true]) {
    it(`once per file past ${LARGE_STREAM / 1024 / 1024} MiB, ended with its answer; never for a small file (${fileFirst ? 'file before the fields' : "twine's order"})`, async () => {
      // (Random bytes are no wheel: refused once stored and read, which is after the stream.)
      const big = wheel(`1.${Number(fileFirst)}.0`, LARGE_STREAM + 1024 * 1024);
      const answer = await post(`${running.url}/`, multipart(big.fields, { filename: big.filename, bytes: big.content }, { fileFirst }));
      expect(answer.status, answer.statusText).to.equal(400);
      expect(calls).to.deep.equal({ started: 1, ended: 1 });
      const small = wheel(`2.${Number(fileFirst)}.0`, LARGE_STREAM / 2);
      expect((await post(`${running.url}/`, multipart(small.fields, { filename: small.filename, bytes: small.content }, { fileFirst }))).status).to.equal(400);
      expect(calls, 'a small file').to.deep.equal({ started: 1, ended: 1 });
    });
  }

  it('ends it when the client goes away in the middle of the file', async () => {
    const big = wheel('3.0.0', 3 * LARGE_STREAM);
    const mp = multipart(big.fields, { filename: big.filename, bytes: big.content });
    const client = await RawClient.connect(running.port);
    await client.write(postHead('/', mp.contentType, mp.body.length));
    await client.write(mp.body.subarray(0, 2 * LARGE_STREAM));
    expect(await eventually(() => calls.started === 1, 5000), 'started').to.equal(true);
    client.socket.destroy();
    expect(await eventually(() => calls.ended === 1, 5000), 'ended').to.equal(true);
    expect(await eventually(async () => (await tempUploads(root)).length === 0, 5000), 'no temp file left').to.equal(true);
  });
});
