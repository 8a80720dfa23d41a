// Unit tests of the pieces behind upload integrity and form limits: the distribution key (which
// file names are one file), the version key, and the FormGuard's reading of multipart bodies
// however they are cut into chunks.

import { expect } from 'chai';
import { Readable, Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { distKey, parseFilename } from '../lib/catalog/filename.js';
import { versionKey } from '../lib/catalog/version.js';
import { FormGuard, boundaryOf, type FormLimits } from '../lib/upload/form-guard.js';
import { multipart } from './helpers/upload.js';

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

  it('boundaryOf reads plain and quoted boundary parameters', () => {
    expect(boundaryOf('multipart/form-data; boundary=abc')).to.equal('abc');
    expect(boundaryOf('multipart/form-data; charset=utf-8; BOUNDARY="a b;c"')).to.equal('a b;c');
    expect(boundaryOf('multipart/form-data; boundary="a\\"b"')).to.equal('a"b');
    expect(boundaryOf('multipart/form-data')).to.equal(null);
    expect(boundaryOf(undefined)).to.equal(null);
  });
});
