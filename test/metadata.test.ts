import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import nodeFs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import tarStream from 'tar-stream';
import {
  DEFAULT_LIMITS,
  extractMetadata as extractFromFile,
  extractMetadataFromBuffer as extractFromBuffer,
  extractMetadataFromBufferStreaming,
  extractMetadataSync,
} from '../lib/metadata/extract.js';
import type { ArchiveKind, ExtractLimits, ExtractResult } from '../lib/metadata/types.js';
import { parseMetadata, sdistMetadataIsStatic, type CoreMetadata } from '../lib/metadata/parse.js';

// ---------------------------------------------------------------------------
// every archive the tests extract from is recorded, to be run again through both
// implementations (in-memory and streaming) at the end: see 'both implementations agree'

interface Fixture {
  label: string;
  bytes: Buffer;
  kind: ArchiveKind;
  limits: Partial<ExtractLimits> | undefined;
}

const fixtures = new Map<string, Fixture>();

function record(label: string, bytes: Buffer, kind: ArchiveKind, limits: Partial<ExtractLimits> | undefined): void {
  const key = `${kind} ${JSON.stringify(limits ?? {})} ${bytes.length} ${zlib.crc32(bytes)}`;
  if (!fixtures.has(key)) fixtures.set(key, { label, bytes, kind, limits });
}

function extractMetadata(file: string, kind: ArchiveKind, limits?: Partial<ExtractLimits>): Promise<ExtractResult> {
  // a missing file has no bytes to compare; timeoutMs is only for the streaming implementation
  if (fs.existsSync(file) && limits?.timeoutMs === undefined) record(path.basename(file), fs.readFileSync(file), kind, limits);
  return extractFromFile(file, kind, limits);
}

function extractMetadataFromBuffer(buf: Buffer, kind: ArchiveKind, limits?: Partial<ExtractLimits>): Promise<ExtractResult> {
  record('(buffer)', buf, kind, limits);
  return extractFromBuffer(buf, kind, limits);
}

// ---------------------------------------------------------------------------
// a tiny zip writer (test-only): stored or deflated entries, with the ability
// to lie in the central directory

interface ZipSpec {
  name: string;
  data: Buffer;
  method?: 0 | 8;
  /** uncompressed size written to both headers instead of the real one */
  declaredSize?: number;
  /** CRC written to both headers instead of the real one */
  declaredCrc?: number;
  /** compression method written to the headers (data is then stored as-is) */
  declaredMethod?: number;
}

function crc32(buf: Buffer): number {
  return zlib.crc32(buf) >>> 0;
}

function makeZip(entries: ZipSpec[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const method = e.method ?? 8;
    const payload = method === 8 ? zlib.deflateRawSync(e.data) : e.data;
    const crc = e.declaredCrc ?? crc32(e.data);
    const usize = e.declaredSize ?? e.data.length;
    const writtenMethod = e.declaredMethod ?? method;

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(writtenMethod, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(0x21, 12); // 1980-01-01
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(payload.length, 18);
    local.writeUInt32LE(usize, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    locals.push(local, name, payload);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(writtenMethod, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(payload.length, 20);
    central.writeUInt32LE(usize, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt16LE(0, 30);
    central.writeUInt16LE(0, 32);
    central.writeUInt16LE(0, 34);
    central.writeUInt16LE(0, 36);
    central.writeUInt32LE(0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);

    offset += 30 + name.length + payload.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(0, 4);
  eocd.writeUInt16LE(0, 6);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  eocd.writeUInt16LE(0, 20);
  return Buffer.concat([...locals, cd, eocd]);
}

// ---------------------------------------------------------------------------
// tarballs via tar-stream's pack

interface TarSpec {
  name: string;
  data?: Buffer;
  type?: 'file' | 'directory' | 'symlink';
  linkname?: string;
}

async function makeTar(entries: TarSpec[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of pack) chunks.push(Buffer.from(c as Uint8Array));
  })();
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    await new Promise<void>((resolve, reject) => {
      pack.entry(
        { name: e.name, size: e.type === undefined || e.type === 'file' ? data.length : 0, type: e.type ?? 'file', linkname: e.linkname },
        e.type === undefined || e.type === 'file' ? data : Buffer.alloc(0),
        (err) => (err ? reject(err) : resolve()),
      );
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

async function makeTarGz(entries: TarSpec[]): Promise<Buffer> {
  return zlib.gzipSync(await makeTar(entries));
}

/** Streams `total` zero bytes through gzip -9 into `file`: memory stays small. */
async function writeGzipOfZeros(file: string, total: number): Promise<void> {
  const zero = Buffer.alloc(1 << 20);
  let left = total;
  const src = new Readable({
    read(): void {
      if (left <= 0) {
        this.push(null);
        return;
      }
      const n = Math.min(left, zero.length);
      left -= n;
      this.push(zero.subarray(0, n));
    },
  });
  await pipeline(src, zlib.createGzip({ level: 9 }), fs.createWriteStream(file));
}

// ---------------------------------------------------------------------------
// a raw tar writer (test-only): ustar, GNU and PAX headers written byte by byte, so that
// GNU long names, PAX records, the ustar prefix field and base-256 sizes can be tested

interface RawTarEntry {
  name: string;
  data?: Buffer;
  /** type flag character, '0' by default */
  type?: string;
  /** ustar prefix field */
  prefix?: string;
  linkname?: string;
  format?: 'ustar' | 'gnu';
  /** write the size field in base-256 */
  base256?: boolean;
}

function rawTarHeader(e: RawTarEntry, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(e.name, 0, 100, 'utf8');
  h.write('0000644\0', 100, 'latin1');
  h.write('0001750\0', 108, 'latin1');
  h.write('0001750\0', 116, 'latin1');
  if (e.base256) {
    h[124] = 0x80;
    let n = size;
    for (let i = 11; i > 0; i--) {
      h[124 + i] = n % 256;
      n = Math.floor(n / 256);
    }
  } else {
    h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  }
  h.write('14530501620\0', 136, 'latin1');
  h.write('        ', 148, 'latin1');
  h.write(e.type ?? '0', 156, 'latin1');
  if (e.linkname) h.write(e.linkname, 157, 100, 'utf8');
  if ((e.format ?? 'ustar') === 'gnu') h.write('ustar  \0', 257, 'latin1');
  else h.write('ustar\u000000', 257, 'latin1');
  h.write('user', 265, 'latin1');
  h.write('group', 297, 'latin1');
  if (e.prefix) h.write(e.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/** Re-computes the checksum of the header block at `at` (fuzzing: get past the checksum check). */
function fixTarChecksum(tar: Buffer, at: number): void {
  tar.write('        ', at + 148, 'latin1');
  let sum = 0;
  for (let i = at; i < at + 512; i++) sum += tar[i];
  tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148, 'latin1');
}

function paxRecords(records: Record<string, string>): Buffer {
  let out = '';
  for (const [k, v] of Object.entries(records)) {
    const body = ` ${k}=${v}\n`;
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    out += `${len}${body}`;
  }
  return Buffer.from(out, 'utf8');
}

function rawTar(entries: RawTarEntry[], trailer = 1024): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    parts.push(rawTarHeader(e, data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(trailer));
  return Buffer.concat(parts);
}

/** A GNU long-name (`L`) header followed by the entry itself (with a truncated name). */
function gnuLong(e: RawTarEntry): RawTarEntry[] {
  return [
    { name: '././@LongLink', type: 'L', format: 'gnu', data: Buffer.from(`${e.name}\0`, 'utf8') },
    { ...e, name: e.name.slice(0, 99), format: 'gnu' },
  ];
}

/** A PAX (`x`) header carrying `path=` followed by the entry itself (with a decoy name). */
function paxPath(e: RawTarEntry, decoyName = 'pax-decoy/other'): RawTarEntry[] {
  return [
    { name: 'PaxHeader/x', type: 'x', data: paxRecords({ path: e.name, mtime: '1700000000.5' }) },
    { ...e, name: decoyName },
  ];
}

// ---------------------------------------------------------------------------
// sample metadata

const WHEEL_METADATA = Buffer.from(
  [
    'Metadata-Version: 2.3',
    'Name: demo',
    'Version: 1.0',
    'Summary: A demo package',
    'Requires-Dist: requests>=2',
    '',
    'Long description.',
    '',
  ].join('\n'),
  'utf8',
);

const PKG_INFO = Buffer.from(
  ['Metadata-Version: 2.2', 'Name: pkg', 'Version: 1.0', 'Summary: the real one', ''].join('\n'),
  'utf8',
);
const DECOY_PKG_INFO = Buffer.from(
  ['Metadata-Version: 2.2', 'Name: pkg', 'Version: 1.0', 'Summary: the egg-info copy', ''].join('\n'),
  'utf8',
);

function ok(r: ExtractResult): { bytes: Buffer; entry: string } {
  if (!r.ok) throw new Error(`expected success, got error: ${r.error}`);
  return r;
}

function err(r: ExtractResult): string {
  if (r.ok) throw new Error(`expected failure, got entry ${r.entry}`);
  return r.error;
}

/**
 * Descriptors this process holds on files under `under` (the test's archives). Counting only
 * those keeps the test exact when other tests in the same process open and close sockets.
 */
function openFdCount(under: string): number | null {
  try {
    let n = 0;
    for (const fd of fs.readdirSync('/proc/self/fd')) {
      try {
        if (fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(under)) n++;
      } catch {
        /* closed meanwhile */
      }
    }
    return n;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------

describe('metadata extraction', function () {
  let dir: string;
  const file = (name: string): string => path.join(dir, name);
  const write = (name: string, data: Buffer): string => {
    fs.writeFileSync(file(name), data);
    return file(name);
  };

  let goodWheel: string;
  let goodWheelBytes: Buffer;
  let bigTarGz: string;
  let bigTarGzBytes: Buffer;

  before(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pypi-lite-metadata-'));
    goodWheelBytes = makeZip([
      { name: 'demo/__init__.py', data: Buffer.from('x = 1\n') },
      { name: 'demo-1.0.dist-info/WHEEL', data: Buffer.from('Wheel-Version: 1.0\n') },
      { name: 'demo-1.0.dist-info/METADATA', data: WHEEL_METADATA },
      { name: 'demo-1.0.dist-info/RECORD', data: Buffer.from('') },
    ]);
    goodWheel = write('demo-1.0-py3-none-any.whl', goodWheelBytes);

    // PKG-INFO only after a large other entry and an egg-info decoy
    bigTarGzBytes = await makeTarGz([
      { name: 'pkg-1.0/', type: 'directory' },
      { name: 'pkg-1.0/big.bin', data: Buffer.alloc(30 * 1024 * 1024) },
      { name: 'pkg-1.0/pkg.egg-info/PKG-INFO', data: DECOY_PKG_INFO },
      { name: 'pkg-1.0/PKG-INFO', data: PKG_INFO },
    ]);
    bigTarGz = write('pkg-1.0.tar.gz', bigTarGzBytes);
  });

  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('limits', function () {
    it('has the documented defaults', function () {
      expect(DEFAULT_LIMITS).to.deep.equal({
        maxMetadataBytes: 8 * 1024 * 1024,
        maxRatio: 200,
        maxScanBytes: 512 * 1024 * 1024,
        maxEntries: 200_000,
        timeoutMs: 10_000,
      });
    });
  });

  describe('error codes', function () {
    /** The code and message of a failure, from the file and from the buffer (both must agree). */
    const failure = async (name: string, bytes: Buffer, kind: ArchiveKind, limits?: Partial<ExtractLimits>): Promise<string> => {
      const fromFile = await extractMetadata(write(name, bytes), kind, limits);
      const fromBuffer = await extractMetadataFromBuffer(bytes, kind, limits);
      const show = (r: ExtractResult): string => (r.ok ? `ok ${r.entry}` : `${r.code} ${r.error}`);
      expect(show(fromBuffer), `${name} from a buffer`).to.equal(show(fromFile));
      return show(fromFile);
    };

    it('says why, with a code callers can test', async function () {
      const wheel = (entries: ZipSpec[]): Buffer => makeZip(entries);
      expect(await failure('none.whl', wheel([{ name: 'demo/__init__.py', data: Buffer.from('') }]), 'wheel'))
        .to.equal('NO_METADATA no .dist-info/METADATA in wheel');
      expect(await failure('two.whl', wheel([
        { name: 'a-1.0.dist-info/METADATA', data: WHEEL_METADATA },
        { name: 'b-1.0.dist-info/METADATA', data: WHEEL_METADATA },
      ]), 'wheel')).to.equal('AMBIGUOUS_METADATA two .dist-info directories');
      expect(await failure('big.whl', wheel([{ name: 'a-1.0.dist-info/METADATA', data: WHEEL_METADATA }]), 'wheel', { maxMetadataBytes: 10 }))
        .to.equal('TOO_LARGE METADATA is larger than 10 bytes');
      expect(await failure('bomb.whl', wheel([{ name: 'a-1.0.dist-info/METADATA', data: Buffer.alloc(100_000, 0x41), method: 8 }]), 'wheel'))
        .to.match(/^TOO_COMPRESSED compression ratio \d+:1 exceeds 200:1$/);
      expect(await failure('many.whl', wheel([
        { name: 'demo/a.py', data: Buffer.from('') },
        { name: 'demo/b.py', data: Buffer.from('') },
      ]), 'wheel', { maxEntries: 1 })).to.equal('TOO_MANY_ENTRIES too many entries: 2 > 1');
      expect(await failure('text.whl', Buffer.from('not a zip at all, just text'), 'wheel'))
        .to.match(/^TRUNCATED corrupt zip: End of central directory record signature not found/);
      expect(await failure('cut.whl', goodWheelBytes.subarray(0, goodWheelBytes.length - 30), 'wheel'))
        .to.match(/^TRUNCATED corrupt zip: /);
      expect(await failure('text.tar.gz', Buffer.from('not gzip either, just text'), 'tar.gz'))
        .to.match(/^CORRUPT_GZIP corrupt gzip: /);
      const tarGz = await makeTarGz([{ name: 'pkg-1.0/setup.py', data: randomBytes(64 * 1024) }, { name: 'pkg-1.0/PKG-INFO', data: PKG_INFO }]);
      expect(await failure('cut.tar.gz', tarGz.subarray(0, Math.floor(tarGz.length / 2)), 'tar.gz'))
        .to.equal('TRUNCATED corrupt gzip: unexpected end of file');
      expect(await failure('notar.tar.gz', zlib.gzipSync(Buffer.alloc(2048, 0x41)), 'tar.gz'))
        .to.match(/^CORRUPT_TAR corrupt tar: /);
      expect(await failure('empty.tar.gz', await makeTarGz([{ name: 'pkg-1.0/setup.py', data: Buffer.from('') }]), 'tar.gz'))
        .to.equal('NO_METADATA no PKG-INFO in sdist');
      expect(await failure('x.tar.bz2', Buffer.from('BZh'), 'tar.bz2')).to.equal('UNSUPPORTED_KIND bz2 not supported');
      const missing = await extractFromFile(file('missing.whl'), 'wheel');
      expect(missing.ok ? 'ok' : missing.code).to.equal('UNREADABLE');
      const slow = await extractFromFile(bigTarGz, 'tar.gz', { timeoutMs: 1 });
      expect(slow.ok ? 'ok' : slow.code).to.equal('TIMEOUT');
    });
  });

  describe('wheels', function () {
    it('returns the exact METADATA bytes and the entry name', async function () {
      const r = ok(await extractMetadata(goodWheel, 'wheel'));
      expect(r.entry).to.equal('demo-1.0.dist-info/METADATA');
      expect(r.bytes.equals(WHEEL_METADATA)).to.equal(true);
    });

    it('reads METADATA whether it is stored or deflated', async function () {
      for (const method of [0, 8] as const) {
        const p = write(`m${method}.whl`, makeZip([
          { name: 'demo-1.0.dist-info/METADATA', data: WHEEL_METADATA, method },
          { name: 'demo/__init__.py', data: Buffer.from('') },
        ]));
        const r = ok(await extractMetadata(p, 'wheel'));
        expect(r.bytes.equals(WHEEL_METADATA), `method ${method}`).to.equal(true);
      }
    });

    it('works from a buffer too', async function () {
      const r = ok(await extractMetadataFromBuffer(goodWheelBytes, 'wheel'));
      expect(r.entry).to.equal('demo-1.0.dist-info/METADATA');
      expect(r.bytes.equals(WHEEL_METADATA)).to.equal(true);
    });

    it('refuses two .dist-info directories', async function () {
      const p = write('two.whl', makeZip([
        { name: 'a-1.0.dist-info/METADATA', data: WHEEL_METADATA },
        { name: 'b-1.0.dist-info/METADATA', data: WHEEL_METADATA },
      ]));
      expect(err(await extractMetadata(p, 'wheel'))).to.equal('two .dist-info directories');
    });

    it('refuses a duplicated METADATA entry', async function () {
      const p = write('dup.whl', makeZip([
        { name: 'a-1.0.dist-info/METADATA', data: WHEEL_METADATA },
        { name: 'a-1.0.dist-info/METADATA', data: Buffer.from('Name: evil\n') },
      ]));
      expect(err(await extractMetadata(p, 'wheel'))).to.match(/^duplicate entry a-1\.0\.dist-info\/METADATA$/);
    });

    it('reports a wheel without METADATA', async function () {
      const p = write('none.whl', makeZip([
        { name: 'demo-1.0.dist-info/WHEEL', data: Buffer.from('Wheel-Version: 1.0\n') },
        { name: 'demo-1.0.dist-info/metadata', data: WHEEL_METADATA }, // wrong case
        { name: 'demo-1.0.data/METADATA', data: WHEEL_METADATA }, // not a .dist-info
      ]));
      expect(err(await extractMetadata(p, 'wheel'))).to.equal('no .dist-info/METADATA in wheel');
    });

    it('does not match METADATA in a nested directory', async function () {
      const p = write('nested.whl', makeZip([
        { name: 'demo/demo-1.0.dist-info/METADATA', data: WHEEL_METADATA },
        { name: 'demo-1.0.dist-info/sub/METADATA', data: WHEEL_METADATA },
      ]));
      expect(err(await extractMetadata(p, 'wheel'))).to.equal('no .dist-info/METADATA in wheel');
    });

    it('ignores path-traversal, absolute and backslash entry names', async function () {
      const hostile: ZipSpec[] = [
        { name: '../x.dist-info/METADATA', data: Buffer.from('Name: evil1\n') },
        { name: '/abs.dist-info/METADATA', data: Buffer.from('Name: evil2\n') },
        { name: 'C:/drive.dist-info/METADATA', data: Buffer.from('Name: evil3\n') },
        { name: 'back\\slash.dist-info\\METADATA', data: Buffer.from('Name: evil4\n') },
        { name: 'x.dist-info/../METADATA', data: Buffer.from('Name: evil5\n') },
        // two segments, but unsafe: must not be matched either
        { name: 'a\\b.dist-info/METADATA', data: Buffer.from('Name: evil6\n') },
        { name: 'C:c.dist-info/METADATA', data: Buffer.from('Name: evil7\n') },
        { name: 'd.dist-info/METADATA\0', data: Buffer.from('Name: evil8\n') },
      ];
      const only = write('trav-only.whl', makeZip(hostile));
      expect(err(await extractMetadata(only, 'wheel'))).to.equal('no .dist-info/METADATA in wheel');

      // alongside a real one they are not counted as a second .dist-info either
      const mixed = write('trav-mixed.whl', makeZip([
        ...hostile,
        { name: 'demo-1.0.dist-info/METADATA', data: WHEEL_METADATA },
      ]));
      const r = ok(await extractMetadata(mixed, 'wheel'));
      expect(r.entry).to.equal('demo-1.0.dist-info/METADATA');
      expect(r.bytes.equals(WHEEL_METADATA)).to.equal(true);
    });

    it('refuses a 50 MB METADATA by its declared size, before inflating', async function () {
      const zeros = Buffer.alloc(50 * 1024 * 1024);
      const bomb = makeZip([{ name: 'bomb-1.0.dist-info/METADATA', data: zeros }]);
      expect(bomb.length).to.be.below(200 * 1024);
      const p = write('bomb.whl', bomb);
      expect(err(await extractMetadata(p, 'wheel'))).to.equal('METADATA is larger than 8388608 bytes');

      // same declared size, but the compressed bytes are garbage: had it been
      // inflated the error would be a zlib one
      const garbage = makeZip([{ name: 'bomb-1.0.dist-info/METADATA', data: randomBytes(64 * 1024), method: 0, declaredMethod: 8, declaredSize: zeros.length }]);
      expect(err(await extractMetadataFromBuffer(garbage, 'wheel'))).to.equal('METADATA is larger than 8388608 bytes');
    });

    it('refuses an entry whose compression ratio exceeds maxRatio', async function () {
      const p = write('ratio.whl', makeZip([{ name: 'r-1.0.dist-info/METADATA', data: Buffer.alloc(4 * 1024 * 1024) }]));
      expect(err(await extractMetadata(p, 'wheel'))).to.match(/^compression ratio \d+:1 exceeds 200:1$/);
      // and with a more generous ratio the same entry is accepted
      const r = ok(await extractMetadata(p, 'wheel', { maxRatio: 10_000 }));
      expect(r.bytes.length).to.equal(4 * 1024 * 1024);
    });

    it('refuses while inflating when the central directory lies about the size', async function () {
      const zeros = Buffer.alloc(50 * 1024 * 1024);
      // declares 4 MB (under the limit, ratio ~80:1 passes) but inflates to 50 MB
      const p = write('liar.whl', makeZip([{ name: 'liar-1.0.dist-info/METADATA', data: zeros, declaredSize: 4_000_000 }]));
      const started = Date.now();
      const e = err(await extractMetadata(p, 'wheel'));
      expect(e).to.match(/too many bytes|inflates to more than/);
      expect(Date.now() - started).to.be.below(5_000);
    });

    it('refuses METADATA whose CRC-32 does not match', async function () {
      const p = write('crc.whl', makeZip([{ name: 'c-1.0.dist-info/METADATA', data: WHEEL_METADATA, declaredCrc: 0x12345678 }]));
      expect(err(await extractMetadata(p, 'wheel'))).to.equal('corrupt zip: METADATA: CRC-32 mismatch');
    });

    it('refuses an unsupported compression method', async function () {
      const p = write('bz.whl', makeZip([{ name: 'c-1.0.dist-info/METADATA', data: WHEEL_METADATA, method: 0, declaredMethod: 12 }]));
      expect(err(await extractMetadata(p, 'wheel'))).to.equal('METADATA uses unsupported compression method 12');
    });

    it('refuses a METADATA over a custom maxMetadataBytes', async function () {
      expect(err(await extractMetadata(goodWheel, 'wheel', { maxMetadataBytes: 10 }))).to.equal('METADATA is larger than 10 bytes');
    });

    it('refuses more entries than maxEntries', async function () {
      const entries: ZipSpec[] = [];
      for (let i = 0; i < 50; i++) entries.push({ name: `demo/f${i}.py`, data: Buffer.from('') });
      entries.push({ name: 'demo-1.0.dist-info/METADATA', data: WHEEL_METADATA });
      const p = write('many.whl', makeZip(entries));
      expect(err(await extractMetadata(p, 'wheel', { maxEntries: 10 }))).to.match(/^too many entries/);
      ok(await extractMetadata(p, 'wheel', { maxEntries: 100 }));
    });

    it('fails cleanly on a truncated wheel', async function () {
      const p = write('trunc.whl', goodWheelBytes.subarray(0, Math.floor(goodWheelBytes.length / 2)));
      expect(err(await extractMetadata(p, 'wheel'))).to.match(/^corrupt zip: /);
      expect(err(await extractMetadataFromBuffer(goodWheelBytes.subarray(0, goodWheelBytes.length - 30), 'wheel'))).to.match(/^corrupt zip: /);
    });

    it('fails cleanly on garbage, empty and missing files', async function () {
      const garbage = write('garbage.whl', randomBytes(64 * 1024));
      expect(err(await extractMetadata(garbage, 'wheel'))).to.match(/^corrupt zip: /);
      expect(err(await extractMetadataFromBuffer(randomBytes(1000), 'wheel'))).to.match(/^corrupt zip: /);
      const empty = write('empty.whl', Buffer.alloc(0));
      expect(err(await extractMetadata(empty, 'wheel'))).to.match(/^corrupt zip: /);
      expect(err(await extractMetadata(file('does-not-exist.whl'), 'wheel'))).to.match(/^cannot read file: .*ENOENT/);
    });

    it('fails cleanly when an entry points outside the file', async function () {
      const bytes = Buffer.from(makeZip([{ name: 'demo-1.0.dist-info/METADATA', data: WHEEL_METADATA, method: 0 }]));
      // central directory's local header offset -> far away
      const cdStart = bytes.readUInt32LE(bytes.length - 22 + 16);
      bytes.writeUInt32LE(0x7fffff00, cdStart + 42);
      expect(err(await extractMetadataFromBuffer(bytes, 'wheel'))).to.match(/^corrupt zip: /);
    });
  });

  describe('sdist and egg zips', function () {
    it('finds <top>/PKG-INFO and ignores the egg-info copy', async function () {
      const p = write('pkg-1.0.zip', makeZip([
        { name: 'pkg-1.0/pkg.egg-info/PKG-INFO', data: DECOY_PKG_INFO },
        { name: 'pkg-1.0/setup.py', data: Buffer.from('') },
        { name: 'pkg-1.0/PKG-INFO', data: PKG_INFO },
      ]));
      const r = ok(await extractMetadata(p, 'zip'));
      expect(r.entry).to.equal('pkg-1.0/PKG-INFO');
      expect(r.bytes.equals(PKG_INFO)).to.equal(true);
    });

    it('does not accept a PKG-INFO at the root or deeper than one directory', async function () {
      const p = write('bad-sdist.zip', makeZip([
        { name: 'PKG-INFO', data: DECOY_PKG_INFO },
        { name: 'pkg-1.0/src/PKG-INFO', data: DECOY_PKG_INFO },
        { name: 'pkg-1.0/pkg.egg-info/PKG-INFO', data: DECOY_PKG_INFO },
        { name: '../PKG-INFO', data: DECOY_PKG_INFO },
      ]));
      expect(err(await extractMetadata(p, 'zip'))).to.equal('no PKG-INFO in sdist zip');
    });

    it('reads EGG-INFO/PKG-INFO from an egg', async function () {
      const p = write('pkg-1.0-py3.8.egg', makeZip([
        { name: 'pkg/__init__.py', data: Buffer.from('') },
        { name: 'EGG-INFO/SOURCES.txt', data: Buffer.from('') },
        { name: 'EGG-INFO/PKG-INFO', data: PKG_INFO },
      ]));
      const r = ok(await extractMetadata(p, 'egg'));
      expect(r.entry).to.equal('EGG-INFO/PKG-INFO');
      expect(r.bytes.equals(PKG_INFO)).to.equal(true);
      const none = write('none.egg', makeZip([{ name: 'pkg/EGG-INFO/PKG-INFO', data: PKG_INFO }]));
      expect(err(await extractMetadata(none, 'egg'))).to.equal('no EGG-INFO/PKG-INFO in egg');
    });
  });

  describe('sdist tarballs', function () {
    it('finds <top>/PKG-INFO after large entries, ignoring the egg-info copy', async function () {
      const r = ok(await extractMetadata(bigTarGz, 'tar.gz'));
      expect(r.entry).to.equal('pkg-1.0/PKG-INFO');
      expect(r.bytes.equals(PKG_INFO)).to.equal(true);
      const t = ok(await extractMetadata(bigTarGz, 'tgz'));
      expect(t.bytes.equals(PKG_INFO)).to.equal(true);
    });

    it('works from a buffer too', async function () {
      const r = ok(await extractMetadataFromBuffer(bigTarGzBytes, 'tar.gz'));
      expect(r.entry).to.equal('pkg-1.0/PKG-INFO');
      expect(r.bytes.equals(PKG_INFO)).to.equal(true);
    });

    it('stops at PKG-INFO without reading the rest', async function () {
      // PKG-INFO first, then 40 MB: with a 1 MB scan limit it still succeeds
      const p = write('early.tar.gz', await makeTarGz([
        { name: 'pkg-1.0/PKG-INFO', data: PKG_INFO },
        { name: 'pkg-1.0/big.bin', data: Buffer.alloc(40 * 1024 * 1024) },
      ]));
      const r = ok(await extractMetadata(p, 'tar.gz', { maxScanBytes: 1024 * 1024 }));
      expect(r.bytes.equals(PKG_INFO)).to.equal(true);
      // the 30 MB entry of bigTarGz comes first: the same limit refuses it
      expect(err(await extractMetadata(bigTarGz, 'tar.gz', { maxScanBytes: 1024 * 1024 })))
        .to.equal('scanned more than 1048576 bytes without finding PKG-INFO');
    });

    it('accepts ./-prefixed names and ignores unsafe names and non-files', async function () {
      const p = write('dot.tar.gz', await makeTarGz([
        { name: '../PKG-INFO', data: DECOY_PKG_INFO },
        { name: '/abs/PKG-INFO', data: DECOY_PKG_INFO },
        { name: 'pkg-1.0/../PKG-INFO', data: DECOY_PKG_INFO },
        { name: 'link/PKG-INFO', type: 'symlink', linkname: '/etc/passwd' },
        { name: './pkg-1.0/PKG-INFO', data: PKG_INFO },
      ]));
      const r = ok(await extractMetadata(p, 'tar.gz'));
      expect(r.entry).to.equal('./pkg-1.0/PKG-INFO');
      expect(r.bytes.equals(PKG_INFO)).to.equal(true);
    });

    it('reports a tarball without PKG-INFO', async function () {
      const p = write('nopkg.tar.gz', await makeTarGz([
        { name: 'pkg-1.0/setup.py', data: Buffer.from('') },
        { name: 'pkg-1.0/pkg.egg-info/PKG-INFO', data: DECOY_PKG_INFO },
        { name: 'PKG-INFO', data: DECOY_PKG_INFO },
      ]));
      expect(err(await extractMetadata(p, 'tar.gz'))).to.equal('no PKG-INFO in sdist');
    });

    it('refuses a PKG-INFO over maxMetadataBytes', async function () {
      expect(err(await extractMetadata(bigTarGz, 'tar.gz', { maxMetadataBytes: 10 }))).to.equal('PKG-INFO is larger than 10 bytes');
    });

    it('refuses more entries than maxEntries', async function () {
      const entries: TarSpec[] = [];
      for (let i = 0; i < 30; i++) entries.push({ name: `pkg-1.0/f${i}.py`, data: Buffer.from('') });
      entries.push({ name: 'pkg-1.0/PKG-INFO', data: PKG_INFO });
      const p = write('many.tar.gz', await makeTarGz(entries));
      expect(err(await extractMetadata(p, 'tar.gz', { maxEntries: 10 }))).to.match(/^too many entries/);
      ok(await extractMetadata(p, 'tar.gz', { maxEntries: 100 }));
    });

    it('stops a gzip bomb at maxScanBytes', async function () {
      this.timeout(30_000);
      const p = file('bomb.tar.gz');
      await writeGzipOfZeros(p, 100 * 1024 * 1024);
      expect(fs.statSync(p).size).to.be.below(1024 * 1024);
      const started = Date.now();
      const e = err(await extractMetadata(p, 'tar.gz', { maxScanBytes: 20 * 1024 * 1024 }));
      expect(e).to.equal('scanned more than 20971520 bytes without finding PKG-INFO');
      expect(Date.now() - started).to.be.below(5_000);
    });

    it('fails cleanly on a truncated tar.gz', async function () {
      const bytes = await makeTarGz([
        { name: 'pkg-1.0/random.bin', data: randomBytes(512 * 1024) },
        { name: 'pkg-1.0/PKG-INFO', data: PKG_INFO },
      ]);
      const p = write('trunc.tar.gz', bytes.subarray(0, Math.floor(bytes.length / 2)));
      expect(err(await extractMetadata(p, 'tar.gz'))).to.equal('corrupt gzip: unexpected end of file');
      expect(err(await extractMetadataFromBuffer(bytes.subarray(0, bytes.length - 100), 'tar.gz'))).to.match(/^corrupt gzip: /);
    });

    it('fails cleanly on a truncated tar inside a valid gzip', async function () {
      const tar = await makeTar([
        { name: 'pkg-1.0/random.bin', data: randomBytes(100 * 1024) },
        { name: 'pkg-1.0/PKG-INFO', data: PKG_INFO },
      ]);
      const p = write('trunc-tar.tar.gz', zlib.gzipSync(tar.subarray(0, 50 * 1024 + 100)));
      expect(err(await extractMetadata(p, 'tar.gz'))).to.match(/^corrupt tar: /);
    });

    it('fails cleanly on garbage and missing files', async function () {
      const g = write('garbage.tar.gz', randomBytes(64 * 1024));
      expect(err(await extractMetadata(g, 'tar.gz'))).to.match(/^corrupt gzip: /);
      // valid gzip of garbage: tar-stream rejects the headers
      const gt = write('gzipped-garbage.tar.gz', zlib.gzipSync(randomBytes(64 * 1024)));
      expect(err(await extractMetadata(gt, 'tar.gz'))).to.match(/^corrupt tar: /);
      expect(err(await extractMetadata(file('missing.tar.gz'), 'tar.gz'))).to.match(/^cannot read file: .*ENOENT/);
    });

    it('reports bz2 and xz as unsupported', async function () {
      expect(err(await extractMetadata(bigTarGz, 'tar.bz2'))).to.equal('bz2 not supported');
      expect(err(await extractMetadata(bigTarGz, 'tar.xz'))).to.equal('xz not supported');
      expect(err(await extractMetadataFromBuffer(Buffer.alloc(10), 'tar.xz'))).to.equal('xz not supported');
    });
  });

  describe('timeouts and resources', function () {
    it('gives up after timeoutMs', async function () {
      expect(err(await extractMetadata(bigTarGz, 'tar.gz', { timeoutMs: 1 }))).to.equal('timed out');
      // a wheel with a long central directory
      const entries: ZipSpec[] = [];
      for (let i = 0; i < 20_000; i++) entries.push({ name: `demo/m${i}.py`, data: Buffer.from(''), method: 0 });
      entries.push({ name: 'demo-1.0.dist-info/METADATA', data: WHEEL_METADATA });
      const p = write('long.whl', makeZip(entries));
      expect(err(await extractMetadata(p, 'wheel', { timeoutMs: 1 }))).to.equal('timed out');
      // without the tiny timeout both succeed: the timeout was the only reason
      ok(await extractMetadata(bigTarGz, 'tar.gz'));
      ok(await extractMetadata(p, 'wheel'));
    });

    it('loading the metadata reader costs a process (and each hashing worker) little more than yauzl itself', function () {
      // Imported through the ESM loader, yauzl cost 6-8 MB more than required (the loader's
      // pre-parse of its 43 KB entry file): this module 7.8-9.0 MB on Node 20 and 10.2 on 22,
      // against 1.8 MB with require() (yauzl alone: 0.6-0.9 MB). On Node 24 and 26 yauzl costs
      // 3.8-5.6 MB however it is loaded. Each measured in a fresh process.
      if (process.platform !== 'linux') this.skip();
      const grownBy = (load: string): number => {
        const script = [
          "import fs from 'node:fs';",
          "import { createRequire } from 'node:module';",
          "const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;",
          'const before = rss();',
          load,
          'process.stdout.write(String(rss() - before));',
        ].join('\n');
        // Not under the coverage run's NODE_V8_COVERAGE (collecting coverage keeps more of every
        // module): node passes it on to every child unless the child's env sets it; empty is off.
        const env = { ...process.env, NODE_V8_COVERAGE: '' };
        const grown = Number(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env }));
        expect(grown, load).to.be.greaterThan(0);
        return grown / 1024 / 1024;
      };
      const reader = grownBy(`await import(${JSON.stringify(new URL('../lib/metadata/extract.js', import.meta.url).href)});`);
      const yauzlAlone = grownBy(`createRequire(${JSON.stringify(import.meta.url)})('yauzl');`);
      expect(reader - yauzlAlone, `reader ${reader.toFixed(1)} MiB, yauzl alone ${yauzlAlone.toFixed(1)} MiB`).to.be.lessThan(3);
    });

    it('closes the descriptor of a file that is no zip before the extraction resolves, however slow the close', async function () {
      // yauzl.open starts the close and calls back at once: under load the close was still queued
      // when the promise resolved (seen in CI as one descriptor too many). A close that takes
      // 100 ms makes that deterministic.
      if (openFdCount(dir) === null) this.skip();
      const notZip = write('fd-slow-close.whl', goodWheelBytes.subarray(0, 100));
      const before = openFdCount(dir);
      const realClose = nodeFs.close;
      const slowClose = (fd: number, cb?: fs.NoParamCallback): void => {
        setTimeout(() => realClose(fd, cb ?? (() => {})), 100);
      };
      nodeFs.close = slowClose as typeof nodeFs.close;
      try {
        const r = await extractMetadata(notZip, 'wheel');
        expect(r.ok).to.equal(false);
        expect(openFdCount(dir), 'descriptors open after the promise resolved').to.equal(before);
      } finally {
        nodeFs.close = realClose;
      }
    });

    it('leaks no file descriptors over many extractions', async function () {
      this.timeout(60_000);
      if (openFdCount(dir) === null) this.skip();
      const small = write('small.tar.gz', await makeTarGz([
        { name: 'pkg-1.0/a.bin', data: randomBytes(256 * 1024) },
        { name: 'pkg-1.0/PKG-INFO', data: PKG_INFO },
        { name: 'pkg-1.0/b.bin', data: randomBytes(256 * 1024) },
      ]));
      const twoDist = write('fd-two.whl', makeZip([
        { name: 'a-1.0.dist-info/METADATA', data: WHEEL_METADATA },
        { name: 'b-1.0.dist-info/METADATA', data: WHEEL_METADATA },
      ]));
      const truncated = write('fd-trunc.whl', goodWheelBytes.subarray(0, 100));
      const truncTgz = write('fd-trunc.tar.gz', fs.readFileSync(small).subarray(0, 2000));
      const jobs: Array<() => Promise<ExtractResult>> = [
        () => extractMetadata(goodWheel, 'wheel'),
        () => extractMetadata(small, 'tar.gz'),
        () => extractMetadata(twoDist, 'wheel'),
        () => extractMetadata(truncated, 'wheel'),
        () => extractMetadata(truncTgz, 'tar.gz'),
        () => extractMetadata(bigTarGz, 'tar.gz', { timeoutMs: 1 }),
        () => extractMetadata(small, 'tar.gz', { maxScanBytes: 1000 }),
        () => extractMetadata(file('nope.whl'), 'wheel'),
      ];
      // warm up (libuv may open descriptors lazily), then measure
      await Promise.all(jobs.map((j) => j()));
      const before = openFdCount(dir);
      let okCount = 0;
      for (let round = 0; round < 40; round++) {
        const results = await Promise.all(jobs.map((j) => j()));
        okCount += results.filter((r) => r.ok).length;
      }
      expect(okCount).to.equal(80);
      expect(openFdCount(dir)).to.equal(before);
      // descriptors are released before each promise resolves
      for (const j of jobs) {
        await j();
        expect(openFdCount(dir)).to.equal(before);
      }
    });

    it('still works after all the hostile archives', async function () {
      const r = ok(await extractMetadata(goodWheel, 'wheel'));
      expect(r.entry).to.equal('demo-1.0.dist-info/METADATA');
      expect(r.bytes.equals(WHEEL_METADATA)).to.equal(true);
    });
  });

  // The in-memory fast path (extractMetadataFromBuffer) must answer exactly what the streaming
  // implementation (extractMetadata on a file) answers. Runs last: it replays every archive the
  // tests above extracted from.
  describe('both implementations agree', function () {
    /** The streaming paths report a lying zip entry at the first inflate chunk past the declared
     * size; the chunk boundaries depend on how the input was cut (file reads, buffer slices). */
    const normalise = (error: string): string => error.replace(/got at least \d+$/, 'got at least N');

    /** null when they agree, else a description of the difference. */
    const compare = async (bytes: Buffer, kind: ArchiveKind, limits: Partial<ExtractLimits> | undefined): Promise<string | null> => {
      const p = file(`compare.${kind}`);
      fs.writeFileSync(p, bytes);
      const fromFile = await extractFromFile(p, kind, limits);
      const fromBuffer = await extractFromBuffer(bytes, kind, limits);
      const same = fromFile.ok && fromBuffer.ok
        ? fromFile.entry === fromBuffer.entry && fromFile.bytes.equals(fromBuffer.bytes)
        : !fromFile.ok && !fromBuffer.ok && fromFile.code === fromBuffer.code && normalise(fromFile.error) === normalise(fromBuffer.error);
      if (same) return null;
      const show = (r: ExtractResult): string => (r.ok ? `ok ${r.entry} (${r.bytes.length} bytes)` : `${r.code} ${r.error}`);
      const streamingBuffer = await extractMetadataFromBufferStreaming(bytes, kind, limits);
      return `file: ${show(fromFile)} | buffer: ${show(fromBuffer)} | buffer, streaming: ${show(streamingBuffer)}`;
    };

    it('on every archive the tests above extracted from', async function () {
      this.timeout(120_000);
      if (fixtures.size === 0) this.skip(); // run with a --grep that left out the other tests
      const problems: string[] = [];
      let decidedInMemory = 0;
      for (const f of fixtures.values()) {
        const diff = await compare(f.bytes, f.kind, f.limits);
        if (diff !== null) problems.push(`${f.label} (${f.kind}, ${JSON.stringify(f.limits ?? {})}): ${diff}`);
        if (extractMetadataSync(f.bytes, f.kind, f.limits) !== null) decidedInMemory++;
      }
      expect(problems, problems.join('\n')).to.deep.equal([]);
      expect(fixtures.size).to.be.at.least(45);
      // the fast path is the one that answered, except for the bombs, huge tarballs and scan limits
      expect(decidedInMemory, `${decidedInMemory} of ${fixtures.size}`).to.be.at.least(fixtures.size - 12);
    });

    it('on tarballs with GNU long names, PAX headers, prefixes and base-256 sizes', async function () {
      const top = `pkg-1.0-${'x'.repeat(110)}`;
      const cases: Array<{ name: string; tar: Buffer; entry: string | null; bytes?: Buffer }> = [
        { name: 'gnu long name', tar: rawTar([...gnuLong({ name: `${top}/PKG-INFO`, data: PKG_INFO })]), entry: `${top}/PKG-INFO` },
        { name: 'pax path', tar: rawTar([...paxPath({ name: `${top}/PKG-INFO`, data: PKG_INFO })]), entry: `${top}/PKG-INFO` },
        {
          name: 'pax path replaces a matching name',
          tar: rawTar([...paxPath({ name: 'pkg-1.0/sub/PKG-INFO', data: DECOY_PKG_INFO }, 'pkg-1.0/PKG-INFO'), { name: 'pkg-1.0/PKG-INFO', data: PKG_INFO }]),
          entry: 'pkg-1.0/PKG-INFO',
        },
        {
          name: 'global pax path applies only with a per-entry pax header',
          tar: rawTar([
            { name: 'PaxHeader/g', type: 'g', data: paxRecords({ path: 'pkg-1.0/PKG-INFO' }) },
            { name: 'pkg-1.0/setup.py', data: Buffer.from('print(1)\n') },
            { name: 'PaxHeader/x', type: 'x', data: paxRecords({ mtime: '1' }) },
            { name: 'pkg-1.0/other.txt', data: PKG_INFO },
          ]),
          entry: 'pkg-1.0/PKG-INFO',
        },
        {
          name: 'pax size overrides the header size',
          tar: rawTar([{ name: 'PaxHeader/x', type: 'x', data: paxRecords({ size: '5' }) }, { name: 'pkg-1.0/PKG-INFO', data: PKG_INFO }]),
          entry: 'pkg-1.0/PKG-INFO',
          bytes: PKG_INFO.subarray(0, 5),
        },
        { name: 'ustar prefix', tar: rawTar([{ name: 'PKG-INFO', prefix: 'pkg-1.0', data: PKG_INFO }]), entry: 'pkg-1.0/PKG-INFO' },
        { name: 'ustar prefix, too deep', tar: rawTar([{ name: 'x/PKG-INFO', prefix: 'pkg-1.0', data: PKG_INFO }]), entry: null },
        {
          name: 'base-256 sizes',
          tar: rawTar([{ name: 'pkg-1.0/blob', data: randomBytes(3000), base256: true }, { name: 'pkg-1.0/PKG-INFO', data: PKG_INFO, base256: true }]),
          entry: 'pkg-1.0/PKG-INFO',
        },
        {
          name: 'gnu format, symlink and hard link named PKG-INFO',
          tar: rawTar([
            { name: 'pkg-1.0/PKG-INFO', type: '2', linkname: '/etc/passwd', format: 'gnu' },
            { name: 'pkg-1.0/PKG-INFO', type: '1', linkname: 'pkg-1.0/x', format: 'gnu' },
            { name: 'pkg-1.0/PKG-INFO', type: '7', data: PKG_INFO, format: 'gnu' },
          ]),
          entry: 'pkg-1.0/PKG-INFO',
        },
        { name: 'unknown type flag counts as a file', tar: rawTar([{ name: './pkg-1.0/PKG-INFO', type: 'Z', data: PKG_INFO }]), entry: './pkg-1.0/PKG-INFO' },
        { name: 'no end-of-archive blocks', tar: rawTar([{ name: 'pkg-1.0/setup.py', data: Buffer.from('x') }], 0), entry: null },
        { name: 'a partial block at the end', tar: rawTar([{ name: 'pkg-1.0/setup.py', data: Buffer.from('x') }], 300), entry: null },
        { name: 'garbage after the end blocks', tar: Buffer.concat([rawTar([{ name: 'pkg-1.0/a', data: Buffer.from('x') }]), randomBytes(512)]), entry: null },
        { name: 'empty tar', tar: Buffer.alloc(0), entry: null },
        { name: 'zero blocks only', tar: Buffer.alloc(10 * 512), entry: null },
      ];
      const problems: string[] = [];
      for (const c of cases) {
        for (const [label, bytes] of [['', zlib.gzipSync(c.tar)], [' (truncated gzip)', zlib.gzipSync(c.tar).subarray(0, -6)]] as const) {
          const diff = await compare(bytes, 'tar.gz', undefined);
          if (diff !== null) problems.push(`${c.name}${label}: ${diff}`);
          expect(extractMetadataSync(bytes, 'tar.gz'), `${c.name}${label}: decided in memory`).to.not.equal(null);
        }
        const r = await extractMetadataFromBuffer(zlib.gzipSync(c.tar), 'tar.gz');
        if (c.entry === null) expect(r.ok, `${c.name}: ${JSON.stringify(r)}`).to.equal(false);
        else expect(r.ok && r.entry === c.entry && r.bytes.equals(c.bytes ?? PKG_INFO), `${c.name}: ${r.ok ? r.entry : r.error}`).to.equal(true);
      }
      expect(problems, problems.join('\n')).to.deep.equal([]);
    });

    it('on zips with comments, CP437 names, extra fields and lies', async function () {
      const withComment = (zip: Buffer, comment: Buffer, declared = comment.length): Buffer => {
        const out = Buffer.concat([zip, comment]);
        out.writeUInt16LE(declared, zip.length - 22 + 20);
        return out;
      };
      const base = makeZip([
        { name: 'demo/__init__.py', data: Buffer.from('x = 1\n') },
        { name: 'demo-1.0.dist-info/METADATA', data: WHEEL_METADATA },
      ]);
      const eocdSig = Buffer.from([0x50, 0x4b, 0x05, 0x06]);
      /** clears the UTF-8 flag of every entry: names are then CP437 */
      const cp437 = (zip: Buffer): Buffer => {
        const out = Buffer.from(zip);
        for (let i = 0; i + 4 <= out.length; i++) {
          const sig = out.readUInt32LE(i);
          if (sig === 0x04034b50) out.writeUInt16LE(0, i + 6);
          if (sig === 0x02014b50) out.writeUInt16LE(0, i + 8);
        }
        return out;
      };
      const setCentral = (zip: Buffer, entryIndex: number, offset: number, value: number, bytes: 2 | 4): Buffer => {
        const out = Buffer.from(zip);
        let at = out.readUInt32LE(out.length - 22 + 16);
        for (let i = 0; i < entryIndex; i++) at += 46 + out.readUInt16LE(at + 28) + out.readUInt16LE(at + 30) + out.readUInt16LE(at + 32);
        if (bytes === 2) out.writeUInt16LE(value, at + offset);
        else out.writeUInt32LE(value, at + offset);
        return out;
      };
      const cases: Array<[string, Buffer, ArchiveKind]> = [
        ['comment', withComment(base, Buffer.from('a zip comment')), 'wheel'],
        ['comment with an EOCD signature', withComment(base, Buffer.concat([Buffer.from('x'), eocdSig, Buffer.alloc(30)])), 'wheel'],
        ['comment length lies', withComment(base, Buffer.from('a zip comment'), 3), 'wheel'],
        ['64 KiB comment', withComment(base, Buffer.alloc(0xffff, 0x41)), 'wheel'],
        ['CP437 names', cp437(makeZip([{ name: 'd\u00e9mo-1.0.dist-info/METADATA', data: WHEEL_METADATA }])), 'wheel'],
        ['CP437 backslash name', cp437(makeZip([{ name: 'x.dist-info\\METADATA', data: WHEEL_METADATA }])), 'wheel'],
        ['multi-disk', (() => { const z = Buffer.from(base); z.writeUInt16LE(1, z.length - 22 + 4); return z; })(), 'wheel'],
        ['entry count larger than the directory', (() => { const z = Buffer.from(base); z.writeUInt16LE(3, z.length - 22 + 10); return z; })(), 'wheel'],
        ['strong encryption flag', setCentral(base, 0, 8, 0x0840, 2), 'wheel'],
        ['encrypted METADATA', setCentral(base, 1, 8, 0x0801, 2), 'wheel'],
        ['bad extra field length', setCentral(base, 0, 30, 5, 2), 'wheel'],
        ['stored size mismatch', setCentral(makeZip([{ name: 'a/b', data: Buffer.from('abc'), method: 0 }, { name: 'demo-1.0.dist-info/METADATA', data: WHEEL_METADATA }]), 0, 24, 2, 4), 'wheel'],
        ['METADATA declared shorter', setCentral(base, 1, 24, WHEEL_METADATA.length - 7, 4), 'wheel'],
        ['METADATA declared longer', setCentral(base, 1, 24, WHEEL_METADATA.length + 7, 4), 'wheel'],
        ['METADATA compressed size too short', setCentral(base, 1, 20, 20, 4), 'wheel'],
        ['local header offset off by one', setCentral(base, 1, 42, base.readUInt32LE(base.length - 22 + 16) > 0 ? 1 : 0, 4), 'wheel'],
        ['sdist zip, first PKG-INFO wins', makeZip([{ name: 'pkg-1.0/PKG-INFO', data: PKG_INFO }, { name: 'pkg-1.0/PKG-INFO', data: DECOY_PKG_INFO }]), 'zip'],
        ['egg', makeZip([{ name: 'EGG-INFO/PKG-INFO', data: PKG_INFO, method: 0 }]), 'egg'],
        ['empty zip', makeZip([]), 'wheel'],
      ];
      const problems: string[] = [];
      for (const [name, bytes, kind] of cases) {
        const diff = await compare(bytes, kind, undefined);
        if (diff !== null) problems.push(`${name}: ${diff}`);
        expect(extractMetadataSync(bytes, kind), `${name}: decided in memory`).to.not.equal(null);
      }
      expect(problems, problems.join('\n')).to.deep.equal([]);
      expect(ok(await extractMetadataFromBuffer(cases[4][1], 'wheel')).entry).to.equal('d\u251c\u2310mo-1.0.dist-info/METADATA');
    });

    it('falls back to the streaming implementation for ZIP64 and big tarballs', async function () {
      // a ZIP64 locator in front of the end-of-central-directory record
      const zip = makeZip([{ name: 'demo-1.0.dist-info/METADATA', data: WHEEL_METADATA }]);
      const locator = Buffer.alloc(20);
      locator.writeUInt32LE(0x07064b50, 0);
      locator.writeUInt32LE(0x7fffff00, 8);
      const zip64 = Buffer.concat([zip.subarray(0, zip.length - 22), locator, zip.subarray(zip.length - 22)]);
      expect(extractMetadataSync(zip64, 'wheel')).to.equal(null);
      expect(await compare(zip64, 'wheel', undefined)).to.equal(null);
      expect(extractMetadataSync(bigTarGzBytes, 'tar.gz')).to.equal(null);
      expect(ok(await extractMetadataFromBuffer(bigTarGzBytes, 'tar.gz')).bytes.equals(PKG_INFO)).to.equal(true);
    });

    it('on randomly damaged archives (mutated bytes, truncation)', async function () {
      this.timeout(300_000);
      const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
      const rounds = Number(process.env.FUZZ_ROUNDS ?? 1000);
      let state = seed >>> 0;
      const rand = (): number => {
        // mulberry32
        state = (state + 0x6d2b79f5) >>> 0;
        let t = state;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
      const int = (n: number): number => Math.floor(rand() * n);
      const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];

      const wheels: Buffer[] = [
        goodWheelBytes,
        makeZip([
          { name: 'demo-1.0.dist-info/METADATA', data: WHEEL_METADATA, method: 0 },
          { name: 'demo/__init__.py', data: Buffer.from('') },
          { name: 'demo-1.0.dist-info/RECORD', data: Buffer.from('demo/__init__.py,,\n') },
        ]),
        makeZip([
          { name: 'demo/big.py', data: Buffer.from('print("hello")\n'.repeat(3000)) },
          { name: 'demo-1.0.dist-info/METADATA', data: Buffer.concat([WHEEL_METADATA, randomBytes(2000), Buffer.alloc(40_000)]) },
          { name: 'other-1.0.dist-info/WHEEL', data: Buffer.from('Wheel-Version: 1.0\n') },
        ]),
      ];
      const zips: Array<[Buffer, ArchiveKind]> = [
        ...wheels.map((w): [Buffer, ArchiveKind] => [w, 'wheel']),
        [makeZip([{ name: 'pkg-1.0/pkg.egg-info/PKG-INFO', data: DECOY_PKG_INFO }, { name: 'pkg-1.0/PKG-INFO', data: PKG_INFO }]), 'zip'],
        [makeZip([{ name: 'EGG-INFO/PKG-INFO', data: PKG_INFO, method: 0 }, { name: 'pkg/__init__.py', data: Buffer.from('') }]), 'egg'],
      ];
      const top = `pkg-1.0-${'y'.repeat(100)}`;
      const tars: Buffer[] = [
        await makeTar([
          { name: 'pkg-1.0/', type: 'directory' },
          { name: 'pkg-1.0/setup.py', data: Buffer.from('from setuptools import setup\nsetup()\n') },
          { name: 'pkg-1.0/pkg.egg-info/PKG-INFO', data: DECOY_PKG_INFO },
          { name: 'pkg-1.0/PKG-INFO', data: PKG_INFO },
        ]),
        await makeTar([
          { name: './pkg-1.0/PKG-INFO', data: PKG_INFO },
          { name: './pkg-1.0/data.bin', data: randomBytes(20_000) },
          { name: 'link', type: 'symlink', linkname: 'pkg-1.0/PKG-INFO' },
        ]),
        rawTar([
          { name: 'PaxHeader/g', type: 'g', data: paxRecords({ comment: 'global' }) },
          ...gnuLong({ name: `${top}/src/module.py`, data: Buffer.from('x = 1\n'.repeat(200)) }),
          ...paxPath({ name: `${top}/PKG-INFO`, data: PKG_INFO }),
          { name: 'PKG-INFO', prefix: 'other-1.0', data: DECOY_PKG_INFO, base256: true },
        ]),
      ];
      /** header block offsets of a tar (for checksum-preserving mutations) */
      const headerOffsets = (tar: Buffer): number[] => {
        const out: number[] = [];
        for (let at = 0; at + 512 <= tar.length;) {
          const block = tar.subarray(at, at + 512);
          if (block.every((b) => b === 0)) break;
          out.push(at);
          const size = block[124] === 0x80 ? block.readUInt32BE(124 + 8) : parseInt(block.toString('latin1', 124, 136), 8) || 0;
          at += 512 + Math.ceil(size / 512) * 512;
        }
        return out;
      };
      const interesting = [0, 1, 0x7f, 0x80, 0xff, 0x30, 0x35, 0x20, 0x2f, 0x2e, 0x4c, 0x78, 0x67];
      const mutate = (buf: Buffer, count: number, at?: () => number): Buffer => {
        const out = Buffer.from(buf);
        for (let i = 0; i < count; i++) {
          const pos = at ? at() : int(out.length);
          if (pos >= 0 && pos < out.length) out[pos] = rand() < 0.5 ? int(256) : pick(interesting);
        }
        return out;
      };
      const truncate = (buf: Buffer): Buffer => buf.subarray(0, int(buf.length + 1));

      const problems: string[] = [];
      let inMemory = 0;
      const limits: Partial<ExtractLimits> = { timeoutMs: 5_000 };
      for (let round = 0; round < rounds && problems.length < 5; round++) {
        let bytes: Buffer;
        let kind: ArchiveKind;
        let how: string;
        if (round % 2 === 0) {
          const [zip, k] = pick(zips);
          kind = k;
          const mode = int(4);
          const tail = (): number => zip.length - 1 - int(Math.min(zip.length, 160));
          if (mode === 0) [bytes, how] = [mutate(zip, 1 + int(4)), 'mutated'];
          else if (mode === 1) [bytes, how] = [mutate(zip, 1 + int(3), tail), 'mutated directory'];
          else if (mode === 2) [bytes, how] = [truncate(zip), 'truncated'];
          else [bytes, how] = [truncate(mutate(zip, 1 + int(2))), 'mutated and truncated'];
        } else {
          const tar = pick(tars);
          kind = pick(['tar.gz', 'tgz'] as const);
          const mode = int(5);
          if (mode === 0) [bytes, how] = [mutate(zlib.gzipSync(tar), 1 + int(3)), 'gzip mutated'];
          else if (mode === 1) [bytes, how] = [truncate(zlib.gzipSync(tar)), 'gzip truncated'];
          else if (mode === 2) [bytes, how] = [zlib.gzipSync(truncate(tar)), 'tar truncated'];
          else {
            // header fields mutated, checksum fixed: gets past tar-stream's checksum check
            const out = Buffer.from(tar);
            const heads = headerOffsets(out);
            const head = pick(heads);
            const field = pick([[0, 100], [124, 12], [156, 1], [257, 8], [345, 155], [512, 64]] as const);
            for (let i = 0, n = 1 + int(3); i < n; i++) {
              const pos = head + field[0] + int(field[1]);
              if (pos < out.length) out[pos] = rand() < 0.5 ? int(256) : pick(interesting);
            }
            if (field[0] < 512) fixTarChecksum(out, head);
            const mutated = mode === 4 ? truncate(out) : out;
            [bytes, how] = [zlib.gzipSync(mutated), mode === 4 ? 'tar header mutated and truncated' : 'tar header mutated'];
          }
        }
        const diff = await compare(bytes, kind, limits);
        if (extractMetadataSync(bytes, kind, limits) !== null) inMemory++;
        if (diff !== null) {
          problems.push(`round ${round} (${how}, ${kind}): ${diff}`);
        }
      }
      expect(problems, `FUZZ_SEED=${seed}\n${problems.join('\n')}`).to.deep.equal([]);
      // most damaged archives are still decided by the fast path
      expect(inMemory, `decided in memory: ${inMemory} of ${rounds}`).to.be.above(rounds / 2);
      if (process.env.FUZZ_VERBOSE) console.log(`      seed ${seed}: ${inMemory} of ${rounds} decided in memory`);
    });
  });
});

// ---------------------------------------------------------------------------

describe('metadata parsing', function () {
  const HATCHLING = [
    'Metadata-Version: 2.3',
    'Name: démo-pkg',
    'Version: 1.2.3',
    'Summary: A démo package',
    'Project-URL: Documentation, https://example.org/docs',
    'Project-URL: Source, https://github.com/example/demo',
    'Author-email: Jürgen Müller <jurgen@example.org>',
    'License-Expression: MIT',
    'License-File: LICENSE',
    'Classifier: Programming Language :: Python :: 3',
    'Classifier: License :: OSI Approved :: MIT License',
    'Classifier: Operating System :: OS Independent',
    'Requires-Python: >=3.8',
    'Provides-Extra: test',
    'Requires-Dist: requests>=2',
    'Requires-Dist: pytest>=7; extra == "test"',
    'Description-Content-Type: text/markdown',
    '',
    '# Démo',
    '',
    'Some *markdown* text.',
    '',
    '    indented code',
    '',
  ].join('\n');
  const HATCHLING_BODY = '# Démo\n\nSome *markdown* text.\n\n    indented code\n';

  const SETUPTOOLS = [
    'Metadata-Version: 1.1',
    'Name: oldpkg',
    'Version: 0.1',
    'Summary: An old-style package',
    'Home-page: https://example.com/oldpkg',
    'Author: A. Person',
    'Author-email: a@example.com',
    'Maintainer: B. Person',
    'Maintainer-email: b@example.com',
    'License: MIT License',
    '        ',
    '        Copyright (c) 2020 A. Person',
    'Download-URL: https://example.com/oldpkg-0.1.tar.gz',
    'Description: Old Package',
    '        ===========',
    '        ',
    '        Usage::',
    '        ',
    '            import oldpkg',
    '        ',
    'Keywords: one two three',
    'Platform: Linux',
    'Platform: Windows',
    'Classifier: Development Status :: 3 - Alpha',
    'Classifier: Programming Language :: Python :: 2.7',
    '',
  ].join('\n');

  it('parses hatchling-style metadata with a body description', function () {
    const md = parseMetadata(Buffer.from(HATCHLING, 'utf8'));
    expect(md.metadataVersion).to.equal('2.3');
    expect(md.name).to.equal('démo-pkg');
    expect(md.version).to.equal('1.2.3');
    expect(md.summary).to.equal('A démo package');
    expect(md.authorEmail).to.equal('Jürgen Müller <jurgen@example.org>');
    expect(md.licenseExpression).to.equal('MIT');
    expect(md.license).to.equal(null);
    expect(md.requiresPython).to.equal('>=3.8');
    expect(md.requiresDist).to.deep.equal(['requests>=2', 'pytest>=7; extra == "test"']);
    expect(md.providesExtra).to.deep.equal(['test']);
    expect(md.classifiers).to.deep.equal([
      'Programming Language :: Python :: 3',
      'License :: OSI Approved :: MIT License',
      'Operating System :: OS Independent',
    ]);
    expect(md.projectUrls).to.deep.equal({
      Documentation: 'https://example.org/docs',
      Source: 'https://github.com/example/demo',
    });
    expect(md.descriptionContentType).to.equal('text/markdown');
    expect(md.description).to.equal(HATCHLING_BODY);
    expect(md.dynamic).to.deep.equal([]);
    expect(md.headers['license-file']).to.deep.equal(['LICENSE']);
    expect(md.headers['classifier']).to.have.length(3);
    expect(Object.keys(md.headers)[0]).to.equal('metadata-version');
    expect(md.homePage).to.equal(null);
  });

  it('parses setuptools-style metadata with an indented Description header', function () {
    const md = parseMetadata(Buffer.from(SETUPTOOLS, 'utf8'));
    expect(md.metadataVersion).to.equal('1.1');
    expect(md.name).to.equal('oldpkg');
    expect(md.homePage).to.equal('https://example.com/oldpkg');
    expect(md.downloadUrl).to.equal('https://example.com/oldpkg-0.1.tar.gz');
    expect(md.author).to.equal('A. Person');
    expect(md.maintainer).to.equal('B. Person');
    expect(md.maintainerEmail).to.equal('b@example.com');
    expect(md.keywords).to.equal('one two three');
    expect(md.platforms).to.deep.equal(['Linux', 'Windows']);
    expect(md.license).to.equal('MIT License\n\nCopyright (c) 2020 A. Person');
    expect(md.description).to.equal('Old Package\n===========\n\nUsage::\n\n    import oldpkg');
    expect(md.classifiers).to.have.length(2);
    expect(md.headers['description']).to.have.length(1);
    expect(md.headers['description'][0].startsWith('Old Package\n        ===')).to.equal(true);
  });

  it("de-indents the spec's '|' continuation form", function () {
    const text = [
      'Metadata-Version: 1.2',
      'Name: math',
      'Version: 1',
      'Description: This project provides powerful math functions',
      '       |For example, you can use `sum()` to sum numbers:',
      '       |',
      '       |Example::',
      '       |',
      '       |    >>> sum(1, 2)',
      '       |    3',
      '       |',
      '',
    ].join('\n');
    const md = parseMetadata(Buffer.from(text));
    expect(md.description).to.equal(
      'This project provides powerful math functions\nFor example, you can use `sum()` to sum numbers:\n\nExample::\n\n    >>> sum(1, 2)\n    3',
    );
    const eight = text.replace(/^ {7}\|/gm, '        |');
    expect(parseMetadata(Buffer.from(eight)).description).to.equal(md.description);
  });

  it('handles CRLF exactly like LF', function () {
    const lf = parseMetadata(Buffer.from(HATCHLING, 'utf8'));
    const crlf = parseMetadata(Buffer.from(HATCHLING.replace(/\n/g, '\r\n'), 'utf8'));
    expect(crlf).to.deep.equal(lf);
    const st = parseMetadata(Buffer.from(SETUPTOOLS.replace(/\n/g, '\r\n'), 'utf8'));
    expect(st.description).to.equal('Old Package\n===========\n\nUsage::\n\n    import oldpkg');
    expect(st.license).to.equal('MIT License\n\nCopyright (c) 2020 A. Person');
  });

  it('unfolds folded headers', function () {
    const md = parseMetadata(Buffer.from([
      'Metadata-Version: 2.1',
      'Name: folded',
      'Version: 2.0',
      'Summary: a summary that was',
      '   folded over',
      '\ttwo lines',
      'Requires-Dist: foo>=1;',
      '    python_version < "3.8"',
      'Keywords: a,b,',
      ' c',
      '',
    ].join('\r\n')));
    expect(md.summary).to.equal('a summary that was folded over two lines');
    expect(md.requiresDist).to.deep.equal(['foo>=1; python_version < "3.8"']);
    expect(md.keywords).to.equal('a,b, c');
    expect(md.headers['summary']).to.deep.equal(['a summary that was\n   folded over\n\ttwo lines']);
  });

  it('keeps repeated Classifier / Requires-Dist / Project-URL in order', function () {
    const lines = ['Metadata-Version: 2.1', 'Name: rep', 'Version: 1'];
    for (let i = 0; i < 20; i++) {
      lines.push(`Classifier: C${i}`, `Requires-Dist: dep${i}`, `Project-URL: Label ${i}, https://example.org/${i}`);
    }
    lines.push('Project-URL: Label 3, https://ignored.example.org', 'Project-URL: no comma here', '');
    const md = parseMetadata(Buffer.from(lines.join('\n')));
    expect(md.classifiers).to.deep.equal(Array.from({ length: 20 }, (_, i) => `C${i}`));
    expect(md.requiresDist).to.deep.equal(Array.from({ length: 20 }, (_, i) => `dep${i}`));
    expect(Object.keys(md.projectUrls)).to.have.length(20);
    expect(md.projectUrls['Label 3']).to.equal('https://example.org/3');
    expect(md.headers['project-url']).to.have.length(22);
    expect(md.description).to.equal(null);
  });

  it('decodes UTF-8 and replaces invalid bytes', function () {
    const md = parseMetadata(Buffer.concat([
      Buffer.from('\ufeffMetadata-Version: 2.1\nName: caf', 'utf8'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('\nAuthor: 山田太郎\nVersion: 1\n', 'utf8'),
    ]));
    expect(md.metadataVersion).to.equal('2.1');
    expect(md.name).to.equal('caf\ufffd\ufffd');
    expect(md.author).to.equal('山田太郎');
    expect(md.version).to.equal('1');
  });

  it('treats the body as the description and prefers it over the header', function () {
    const md = parseMetadata(Buffer.from('Metadata-Version: 2.1\nName: x\nDescription: header text\n\nbody text\n'));
    expect(md.description).to.equal('body text\n');
    const none = parseMetadata(Buffer.from('Metadata-Version: 2.1\nName: x\nDescription: header text\n\n   \n'));
    expect(none.description).to.equal('header text');
  });

  it('starts the body at the first non-header line', function () {
    const md = parseMetadata(Buffer.from('Name: x\nVersion: 1\nthis is not a header\nmore'));
    expect(md.version).to.equal('1');
    expect(md.description).to.equal('this is not a header\nmore');
  });

  it('is safe against prototype keys', function () {
    const md = parseMetadata(Buffer.from('Name: x\n__proto__: polluted\nProject-URL: __proto__, https://evil.example\n'));
    expect(Object.getPrototypeOf(md.headers)).to.equal(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(md.headers, '__proto__')?.value).to.deep.equal(['polluted']);
    expect(Object.getOwnPropertyDescriptor(md.projectUrls, '__proto__')?.value).to.equal('https://evil.example');
    expect(Object.getPrototypeOf(md.projectUrls)).to.equal(Object.prototype);
  });

  it('handles a huge folded header without blowing the stack', function () {
    const lines = ['Metadata-Version: 2.1', 'Name: huge', 'Version: 1', 'Description: start'];
    for (let i = 0; i < 300_000; i++) lines.push(`        line ${i}`);
    const md = parseMetadata(Buffer.from(`${lines.join('\n')}\n`));
    expect(md.name).to.equal('huge');
    const desc = md.description ?? '';
    expect(desc.startsWith('start\nline 0\nline 1\n')).to.equal(true);
    expect(desc.endsWith('\nline 299999')).to.equal(true);
  });

  it('never throws, on empty or random input', function () {
    const empty = parseMetadata(Buffer.alloc(0));
    expect(empty.name).to.equal(null);
    expect(empty.requiresDist).to.deep.equal([]);
    expect(empty.headers).to.deep.equal({});
    for (let i = 0; i < 300; i++) {
      const md = parseMetadata(randomBytes(1 + (i * 37) % 2000));
      expect(md.requiresDist).to.be.an('array');
    }
  });

  describe('sdistMetadataIsStatic', function () {
    const md = (text: string): CoreMetadata => parseMetadata(Buffer.from(`${text}\nName: x\nVersion: 1\n`));
    it('is false before Metadata-Version 2.2', function () {
      expect(sdistMetadataIsStatic(md('Metadata-Version: 2.1'))).to.equal(false);
      expect(sdistMetadataIsStatic(md('Metadata-Version: 1.0'))).to.equal(false);
      expect(sdistMetadataIsStatic(md('Summary: no version at all'))).to.equal(false);
      expect(sdistMetadataIsStatic(md('Metadata-Version: two'))).to.equal(false);
    });
    it('is true from 2.2 without relevant Dynamic fields', function () {
      expect(sdistMetadataIsStatic(md('Metadata-Version: 2.2'))).to.equal(true);
      expect(sdistMetadataIsStatic(md('Metadata-Version: 2.4'))).to.equal(true);
      expect(sdistMetadataIsStatic(md('Metadata-Version: 2.2\nDynamic: Description'))).to.equal(true);
      expect(sdistMetadataIsStatic(md('Metadata-Version: 2.2\nDynamic: License\nDynamic: Classifier'))).to.equal(true);
    });
    it('compares versions numerically', function () {
      expect(sdistMetadataIsStatic(md('Metadata-Version: 2.10'))).to.equal(true);
      expect(sdistMetadataIsStatic(md('Metadata-Version: 3.0'))).to.equal(true);
      expect(sdistMetadataIsStatic(md('Metadata-Version: 2.1.9'))).to.equal(false);
    });
    it('is false when a field pip needs is Dynamic', function () {
      expect(sdistMetadataIsStatic(md('Metadata-Version: 2.2\nDynamic: Requires-Dist'))).to.equal(false);
      expect(sdistMetadataIsStatic(md('Metadata-Version: 2.2\nDynamic: requires-python'))).to.equal(false);
      expect(sdistMetadataIsStatic(md('Metadata-Version: 2.4\nDynamic: Description\nDynamic: Provides-Extra'))).to.equal(false);
      expect(sdistMetadataIsStatic(md('Metadata-Version: 2.2\nDynamic: Version'))).to.equal(false);
      expect(parseMetadata(Buffer.from('Metadata-Version: 2.2\nDynamic: Requires-Dist\n')).dynamic).to.deep.equal(['requires-dist']);
    });
  });
});
