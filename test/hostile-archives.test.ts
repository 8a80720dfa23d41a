// A real server on a package directory full of hostile archives (all made here, at run time):
// zip and gzip bombs, path traversal in entry names, missing or duplicated metadata, truncated
// and garbage files, a symbolic link out of the root. The server must start, stay responsive,
// advertise metadata for none of them (while a good wheel next to them keeps its metadata),
// write nothing outside the root, and keep its memory bounded.

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as zlib from 'node:zlib';
import { listFiles, metadataText, python, wheelMetadata, writeTarGz, writeWheel } from './helpers/archives.js';
import { JSON_V1, anchors, sha256, type ProjectJson } from './helpers/http.js';
import { EXAMPLE, spawnServer, tempDir, type Spawned } from './helpers/server.js';

// ---------------------------------------------------------------------------
// a raw zip writer that can lie about sizes and names

interface RawEntry {
  name: string;
  /** 0 = stored, 8 = deflate; `data` is already compressed for 8 */
  method: 0 | 8;
  data: Buffer;
  crc: number;
  /** uncompressed size written to both headers */
  size: number;
}

function buildZip(entries: RawEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6);
    local.writeUInt16LE(e.method, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(0x21, 12);
    local.writeUInt32LE(e.crc >>> 0, 14);
    local.writeUInt32LE(e.data.length, 18);
    local.writeUInt32LE(e.size, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    locals.push(local, name, e.data);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(e.method, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(e.crc >>> 0, 16);
    central.writeUInt32LE(e.data.length, 20);
    central.writeUInt32LE(e.size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += 30 + name.length + e.data.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

/** An honest deflated entry. */
function entry(name: string, content: string | Buffer): RawEntry {
  const data = Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8');
  return { name, method: 8, data: zlib.deflateRawSync(data), crc: zlib.crc32(data), size: data.length };
}

const MB = 1024 * 1024;

/** A raw deflate stream of `mb` MiB of zeros (~1 KiB per MiB), made without inflating anything. */
function deflatedZeros(mb: number): Buffer {
  const chunk = zlib.deflateRawSync(Buffer.alloc(MB), { level: 9, finishFlush: zlib.constants.Z_FULL_FLUSH });
  return Buffer.concat([...Array<Buffer>(mb).fill(chunk), Buffer.from([0x03, 0x00])]);
}

function crcOfZeros(mb: number): number {
  const zeros = Buffer.alloc(MB);
  let crc = 0;
  for (let i = 0; i < mb; i++) crc = zlib.crc32(zeros, crc);
  return crc;
}

/** METADATA that would be perfectly fine if it were where it belongs. */
const niceMetadata = (name: string): string =>
  metadataText([['Metadata-Version', '2.1'], ['Name', name], ['Version', '1.0'], ['Summary', 'looks innocent']]);

function wheelFiles(name: string, meta: RawEntry[]): RawEntry[] {
  return [entry(`${name}/__init__.py`, ''), ...meta, entry(`${name}-1.0.dist-info/WHEEL`, 'Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n')];
}

// ---------------------------------------------------------------------------

interface Hostile {
  file: string;
  project: string;
  /** true: must be listed (without metadata); false: may also be left out of the index */
  mustList: boolean;
}

describe('hostile archives in a package directory', function () {
  this.timeout(120_000);
  let sandbox: string;
  let root: string;
  let server: Spawned | undefined;
  let token: string;
  let rootBefore: string[];
  const hostile: Hostile[] = [];
  const polls: { ms: number; hashing: number | null; path: string }[] = [];
  let goodMetadata: Buffer;
  /** Hostile files to drop in while the server runs: name -> bytes. */
  const live = new Map<string, Buffer>();

  before(async function () {
    this.timeout(60_000);
    sandbox = await tempDir('pypi-lite-hostile-');
    root = path.join(sandbox, 'packages');
    await fsp.mkdir(root);
    token = randomBytes(6).toString('hex');
    const write = async (file: string, data: Buffer, project: string, mustList: boolean): Promise<void> => {
      await fsp.writeFile(path.join(root, file), data);
      hostile.push({ file, project, mustList });
    };

    // a good wheel that must keep its metadata among all this
    await fsp.copyFile(path.join(EXAMPLE, 'pypi_lite_demo-2.0.0-py3-none-any.whl'), path.join(root, 'pypi_lite_demo-2.0.0-py3-none-any.whl'));
    goodMetadata = await wheelMetadata(path.join(root, 'pypi_lite_demo-2.0.0-py3-none-any.whl'));

    // zip bomb, honest: METADATA declares (and inflates to) 300 MiB
    const bomb = deflatedZeros(300);
    const bombCrc = crcOfZeros(300);
    live.set('livezip-1.0-py3-none-any.whl', buildZip(wheelFiles('livezip', [
      { name: 'livezip-1.0.dist-info/METADATA', method: 8, data: bomb, crc: bombCrc, size: 2_000 },
    ])));
    await write('zipbomb_declared-1.0-py3-none-any.whl', buildZip(wheelFiles('zipbomb_declared', [
      { name: 'zipbomb_declared-1.0.dist-info/METADATA', method: 8, data: bomb, crc: bombCrc, size: 300 * MB },
    ])), 'zipbomb-declared', true);
    // zip bomb, lying: declares 2,000 bytes, inflates to 300 MiB
    await write('zipbomb_lying-1.0-py3-none-any.whl', buildZip(wheelFiles('zipbomb_lying', [
      { name: 'zipbomb_lying-1.0.dist-info/METADATA', method: 8, data: bomb, crc: bombCrc, size: 2_000 },
    ])), 'zipbomb-lying', true);
    // zip bomb under the size limit but with an absurd ratio: 6 MiB from ~6 KiB
    await write('zipbomb_ratio-1.0-py3-none-any.whl', buildZip(wheelFiles('zipbomb_ratio', [
      { name: 'zipbomb_ratio-1.0.dist-info/METADATA', method: 8, data: deflatedZeros(6), crc: crcOfZeros(6), size: 6 * MB },
    ])), 'zipbomb-ratio', true);

    // gzip bombs: a tar entry declared at 700 MiB, then 600 MiB of zeros (concatenated gzip
    // members, ~1 KiB each), no PKG-INFO anywhere
    for (const n of [1, 2, 3]) {
      const name = `gzbomb${n}-1.0`;
      const header = Buffer.from(await python(
        `import sys, json, tarfile, base64
doc = json.load(sys.stdin)
info = tarfile.TarInfo(doc['name']); info.size = doc['size']; info.mtime = 1700000000
sys.stdout.write(base64.b64encode(info.tobuf(tarfile.USTAR_FORMAT)).decode())
`,
        { name: `${name}/zeros.bin`, size: 700 * MB },
      ), 'base64');
      const zeros = zlib.gzipSync(Buffer.alloc(MB), { level: 9 });
      const bytes = Buffer.concat([zlib.gzipSync(header), ...Array<Buffer>(600).fill(zeros)]);
      await write(`${name}.tar.gz`, bytes, `gzbomb${n}`, true);
      if (n === 1) live.set('livegz-1.0.tar.gz', bytes);
    }

    // path traversal and absolute names: the only METADATA-looking entries escape the archive
    await write('traversal-1.0-py3-none-any.whl', buildZip(wheelFiles('traversal', [
      entry(`../../pypi-lite-evil-${token}.dist-info/METADATA`, niceMetadata('traversal')),
      entry(`${os.tmpdir()}/pypi-lite-evil-${token}-abs.dist-info/METADATA`, niceMetadata('traversal')),
      entry(`..\\..\\pypi-lite-evil-${token}-bs.dist-info\\METADATA`, niceMetadata('traversal')),
      entry(`traversal-1.0.dist-info/../../pypi-lite-evil-${token}-mid/METADATA`, niceMetadata('traversal')),
      // a Windows path: METADATA for no one on POSIX (Python's zipfile keeps the backslash)
      entry('traversal-1.0.dist-info\\METADATA', niceMetadata('traversal')),
    ])), 'traversal', true);
    // the same in an sdist: `../PKG-INFO` is two segments, like `<top>/PKG-INFO`
    await writeTarGz(path.join(root, 'traversal_sdist-1.0.tar.gz'), [
      ['../PKG-INFO', niceMetadata('traversal-sdist').replace('2.1', '2.2')],
      [`traversal_sdist-1.0/../../pypi-lite-evil-${token}-tar/PKG-INFO`, niceMetadata('traversal-sdist').replace('2.1', '2.2')],
    ]);
    hostile.push({ file: 'traversal_sdist-1.0.tar.gz', project: 'traversal-sdist', mustList: true });
    // no METADATA at all
    await write('nometa-1.0-py3-none-any.whl', buildZip(wheelFiles('nometa', [])), 'nometa', true);
    // two .dist-info directories (pip refuses such a wheel)
    await write('twodist-1.0-py3-none-any.whl', buildZip(wheelFiles('twodist', [
      entry('twodist-1.0.dist-info/METADATA', niceMetadata('twodist')),
      entry('other-2.0.dist-info/METADATA', niceMetadata('other')),
    ])), 'twodist', true);

    // truncated wheel and sdist (METADATA / PKG-INFO lie in the lost half)
    const scratch = path.join(sandbox, 'scratch');
    await fsp.mkdir(scratch);
    const full = await writeWheel(scratch, 'truncwheel', '1.0', niceMetadata('truncwheel'));
    const wheelBytes = await fsp.readFile(full);
    await write('truncwheel-1.0-py3-none-any.whl', wheelBytes.subarray(0, Math.floor(wheelBytes.length / 2)), 'truncwheel', false);
    const sdist = path.join(scratch, 'truncsdist-1.0.tar.gz');
    await writeTarGz(sdist, [['truncsdist-1.0/blob.bin', randomBytes(256 * 1024)], ['truncsdist-1.0/PKG-INFO', niceMetadata('truncsdist')]]);
    const sdistBytes = await fsp.readFile(sdist);
    await write('truncsdist-1.0.tar.gz', sdistBytes.subarray(0, Math.floor(sdistBytes.length / 2)), 'truncsdist', false);
    await fsp.rm(scratch, { recursive: true, force: true });

    // garbage and empty files with distribution names
    await write('garbage-1.0-py3-none-any.whl', randomBytes(64 * 1024), 'garbage', false);
    await write('garbage_sdist-1.0.tar.gz', randomBytes(64 * 1024), 'garbage-sdist', false);
    await write('empty-1.0-py3-none-any.whl', Buffer.alloc(0), 'empty', false);

    // a symbolic link out of the root: never followed, never served
    await fsp.symlink('/etc/passwd', path.join(root, 'evil_link-1.0-py3-none-any.whl'));

    rootBefore = await listFiles(root, { hidden: true });
    server = await spawnServer(['--disable-fallback', '--workers', '2', root], { timeoutMs: 30_000 });

    // poll while the archives are processed: the project list must answer fast throughout
    const deadline = Date.now() + 60_000;
    for (;;) {
      const h = await fetch(`${server.url}/health`);
      const body = (await h.json()) as { status: string; hashing: number };
      const hashing = h.status === 200 ? body.hashing : null;
      const t0 = performance.now();
      const r = await fetch(`${server.url}/simple/`);
      await r.arrayBuffer();
      polls.push({ ms: performance.now() - t0, hashing, path: '/simple/' });
      expect(r.status).to.equal(200);
      const t1 = performance.now();
      const g = await fetch(`${server.url}/simple/pypi-lite-demo/`);
      await g.arrayBuffer();
      expect(g.status).to.equal(200);
      polls.push({ ms: performance.now() - t1, hashing, path: '/simple/pypi-lite-demo/' });
      if (hashing === 0) break;
      if (Date.now() > deadline) throw new Error(`still hashing after 60 s: ${JSON.stringify(body)}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  });

  after(async () => {
    await server?.stop();
    if (sandbox) await fsp.rm(sandbox, { recursive: true, force: true });
    // (only if the test failed: something escaped)
    for (const n of await fsp.readdir(os.tmpdir())) if (token && n.includes(token)) await fsp.rm(path.join(os.tmpdir(), n), { recursive: true, force: true });
  });

  it('starts and answers /simple/ in under a second while it reads the archives', () => {
    const index = polls.filter((p) => p.path === '/simple/');
    const during = index.filter((p) => p.hashing === null || p.hashing > 0);
    expect(during.length, `polls: ${JSON.stringify(polls)}`).to.be.at.least(1);
    for (const p of index) expect(p.ms, `${p.path} took ${Math.round(p.ms)} ms (hashing: ${p.hashing})`).to.be.below(1_000);
    expect(index[index.length - 1].hashing).to.equal(0);
    // a project page waits for its own files' digests; it must never wait for longer than the
    // bounded extraction of a hostile archive (10 s) takes
    for (const p of polls.filter((x) => x.path !== '/simple/')) expect(p.ms, `${p.path} took ${Math.round(p.ms)} ms`).to.be.below(12_000);
  });

  it('advertises and serves no metadata for any hostile file', async () => {
    const problems: string[] = [];
    for (const h of hostile) {
      const html = await fetch(`${server!.url}/simple/${h.project}/`, { headers: { Accept: 'text/html' } });
      const meta = await fetch(`${server!.url}/packages/${h.file}.metadata`);
      if (meta.status !== 404) problems.push(`${h.file}: .metadata answered ${meta.status}`);
      if (html.status === 404) {
        if (h.mustList) problems.push(`${h.file}: not listed (it is a readable file; it should be listed without metadata)`);
        continue;
      }
      const a = anchors(await html.text()).find((x) => x.text === h.file);
      if (!a) {
        if (h.mustList) problems.push(`${h.file}: missing from /simple/${h.project}/`);
        continue;
      }
      for (const attr of ['data-core-metadata', 'data-dist-info-metadata']) if (attr in a.attrs) problems.push(`${h.file}: ${attr}="${a.attrs[attr]}"`);
      const json = (await (await fetch(`${server!.url}/simple/${h.project}/`, { headers: { Accept: JSON_V1 } })).json()) as ProjectJson;
      const core = json.files.find((f) => f.filename === h.file)?.['core-metadata'];
      if (core !== undefined && core !== false) problems.push(`${h.file}: JSON core-metadata ${JSON.stringify(core)}`);
      // a listed file downloads as the very bytes on disk
      const dl = await fetch(new URL(a.href, `${server!.url}/simple/${h.project}/`));
      const bytes = Buffer.from(await dl.arrayBuffer());
      if (dl.status !== 200 || sha256(bytes) !== sha256(await fsp.readFile(path.join(root, h.file)))) problems.push(`${h.file}: download ${dl.status}`);
    }
    expect(problems, problems.join('\n')).to.deep.equal([]);
  });

  it('never lists or serves the symbolic link', async () => {
    expect((await fetch(`${server!.url}/simple/evil-link/`)).status).to.equal(404);
    const r = await fetch(`${server!.url}/packages/evil_link-1.0-py3-none-any.whl`);
    expect(r.status).to.equal(404);
    expect(await r.text()).not.to.contain('root:');
  });

  it('still serves the good wheel\'s metadata', async () => {
    const html = await (await fetch(`${server!.url}/simple/pypi-lite-demo/`)).text();
    const a = anchors(html).find((x) => x.text === 'pypi_lite_demo-2.0.0-py3-none-any.whl');
    expect(a, html).to.not.equal(undefined);
    expect(a!.attrs['data-core-metadata']).to.equal(`sha256=${sha256(goodMetadata)}`);
    const r = await fetch(`${server!.url}/packages/pypi_lite_demo-2.0.0-py3-none-any.whl.metadata`);
    expect(r.status).to.equal(200);
    expect(Buffer.from(await r.arrayBuffer()).equals(goodMetadata)).to.equal(true);
  });

  it('creates no file outside the root, and nothing in it but its own dotfiles', async () => {
    expect(await fsp.readdir(sandbox)).to.deep.equal(['packages']);
    // where `../../x`, `../x` and `/tmp/x` from inside the root or an archive would land
    for (const dir of [os.tmpdir(), path.dirname(sandbox), path.dirname(root), '/']) {
      const leaked = (await fsp.readdir(dir)).filter((n) => n.includes(token));
      expect(leaked, `files escaped into ${dir}`).to.deep.equal([]);
    }
    const added = (await listFiles(root, { hidden: true })).filter((f) => !rootBefore.includes(f));
    expect(added.filter((f) => !f.startsWith('.')), 'files the server wrote into the root').to.deep.equal([]);
    expect((await listFiles(root)).sort()).to.deep.equal(rootBefore.filter((f) => !f.startsWith('.')).sort());
  });

  it('handles hostile files dropped in while it runs the same way', async () => {
    for (const [name, bytes] of live) await fsp.writeFile(path.join(root, name), bytes);
    const projects = ['livezip', 'livegz'];
    const deadline = Date.now() + 45_000;
    for (;;) {
      const t0 = performance.now();
      const r = await fetch(`${server!.url}/simple/`, { headers: { Accept: JSON_V1 } });
      const index = (await r.json()) as { projects: { name: string }[] };
      const ms = performance.now() - t0;
      expect(ms, `/simple/ took ${Math.round(ms)} ms`).to.be.below(1_000);
      const health = (await (await fetch(`${server!.url}/health`)).json()) as { hashing: number };
      const names = index.projects.map((p) => p.name.toLowerCase());
      if (projects.every((p) => names.includes(p)) && health.hashing === 0) break;
      if (Date.now() > deadline) expect.fail(`live hostile files not settled: ${JSON.stringify({ names, health })}`);
      await new Promise((res) => setTimeout(res, 100));
    }
    for (const [name] of live) {
      const project = name.split('-')[0];
      const a = anchors(await (await fetch(`${server!.url}/simple/${project}/`)).text()).find((x) => x.text === name);
      expect(a, `${name} is listed`).to.not.equal(undefined);
      expect(a!.attrs, name).not.to.have.property('data-core-metadata');
      expect(a!.attrs, name).not.to.have.property('data-dist-info-metadata');
      expect((await fetch(`${server!.url}/packages/${name}.metadata`)).status, `${name}.metadata`).to.equal(404);
    }
    expect((await fsp.readdir(sandbox)).sort()).to.deep.equal(['packages']);
  });

  it('keeps its memory bounded (peak RSS under 400 MB)', async () => {
    const status = await fsp.readFile(`/proc/${server!.proc.pid}/status`, 'utf8');
    const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
    expect(m, status).to.not.equal(null);
    const peakMb = Number(m![1]) / 1024;
    expect(peakMb, `peak RSS ${Math.round(peakMb)} MB`).to.be.below(400);
  });
});
