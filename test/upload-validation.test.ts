// The legacy upload API's checks, one HTTP request per rule, against the real server. Every
// answer is checked for its status, its reason phrase (all that twine shows) and its body, and
// no client mistake may ever be a 5xx (twine retries those five times).

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { buildProject, spawnServer, tempDir, waitHealthy, type Spawned } from './helpers/server.js';
import {
  RawClient,
  blake2b256,
  eventually,
  md5,
  multipart,
  post,
  postHead,
  pyArchive,
  sha256,
  sleep,
  tempUploads,
  twineFields,
  type Answer,
  type Field,
  type FilePart,
} from './helpers/upload.js';
import { expectRefused, listed } from './helpers/upload.js';

const SIMPLE_JSON = 'application/vnd.pypi.simple.v1+json';

async function exists(p: string): Promise<boolean> {
  return fsp.stat(p).then(
    () => true,
    () => false,
  );
}


describe('legacy upload API: one request per rule', function () {
  this.timeout(60_000);

  let srv: Spawned;
  let work: string;
  let root: string;
  let url: string;
  /** Every answer of this suite, to check that none was a 5xx. */
  const answers: Answer[] = [];

  let wheel: Buffer; // val_pkg-1.0-py3-none-any.whl
  let sdist: Buffer; // val_pkg-1.0.tar.gz
  const WHEEL = 'val_pkg-1.0-py3-none-any.whl';
  const SDIST = 'val_pkg-1.0.tar.gz';

  async function upload(fields: Field[], file: FilePart | null, opts: { fileFirst?: boolean; path?: string; query?: string } = {}): Promise<Answer> {
    const ans = await post(`${url}${opts.path ?? '/'}${opts.query ?? ''}`, multipart(fields, file, opts));
    answers.push(ans);
    expect(ans.status, `never a 5xx: ${ans.status} ${ans.statusText}`).to.be.below(500);
    return ans;
  }

  /** Upload a file with twine's fields, some overridden. */
  function send(name: string, version: string, filename: string, bytes: Buffer, overrides: Record<string, string | null> = {}): Promise<Answer> {
    return upload(twineFields(name, version, filename, bytes, overrides), { filename, bytes });
  }

  before(async () => {
    work = await tempDir('pypi-lite-validation-');
    root = path.join(work, 'root');
    await fsp.mkdir(root);
    [wheel, sdist] = await Promise.all([
      pyArchive(work, WHEEL, { kind: 'wheel', name: 'val-pkg', version: '1.0' }),
      pyArchive(work, SDIST, { kind: 'sdist', name: 'val-pkg', version: '1.0' }),
    ]);
    srv = await spawnServer(['-a', '.', '-P', '.', '--disable-fallback', root]);
    url = srv.url;
    await waitHealthy(url);
  });

  after(async () => {
    const code = await srv?.stop();
    expect(code, srv?.output()).to.equal(0);
    expect(srv.output()).not.to.match(/"level":50|unexpected error/);
    await fsp.rm(work, { recursive: true, force: true });
  });

  afterEach(() => {
    for (const a of answers) expect(a.status, `${a.status} ${a.statusText}`).to.be.below(500);
  });

  it('accepts a valid wheel with twine\'s fields (the baseline the rejections below differ from)', async () => {
    const ans = await send('val-pkg', '1.0', WHEEL, wheel);
    expect(ans.status, ans.statusText).to.equal(200);
    expect(await fsp.readFile(path.join(root, WHEEL))).to.deep.equal(wheel);
    expect((await listed(url, 'val-pkg')).get(WHEEL)).to.equal(sha256(wheel));
  });

  it('answers 200 to a re-upload of identical bytes and 409 "File already exists" to different bytes', async () => {
    const again = await send('val-pkg', '1.0', WHEEL, wheel);
    expect(again.status, again.statusText).to.equal(200);
    const other = await pyArchive(work, WHEEL, { kind: 'wheel', name: 'val-pkg', version: '1.0', extra: 'different' });
    expect(sha256(other)).not.to.equal(sha256(wheel));
    const clash = await send('val-pkg', '1.0', WHEEL, other);
    expectRefused(clash, 409, /^File already exists: val_pkg-1\.0-py3-none-any\.whl$/);
    expect(await fsp.readFile(path.join(root, WHEEL))).to.deep.equal(wheel);
  });

  describe(':action and protocol_version', () => {
    it('400 when :action is missing', async () => {
      const ans = await send('val-pkg', '1.0', SDIST, sdist, { ':action': null });
      expectRefused(ans, 400, /^Unsupported :action: missing$/);
      expect(await exists(path.join(root, SDIST))).to.equal(false);
    });

    it('400 for an unknown :action', async () => {
      const ans = await send('val-pkg', '1.0', SDIST, sdist, { ':action': 'frobnicate' });
      expectRefused(ans, 400, /^Unsupported :action: frobnicate$/);
      expect(await exists(path.join(root, SDIST))).to.equal(false);
    });

    it('400 for protocol_version=2', async () => {
      const ans = await send('val-pkg', '1.0', SDIST, sdist, { protocol_version: '2' });
      expectRefused(ans, 400, /^Unsupported protocol_version: only 1 is supported/);
      expect(ans.statusText).to.match(/\b2$/);
      expect(await exists(path.join(root, SDIST))).to.equal(false);
    });

    it('takes :action from the query string when the form has none', async () => {
      const fields = twineFields('val-pkg', '1.0', SDIST, sdist, { ':action': null });
      const ans = await upload(fields, { filename: SDIST, bytes: sdist }, { query: '?:action=file_upload' });
      expect(ans.status, ans.statusText).to.equal(200);
      expect(await fsp.readFile(path.join(root, SDIST))).to.deep.equal(sdist);
    });
  });

  describe('required fields', () => {
    let bytes: Buffer;
    const FILE = 'req_pkg-1.0.tar.gz';
    before(async () => {
      bytes = await pyArchive(work, FILE, { kind: 'sdist', name: 'req-pkg', version: '1.0' });
    });

    it('400 without name', async () => {
      expectRefused(await send('req-pkg', '1.0', FILE, bytes, { name: null }), 400, /^Missing required field: name$/);
    });

    it('400 when name is "UNKNOWN" (treated as absent)', async () => {
      expectRefused(await send('req-pkg', '1.0', FILE, bytes, { name: 'UNKNOWN' }), 400, /^Missing required field: name$/);
    });

    it('400 without version', async () => {
      expectRefused(await send('req-pkg', '1.0', FILE, bytes, { version: null }), 400, /^Missing required field: version$/);
    });

    it('400 without content', async () => {
      const ans = await upload(twineFields('req-pkg', '1.0', FILE, bytes), null);
      expectRefused(ans, 400, /^No file uploaded in the "content" field$/);
    });

    it('400 when content is a plain field instead of a file', async () => {
      const ans = await upload([...twineFields('req-pkg', '1.0', FILE, bytes), ['content', 'not a file']], null);
      expectRefused(ans, 400, /^No file uploaded in the "content" field$/);
    });

    it('400 for two files in "content"', async () => {
      const boundary = 'two-files-boundary';
      const mp = multipart(twineFields('req-pkg', '1.0', FILE, bytes), { filename: FILE, bytes }, { boundary });
      const first = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="content"; filename="${FILE}"\r\n\r\n`), bytes, Buffer.from('\r\n')]);
      const body = Buffer.concat([first, mp.body]);
      const ans = await post(`${url}/`, { body, contentType: mp.contentType });
      answers.push(ans);
      expectRefused(ans, 400, /^Unexpected file field/);
    });

    it('400 for a second, large file in "content" after the first: the body is read to its end, nothing is stored, and the server goes on', async () => {
      const boundary = 'second-large-boundary';
      const mp = multipart(twineFields('req-pkg', '1.0', FILE, bytes), { filename: FILE, bytes }, { boundary });
      const closing = Buffer.from(`--${boundary}--\r\n`);
      // The form as twine sends it, then another "content" file of 20 MB before the closing boundary.
      const open = mp.body.subarray(0, mp.body.length - closing.length);
      const second = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="content"; filename="${FILE}"\r\n\r\n`), Buffer.alloc(20 * 1024 * 1024, 7), Buffer.from('\r\n')]);
      expect(mp.body.subarray(mp.body.length - closing.length).equals(closing)).to.equal(true);
      const ans = await post(`${url}/`, { body: Buffer.concat([open, second, closing]), contentType: mp.contentType });
      answers.push(ans);
      expectRefused(ans, 400, /^Unexpected file field/);
      expect(await exists(path.join(root, FILE))).to.equal(false);
      expect((await fetch(`${url}/simple/`)).status).to.equal(200);
    });

    it('400 for an empty file', async () => {
      expectRefused(await send('req-pkg', '1.0', FILE, Buffer.alloc(0)), 400, /^Invalid distribution: the file is empty$/);
    });

    it('400 for an invalid project name', async () => {
      expectRefused(await send('req pkg!', '1.0', FILE, bytes), 400, /^Invalid project name/);
    });

    it('400 for an invalid version', async () => {
      expectRefused(await send('req-pkg', 'one.oh', FILE, bytes), 400, /^Invalid version/);
    });

    afterEach(async () => {
      expect(await exists(path.join(root, FILE))).to.equal(false);
      expect((await listed(url, 'req-pkg')).size).to.equal(0);
      expect(await tempUploads(root)).to.deep.equal([]);
    });
  });

  describe('file names', () => {
    let bytes: Buffer;
    before(async () => {
      bytes = await pyArchive(work, 'fn_pkg-1.0.tar.gz', { kind: 'sdist', name: 'fn-pkg', version: '1.0' });
    });
    afterEach(async () => {
      expect((await listed(url, 'fn-pkg')).size, 'nothing of fn-pkg is listed').to.equal(0);
      expect(await exists(path.join(root, 'fn_pkg-1.0.tar.gz'))).to.equal(false);
    });

    for (const bad of ['fn_pkg-1.0.exe', 'fn_pkg-1.0.tar']) {
      it(`400 for the extension of ${bad}`, async () => {
        const ans = await send('fn-pkg', '1.0', bad, bytes, { filetype: 'sdist' });
        expectRefused(ans, 400, /^Invalid file extension: use \.whl, \.tar\.gz or \.zip/);
        expect(ans.statusText).to.include(bad);
        expect(await exists(path.join(root, bad))).to.equal(false);
      });
    }

    it('400 when filetype says bdist_wheel for an sdist', async () => {
      const ans = await send('fn-pkg', '1.0', 'fn_pkg-1.0.tar.gz', bytes, { filetype: 'bdist_wheel' });
      expectRefused(ans, 400, /^filetype does not match the file extension/);
    });

    it('400 when filetype says sdist for a wheel', async () => {
      const whl = await pyArchive(work, 'fn_pkg-1.0-py3-none-any.whl', { kind: 'wheel', name: 'fn-pkg', version: '1.0' });
      const ans = await send('fn-pkg', '1.0', 'fn_pkg-1.0-py3-none-any.whl', whl, { filetype: 'sdist' });
      expectRefused(ans, 400, /^filetype does not match the file extension/);
      expect(await exists(path.join(root, 'fn_pkg-1.0-py3-none-any.whl'))).to.equal(false);
    });

    const invalid: [string, string, string?][] = [
      ['a "/"', 'sub/fn_pkg-1.0.tar.gz'],
      ['a "\\"', 'sub\\fn_pkg-1.0.tar.gz'],
      ['a newline (sent as %0A, the WHATWG escape)', 'fn_pkg-1.0\n.tar.gz', 'filename="fn_pkg-1.0%0A.tar.gz"'],
      ['a carriage return (sent as %0D)', 'fn_pkg\r-1.0.tar.gz', 'filename="fn_pkg%0D-1.0.tar.gz"'],
      ['a control character (sent as RFC 5987 filename*)', 'fn_pkg-1.0\u0001.tar.gz', "filename*=utf-8''fn_pkg-1.0%01.tar.gz"],
      ['DEL (sent as RFC 5987 filename*)', 'fn_pkg-1.0\u007f.tar.gz', "filename*=utf-8''fn_pkg-1.0%7F.tar.gz"],
      ['a tab', 'fn_pkg\t-1.0.tar.gz'],
      ['a leading dot', '.fn_pkg-1.0.tar.gz'],
    ];
    for (const [what, filename, param] of invalid) {
      it(`400 for a filename with ${what}`, async () => {
        const ans = await upload(twineFields('fn-pkg', '1.0', filename, bytes), { filename, bytes, param });
        expectRefused(ans, 400, /^Invalid filename/);
        expect(await fsp.readdir(root)).not.to.include(path.basename(filename.replace(/\\/g, '/')));
        expect(await exists(path.join(root, 'sub'))).to.equal(false);
      });
    }

    it('400 for raw control characters in the part header (malformed multipart)', async () => {
      const filename = 'fn_pkg-1.0\u0001.tar.gz';
      const ans = await send('fn-pkg', '1.0', filename, bytes);
      expectRefused(ans, 400, /^(Malformed multipart\/form-data request|Invalid filename)/);
    });

    it('400 for "../evil-1.0.tar.gz": nothing is written outside the root, nothing appears', async () => {
      const evil = await pyArchive(work, 'evil-1.0.tar.gz', { kind: 'sdist', name: 'evil', version: '1.0' });
      const before = new Set(await fsp.readdir(work));
      const ans = await send('evil', '1.0', '../evil-1.0.tar.gz', evil);
      expectRefused(ans, 400, /^Invalid filename/);
      expect(await exists(path.join(work, 'evil-1.0.tar.gz')), 'written next to the root').to.equal(false);
      expect(await exists(path.join(root, 'evil-1.0.tar.gz')), 'written into the root').to.equal(false);
      expect(new Set(await fsp.readdir(work))).to.deep.equal(before);
      expect((await listed(url, 'evil')).size).to.equal(0);
    });

    it('400 when the filename names another project', async () => {
      const ans = await send('other-pkg', '1.0', 'fn_pkg-1.0.tar.gz', bytes);
      expectRefused(ans, 400, /^Filename does not match the project name/);
      expect((await listed(url, 'other-pkg')).size).to.equal(0);
    });

    it('400 when the filename has another version', async () => {
      const ans = await send('fn-pkg', '2.0', 'fn_pkg-1.0.tar.gz', bytes);
      expectRefused(ans, 400, /^Filename does not match the version/);
    });

    for (const bad of ['fn_pkg-1.0.whl', 'fn_pkg-1.0-py3-none.whl', 'fn_pkg-1.0-x-py3-none-any-extra.whl']) {
      it(`400 for the malformed wheel filename ${bad}`, async () => {
        const whl = await pyArchive(work, 'x.whl', { kind: 'wheel', name: 'fn-pkg', version: '1.0' });
        const ans = await send('fn-pkg', '1.0', bad, whl);
        expectRefused(ans, 400, /^Invalid filename/);
        expect(ans.statusText).to.include(bad);
        expect(await exists(path.join(root, bad))).to.equal(false);
      });
    }
  });

  describe('name and version normalization', () => {
    let files: string[];
    before(async () => {
      files = await buildProject('Foo_Bar', '1.0', { dir: path.join(work, 'foobar-dist') });
    });

    it('accepts form name "Foo_Bar" for foo_bar-1.0.tar.gz', async () => {
      const file = files.find((f) => f.endsWith('.tar.gz'))!;
      expect(path.basename(file)).to.equal('foo_bar-1.0.tar.gz');
      const bytes = await fsp.readFile(file);
      const ans = await send('Foo_Bar', '1.0', 'foo_bar-1.0.tar.gz', bytes);
      expect(ans.status, ans.statusText).to.equal(200);
      expect((await listed(url, 'foo-bar')).get('foo_bar-1.0.tar.gz')).to.equal(sha256(bytes));
    });

    it('accepts form version "1.0.0" for a 1.0 wheel', async () => {
      const file = files.find((f) => f.endsWith('.whl'))!;
      const bytes = await fsp.readFile(file);
      const ans = await send('foo.bar', '1.0.0', path.basename(file), bytes);
      expect(ans.status, ans.statusText).to.equal(200);
      expect((await listed(url, 'foo-bar')).get(path.basename(file))).to.equal(sha256(bytes));
    });
  });

  describe('archive contents', () => {
    it('400 for a wheel without METADATA', async () => {
      const FILE = 'nometa-1.0-py3-none-any.whl';
      const bytes = await pyArchive(work, FILE, { kind: 'wheel-no-metadata', name: 'nometa', version: '1.0' });
      const ans = await send('nometa', '1.0', FILE, bytes);
      expectRefused(ans, 400, /^Invalid distribution/);
      expect(ans.statusText).to.include(FILE);
      expect(await exists(path.join(root, FILE))).to.equal(false);
      expect((await listed(url, 'nometa')).size).to.equal(0);
    });

    it('400 for a wheel whose METADATA names another project', async () => {
      const FILE = 'liar-1.0-py3-none-any.whl';
      const bytes = await pyArchive(work, FILE, { kind: 'wheel', name: 'liar', version: '1.0' });
      // Same bytes, but METADATA says "liar" while the file claims to be "truthful".
      const ans = await send('truthful', '1.0', 'truthful-1.0-py3-none-any.whl', bytes);
      expectRefused(ans, 400, /^Filename does not match the project name/);
      expect(await exists(path.join(root, 'truthful-1.0-py3-none-any.whl'))).to.equal(false);
    });
  });

  describe('digests', () => {
    const FILE = 'dig_pkg-1.0.tar.gz';
    let bytes: Buffer;
    let other: Buffer;
    before(async () => {
      bytes = await pyArchive(work, FILE, { kind: 'sdist', name: 'dig-pkg', version: '1.0' });
      other = await pyArchive(work, FILE, { kind: 'sdist', name: 'dig-pkg', version: '1.0', extra: 'other bytes' });
      expect(sha256(other)).not.to.equal(sha256(bytes));
    });

    it('400 when sha256_digest does not match the content', async () => {
      const ans = await send('dig-pkg', '1.0', FILE, bytes, { sha256_digest: sha256(other) });
      expectRefused(ans, 400, /^Digest mismatch.*sha256_digest$/);
    });

    it('400 when md5_digest does not match the content', async () => {
      const ans = await send('dig-pkg', '1.0', FILE, bytes, { md5_digest: md5(other) });
      expectRefused(ans, 400, /^Digest mismatch.*md5_digest$/);
    });

    it('400 when blake2_256_digest does not match the content', async () => {
      const ans = await send('dig-pkg', '1.0', FILE, bytes, { blake2_256_digest: await blake2b256(other) });
      expectRefused(ans, 400, /^Digest mismatch.*blake2_256_digest$/);
    });

    it('400 when a digest sent after the file does not match', async () => {
      const fields = twineFields('dig-pkg', '1.0', FILE, bytes, { blake2_256_digest: await blake2b256(other) });
      const ans = await upload(fields, { filename: FILE, bytes }, { fileFirst: true });
      expectRefused(ans, 400, /^Digest mismatch.*blake2_256_digest$/);
    });

    it('accepts correct sha256, md5 and blake2b-256 digests sent after the file', async () => {
      const fields = twineFields('dig-pkg', '1.0', FILE, bytes, { md5_digest: md5(bytes), blake2_256_digest: await blake2b256(bytes) });
      const ans = await upload(fields, { filename: FILE, bytes }, { fileFirst: true });
      expect(ans.status, ans.statusText).to.equal(200);
      expect(await fsp.readFile(path.join(root, FILE))).to.deep.equal(bytes);
    });

    it('accepts correct digests sent before the file, as twine does', async () => {
      const WHL = 'dig_pkg-1.0-py3-none-any.whl';
      const whl = await pyArchive(work, WHL, { kind: 'wheel', name: 'dig-pkg', version: '1.0' });
      const ans = await send('dig-pkg', '1.0', WHL, whl, { md5_digest: md5(whl), blake2_256_digest: await blake2b256(whl) });
      expect(ans.status, ans.statusText).to.equal(200);
      expect((await listed(url, 'dig-pkg')).get(WHL)).to.equal(sha256(whl));
    });
  });

  describe('one sdist per release', () => {
    it('400 for a .zip sdist when the release already has a .tar.gz one', async () => {
      const tgz = await pyArchive(work, 'one_sdist-1.0.tar.gz', { kind: 'sdist', name: 'one-sdist', version: '1.0' });
      const zip = await pyArchive(work, 'one_sdist-1.0.zip', { kind: 'sdist-zip', name: 'one-sdist', version: '1.0' });
      const first = await send('one-sdist', '1.0', 'one_sdist-1.0.tar.gz', tgz);
      expect(first.status, first.statusText).to.equal(200);
      const second = await send('one-sdist', '1.0', 'one_sdist-1.0.zip', zip);
      expectRefused(second, 400, /^Only one sdist may be uploaded per release/);
      expect(await exists(path.join(root, 'one_sdist-1.0.zip'))).to.equal(false);
      expect([...(await listed(url, 'one-sdist')).keys()]).to.deep.equal(['one_sdist-1.0.tar.gz']);
    });
  });

  describe('remove_pkg', () => {
    it('deletes every file of a release, found by normalized name, and 404 when nothing is left', async () => {
      const whl = await pyArchive(work, 'remove_me-2.0-py3-none-any.whl', { kind: 'wheel', name: 'Remove.Me', version: '2.0' });
      const tgz = await pyArchive(work, 'remove_me-2.0.tar.gz', { kind: 'sdist', name: 'Remove.Me', version: '2.0' });
      const keep = await pyArchive(work, 'remove_me-3.0.tar.gz', { kind: 'sdist', name: 'Remove.Me', version: '3.0' });
      for (const [f, b, v] of [
        ['remove_me-2.0-py3-none-any.whl', whl, '2.0'],
        ['remove_me-2.0.tar.gz', tgz, '2.0'],
        ['remove_me-3.0.tar.gz', keep, '3.0'],
      ] as const) {
        const ans = await send('Remove.Me', v, f, b);
        expect(ans.status, `${f}: ${ans.statusText}`).to.equal(200);
      }
      expect((await listed(url, 'remove-me')).size).to.equal(3);

      const removed = await upload(
        [
          [':action', 'remove_pkg'],
          ['name', 'REMOVE_me'],
          ['version', '2.0'],
        ],
        null,
      );
      expect(removed.status, removed.statusText).to.equal(200);
      expect(removed.body).to.include('remove_me-2.0-py3-none-any.whl').and.to.include('remove_me-2.0.tar.gz');
      expect(await exists(path.join(root, 'remove_me-2.0-py3-none-any.whl'))).to.equal(false);
      expect(await exists(path.join(root, 'remove_me-2.0.tar.gz'))).to.equal(false);
      expect(await fsp.readFile(path.join(root, 'remove_me-3.0.tar.gz'))).to.deep.equal(keep);
      expect([...(await listed(url, 'remove-me')).keys()]).to.deep.equal(['remove_me-3.0.tar.gz']);

      const again = await upload(
        [
          [':action', 'remove_pkg'],
          ['name', 'remove-me'],
          ['version', '2.0'],
        ],
        null,
      );
      expectRefused(again, 404, /^File not found/);
      const unknown = await upload(
        [
          [':action', 'remove_pkg'],
          ['name', 'never-uploaded'],
          ['version', '1.0'],
        ],
        null,
      );
      expectRefused(unknown, 404, /^File not found/);
    });

    it('400 for remove_pkg without a version', async () => {
      const ans = await upload(
        [
          [':action', 'remove_pkg'],
          ['name', 'remove-me'],
        ],
        null,
      );
      expectRefused(ans, 400, /^Missing required field/);
      expect(await exists(path.join(root, 'remove_me-3.0.tar.gz'))).to.equal(true);
    });
  });

  describe('malformed requests', () => {
    it('415 for a body that is not multipart/form-data', async () => {
      const res = await fetch(`${url}/`, { method: 'POST', body: ':action=file_upload&name=x', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
      answers.push({ status: res.status, statusText: res.statusText, body: await res.text(), headers: res.headers });
      expect(res.status).to.equal(415);
      expect(res.statusText).to.equal('Uploads must be multipart/form-data');
    });

    it('400 for a multipart body that never closes its boundary', async () => {
      const mp = multipart(twineFields('val-pkg', '1.0', SDIST, sdist), { filename: SDIST, bytes: sdist });
      const cut = mp.body.subarray(0, mp.body.length - 40);
      const ans = await post(`${url}/`, { body: cut, contentType: mp.contentType });
      answers.push(ans);
      expectRefused(ans, 400, /^Malformed multipart\/form-data request/);
    });

    it('400 for a multipart body without a boundary parameter', async () => {
      const ans = await post(`${url}/`, { body: Buffer.from('garbage'), contentType: 'multipart/form-data' });
      answers.push(ans);
      expectRefused(ans, 400, /^Malformed multipart\/form-data request/);
    });
  });

  describe('interrupted uploads', () => {
    /** A body whose file part is large enough to be on disk while the rest is missing. */
    async function bigBody(): Promise<{ body: Buffer; contentType: string }> {
      const padded = await pyArchive(work, 'cut_pkg-1.0.tar.gz', { kind: 'sdist', name: 'cut-pkg', version: '1.0', extra: randomBytes(2 * 1024 * 1024).toString('hex') });
      return multipart(twineFields('cut-pkg', '1.0', 'cut_pkg-1.0.tar.gz', padded), { filename: 'cut_pkg-1.0.tar.gz', bytes: padded });
    }

    async function stillServing(): Promise<void> {
      const res = await fetch(`${url}/simple/val-pkg/`, { headers: { Accept: SIMPLE_JSON } });
      expect(res.status).to.equal(200);
      const ok = await send('cut-pkg', '1.1', 'cut_pkg-1.1.tar.gz', await pyArchive(work, 'cut_pkg-1.1.tar.gz', { kind: 'sdist', name: 'cut-pkg', version: '1.1', extra: String(Math.random()) }));
      expect(ok.status, ok.statusText).to.equal(200);
      await fsp.rm(path.join(root, 'cut_pkg-1.1.tar.gz'));
    }

    it('a body shorter than its Content-Length leaves no temp file and the server keeps serving', async () => {
      const mp = await bigBody();
      const client = await RawClient.connect(srv.port);
      await client.write(postHead('/', mp.contentType, mp.body.length + 100_000));
      await client.write(mp.body.subarray(0, mp.body.length - 1000));
      expect(await eventually(async () => (await tempUploads(root)).length > 0), 'the upload was being written to a temp file').to.equal(true);
      client.socket.end();
      await Promise.race([client.closed, sleep(5000)]);
      const st = client.status();
      if (st !== null) expect(st).to.be.below(500);
      expect(await eventually(async () => (await tempUploads(root)).length === 0), `temp files left: ${(await tempUploads(root)).join(', ')}`).to.equal(true);
      expect(await exists(path.join(root, 'cut_pkg-1.0.tar.gz'))).to.equal(false);
      await stillServing();
    });

    it('a client that disconnects mid-upload leaves no temp file and the server keeps serving', async () => {
      const mp = await bigBody();
      const client = await RawClient.connect(srv.port);
      await client.write(postHead('/', mp.contentType, mp.body.length));
      await client.write(mp.body.subarray(0, Math.floor(mp.body.length / 2)));
      expect(await eventually(async () => (await tempUploads(root)).length > 0), 'the upload was being written to a temp file').to.equal(true);
      client.socket.destroy();
      expect(await eventually(async () => (await tempUploads(root)).length === 0), `temp files left: ${(await tempUploads(root)).join(', ')}`).to.equal(true);
      expect(await exists(path.join(root, 'cut_pkg-1.0.tar.gz'))).to.equal(false);
      await stillServing();
    });
  });

  describe('concurrent uploads of one filename', () => {
    it('8 racing uploads with different bytes: exactly one 200, seven 409, and the winner\'s bytes on disk', async () => {
      const FILE = 'race_pkg-1.0.tar.gz';
      const bodies = await Promise.all(Array.from({ length: 8 }, (_, i) => pyArchive(work, FILE, { kind: 'sdist', name: 'race-pkg', version: '1.0', extra: `contender ${i}` })));
      expect(new Set(bodies.map(sha256)).size).to.equal(8);
      const answersHere = await Promise.all(bodies.map((b) => send('race-pkg', '1.0', FILE, b)));
      const statuses = answersHere.map((a) => a.status);
      expect(statuses.filter((s) => s === 200), statuses.join(',')).to.have.length(1);
      expect(statuses.filter((s) => s === 409), statuses.join(',')).to.have.length(7);
      for (const a of answersHere.filter((x) => x.status === 409)) expect(a.statusText).to.equal(`File already exists: ${FILE}`);
      const winner = bodies[statuses.indexOf(200)];
      expect(await fsp.readFile(path.join(root, FILE))).to.deep.equal(winner);
      expect((await listed(url, 'race-pkg')).get(FILE)).to.equal(sha256(winner));
      expect(await tempUploads(root)).to.deep.equal([]);
    });
  });
});

describe('legacy upload API: --max-upload-size', function () {
  this.timeout(60_000);
  let srv: Spawned;
  let root: string;
  let work: string;

  before(async () => {
    work = await tempDir('pypi-lite-maxsize-');
    root = path.join(work, 'root');
    await fsp.mkdir(root);
    srv = await spawnServer(['-a', '.', '-P', '.', '--disable-fallback', '--max-upload-size', '100K', root]);
    await waitHealthy(srv.url);
  });

  after(async () => {
    await srv?.stop();
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('413 "Upload too large: limit is 102400 bytes" for a 20 MiB body, refused on its Content-Length: nothing is stored, and the answer is prompt', async () => {
    const bytes = randomBytes(20 * 1024 * 1024);
    const mp = multipart(twineFields('huge-pkg', '1.0', 'huge_pkg-1.0.tar.gz', bytes), { filename: 'huge_pkg-1.0.tar.gz', bytes });
    const client = await RawClient.connect(srv.port);
    await client.write(postHead('/', mp.contentType, mp.body.length));
    const seen = new Set<string>();
    for (let off = 0; off < mp.body.length && !client.socket.destroyed; off += 1024 * 1024) {
      await client.write(mp.body.subarray(off, off + 1024 * 1024));
      for (const t of await tempUploads(root)) seen.add(t);
    }
    const sent = Date.now();
    // The server may answer before the body has been sent, or right after it: never much later.
    expect(await eventually(() => client.received.includes('\r\n\r\n'), 10_000), 'an answer').to.equal(true);
    expect(Date.now() - sent, 'the answer comes at once, not after a timeout').to.be.below(3000);
    expect(client.received).to.match(/^HTTP\/1\.1 413 Upload too large: limit is 102400 bytes\r\n/);
    client.socket.destroy();
    expect([...seen], 'no temp file while the body streamed in').to.deep.equal([]);
    expect(await fsp.readdir(root)).to.satisfy((names: string[]) => names.every((n) => n.startsWith('.pypi-lite-cache')));
  });

  it('413 for a 300 KiB file under a 100 KiB limit, and nothing on disk', async () => {
    const padded = await pyArchive(work, 'big_pkg-1.0.tar.gz', { kind: 'sdist', name: 'big-pkg', version: '1.0', extra: randomBytes(300 * 1024).toString('hex') });
    expect(padded.length).to.be.within(300 * 1024, 400 * 1024);
    const ans = await post(`${srv.url}/`, multipart(twineFields('big-pkg', '1.0', 'big_pkg-1.0.tar.gz', padded), { filename: 'big_pkg-1.0.tar.gz', bytes: padded }));
    expect(ans.status, ans.statusText).to.equal(413);
    expect(ans.statusText).to.match(/^Upload too large/);
    expect(ans.body).to.include('Upload too large');
    expect(await eventually(async () => (await tempUploads(root)).length === 0)).to.equal(true);
    expect(await fsp.readdir(root)).to.satisfy((names: string[]) => names.every((n) => n.startsWith('.pypi-lite-cache')));
  });

  it('accepts a file just under the limit', async () => {
    const bytes = await pyArchive(work, 'small_pkg-1.0.tar.gz', { kind: 'sdist', name: 'small-pkg', version: '1.0', extra: randomBytes(70 * 1024).toString('hex') });
    expect(bytes.length).to.be.within(80 * 1024, 100 * 1024);
    const ans = await post(`${srv.url}/`, multipart(twineFields('small-pkg', '1.0', 'small_pkg-1.0.tar.gz', bytes), { filename: 'small_pkg-1.0.tar.gz', bytes }));
    expect(ans.status, ans.statusText).to.equal(200);
    expect(await fsp.readFile(path.join(root, 'small_pkg-1.0.tar.gz'))).to.deep.equal(bytes);
  });
});
