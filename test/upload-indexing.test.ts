// An upload is indexed once, by the upload itself: its digests were computed while it streamed
// in and its metadata read before it was accepted. The root's watcher sees the new file too, and
// must find it exactly as the upload recorded it (size, mtime, inode, ctime); otherwise it takes
// the file for a changed one, drops its digest until a worker has read all of it again and
// logs "file changed" for a file nobody touched.

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { spawnServer, tempDir, waitHealthy, type Spawned } from './helpers/server.js';
import { eventually, listed, multipart, post, pyArchive, sha256, tempUploads, twineFields } from './helpers/upload.js';

describe('an uploaded file is indexed once', function () {
  this.timeout(120_000);

  let work: string;
  const servers: Spawned[] = [];

  async function serve(extra: string[] = []): Promise<{ srv: Spawned; root: string }> {
    const root = await fsp.mkdtemp(path.join(work, 'root-'));
    const srv = await spawnServer(['-a', '.', '-P', '.', '--disable-fallback', ...extra, root]);
    servers.push(srv);
    await waitHealthy(srv.url);
    return { srv, root };
  }

  /**
   * Drop a file into the root by hand and wait until it is listed: its watcher events come
   * after those of everything uploaded before, so by then the watcher has reported those too.
   */
  async function sentinel(srv: Spawned, root: string, tag: string): Promise<void> {
    const filename = `sentinel_${tag}-1.0-py3-none-any.whl`;
    const bytes = await pyArchive(work, filename, { kind: 'wheel', name: `sentinel-${tag}`, version: '1.0' });
    await fsp.writeFile(path.join(root, filename), bytes);
    const seen = await eventually(async () => (await listed(srv.url, `sentinel-${tag}`)).get(filename) === sha256(bytes), 20_000);
    expect(seen, `${filename} listed`).to.equal(true);
    const added = await srv.waitForLogs((l) => l.msg === 'file added' && l.file === filename);
    expect(added, srv.output()).to.have.length(1);
  }

  /** What the server logged about files it found changed or added (an upload logs 'upload accepted'). */
  function watcherLines(srv: Spawned, filename: string): Record<string, unknown>[] {
    return srv.logs().filter((l) => (l.msg === 'file changed' || l.msg === 'file added') && l.file === filename);
  }

  before(async () => {
    work = await tempDir('pypi-lite-upload-indexing-');
  });

  after(async () => {
    for (const s of servers) {
      const code = await s.stop();
      expect(code, s.output()).to.equal(0);
      expect(s.output()).not.to.match(/"level":50|unexpected error/);
    }
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('a new wheel and sdist: the watcher finds them as uploaded (no "file changed", no second read)', async () => {
    const { srv, root } = await serve();
    const wheel = 'once-1.0-py3-none-any.whl';
    const sdist = 'once-1.0.tar.gz';
    const files = new Map([
      [wheel, await pyArchive(work, wheel, { kind: 'wheel', name: 'once', version: '1.0' })],
      [sdist, await pyArchive(work, sdist, { kind: 'sdist', name: 'once', version: '1.0' })],
    ]);
    for (const [filename, bytes] of files) {
      const ans = await post(`${srv.url}/`, multipart(twineFields('once', '1.0', filename, bytes), { filename, bytes }));
      expect(ans.status, `${ans.status} ${ans.statusText}`).to.equal(200);
    }
    await sentinel(srv, root, 'new');
    for (const filename of files.keys()) expect(watcherLines(srv, filename), `log lines about ${filename}`).to.deep.equal([]);
    expect(await listed(srv.url, 'once')).to.deep.equal(new Map([...files].map(([f, b]) => [f, sha256(b)])));
    expect(await tempUploads(root)).to.deep.equal([]);
  });

  it('a file of many write batches is stored byte for byte and listed with its sha256', async () => {
    const { srv, root } = await serve();
    const wheel = 'big-1.0-py3-none-any.whl';
    // ~20 MB that deflate cannot shrink much: the temp file is written in many batches at once.
    const bytes = await pyArchive(work, wheel, { kind: 'wheel', name: 'big', version: '1.0', extra: randomBytes(15 * 1024 * 1024).toString('base64') });
    expect(bytes.length).to.be.above(10 * 1024 * 1024);
    const ans = await post(`${srv.url}/`, multipart(twineFields('big', '1.0', wheel, bytes), { filename: wheel, bytes }));
    expect(ans.status, `${ans.status} ${ans.statusText}`).to.equal(200);
    expect((await fsp.readFile(path.join(root, wheel))).equals(bytes), 'the stored bytes').to.equal(true);
    expect(await listed(srv.url, 'big')).to.deep.equal(new Map([[wheel, sha256(bytes)]]));
    expect(await tempUploads(root)).to.deep.equal([]);
  });

  it('a file replaced with --overwrite: the watcher finds the new one as uploaded', async () => {
    const { srv, root } = await serve(['--overwrite']);
    const wheel = 'again-1.0-py3-none-any.whl';
    const first = await pyArchive(work, wheel, { kind: 'wheel', name: 'again', version: '1.0', extra: 'first' });
    const second = await pyArchive(work, wheel, { kind: 'wheel', name: 'again', version: '1.0', extra: 'second' });
    for (const bytes of [first, second]) {
      const ans = await post(`${srv.url}/`, multipart(twineFields('again', '1.0', wheel, bytes), { filename: wheel, bytes }));
      expect(ans.status, `${ans.status} ${ans.statusText}`).to.equal(200);
    }
    await sentinel(srv, root, 'replaced');
    expect(watcherLines(srv, wheel), `log lines about ${wheel}`).to.deep.equal([]);
    expect(await listed(srv.url, 'again')).to.deep.equal(new Map([[wheel, sha256(second)]]));
    expect(await fsp.readFile(path.join(root, wheel))).to.deep.equal(second);
  });

  it('no temp file is left when the answer arrives: identical re-uploads and remove_pkg with a file', async () => {
    // The temp file of an upload that was not moved into place (identical bytes, remove_pkg)
    // is removed before the 200 goes out, not after: a client reading the root right after its
    // answer (as the multipart fuzz test does) finds nothing.
    const { srv, root } = await serve();
    const wheel = 'again-1.0-py3-none-any.whl';
    const bytes = await pyArchive(work, wheel, { kind: 'wheel', name: 'again', version: '1.0' });
    const send = (action: string) => post(`${srv.url}/`, multipart(twineFields('again', '1.0', wheel, bytes, { ':action': action }), { filename: wheel, bytes }));
    expect((await send('file_upload')).status).to.equal(200);
    const seen: string[][] = [];
    for (let i = 0; i < 15; i++) {
      const ans = await send('file_upload');
      expect(ans.status, `${ans.status} ${ans.statusText}`).to.equal(200);
      seen.push(await tempUploads(root));
    }
    const removed = await send('remove_pkg');
    expect(removed.status, `${removed.status} ${removed.statusText}`).to.equal(200);
    seen.push(await tempUploads(root));
    expect(seen.filter((t) => t.length > 0), 'temp files found right after a 200').to.deep.equal([]);
  });

  it('a part header busboy refuses (a NUL in the file name), with or without the closing boundary: 400 at once, no temp file', async () => {
    // Regression (found by the multipart fuzz test): the guard had started writing the file of
    // a part whose header busboy then refused; a body ending inside that part got no answer at
    // all, and with its closing boundary the temp file stayed behind.
    const { srv, root } = await serve();
    const b = '7-+_y.';
    const part = (name: string, value: string) => `--${b}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
    const head =
      part(':action', 'file_upload') + part('protocol_version', '1') + part('name', 'nul') + part('version', '1.0') + part('filetype', 'bdist_wheel') +
      `--${b}\r\nContent-Disposition: form-data; name="content"; filename="nul\u0000-1.0-py3-none-any.whl"\r\nContent-Type: application/octet-stream\r\n\r\n${'x'.repeat(746)}`;
    for (const body of [head, `${head}\r\n--${b}--\r\n`]) {
      const ans = await fetch(`${srv.url}/`, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary="${b}"` }, body, signal: AbortSignal.timeout(10_000) });
      expect(ans.status, `${ans.status} ${ans.statusText}`).to.equal(400);
      expect(ans.statusText).to.match(/^Malformed multipart\/form-data request/);
      expect(await tempUploads(root)).to.deep.equal([]);
    }
  });
});
