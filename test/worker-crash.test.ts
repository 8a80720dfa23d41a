// Hashing workers that die (issue 9, item 11), and the project names shown before the metadata
// is read (item 17). PYPI_LITE_TEST_WORKER_EXIT makes a hashing worker exit (process.exit)
// when it starts reading the named files: the whole worker thread is gone, with every file it
// held, as after a crash in native code or an out-of-memory kill.

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { buildWheel, type Wheel } from '../bench/soak.js';
import { JSON_V1, anchors, request, sleep, type ProjectJson } from './helpers/http.js';
import { spawnServer, tempDir, waitHealthy, type Spawned } from './helpers/server.js';
import { multipart, post, twineFields } from './helpers/upload.js';

interface Health {
  status: string;
  hashing: number;
  hash_failures?: number;
}

/** A project's JSON page; fails (instead of hanging) when it takes more than 10 s. */
async function page(url: string, project: string): Promise<Map<string, string | undefined>> {
  const res = await fetch(`${url}/simple/${project}/`, { headers: { accept: JSON_V1 }, signal: AbortSignal.timeout(10_000) });
  expect(res.status, project).to.equal(200);
  const j = (await res.json()) as ProjectJson;
  return new Map(j.files.map((f) => [f.filename, f.hashes.sha256]));
}

/** Wait until /health says nothing is left to hash (fails after 15 s). */
async function settled(url: string): Promise<Health> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const h = (await (await fetch(`${url}/health`)).json()) as Health;
    if (h.status === 'ok' && h.hashing === 0) return h;
    if (Date.now() > deadline) throw new Error(`/health never reached hashing: 0 (${JSON.stringify(h)})`);
    await sleep(100);
  }
}

describe('hashing workers that die (real server, --workers 1)', function () {
  this.timeout(60_000);
  const servers: Spawned[] = [];
  const dirs: string[] = [];

  after(async () => {
    for (const s of servers) await s.stop('SIGKILL');
    for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
  });

  async function start(files: [string, Buffer][], crashOn: string, args: string[] = []): Promise<{ srv: Spawned; root: string }> {
    const root = await tempDir('pypi-lite-crashworker-');
    dirs.push(root);
    for (const [name, bytes] of files) await fsp.writeFile(path.join(root, name), bytes);
    const srv = await spawnServer(['--disable-fallback', '--workers', '1', ...args, root], { env: { PYPI_LITE_TEST_WORKER_EXIT: crashOn } });
    servers.push(srv);
    await waitHealthy(srv.url);
    return { srv, root };
  }

  const bytesOf = (w: Wheel) => Buffer.concat(w.parts);

  it('replaces a worker that died and retries its files: every file is listed with its digest', async () => {
    const victim = buildWheel('crash-once', '1.0', randomBytes(8192));
    // Files the worker holds together with the victim when it dies.
    const bystanders = Array.from({ length: 12 }, (_, i) => buildWheel('bystander', `1.${i}`, randomBytes(8192)));
    const { srv } = await start(
      [[victim.filename, bytesOf(victim)], ...bystanders.map((w): [string, Buffer] => [w.filename, bytesOf(w)])],
      `once:${victim.filename}`,
    );
    expect((await page(srv.url, 'crash-once')).get(victim.filename)).to.equal(victim.sha256);
    const listed = await page(srv.url, 'bystander');
    for (const w of bystanders) expect(listed.get(w.filename), w.filename).to.equal(w.sha256);
    const health = await settled(srv.url);
    expect(health.hash_failures).to.equal(undefined);
    expect(srv.logs().some((l) => l.msg === 'a hashing worker died; replaced it and retrying its files once')).to.equal(true);
  });

  describe('a file that kills the worker every time', () => {
    let srv: Spawned;
    const victim = buildWheel('crash-always', '1.0', randomBytes(8192));
    const sibling = buildWheel('crash-always', '0.9', randomBytes(8192));
    const fooBar = buildWheel('Foo.Bar', '1.0'); // foo_bar-1.0-py3-none-any.whl, metadata Name: Foo.Bar
    const fooBarSdist = 'foo_bar-1.0.tar.gz';
    const oldSdist = 'Baz.Qux-1.0.tar.gz';

    before(async () => {
      expect(fooBar.filename).to.equal('foo_bar-1.0-py3-none-any.whl');
      ({ srv } = await start(
        [
          [victim.filename, bytesOf(victim)],
          [sibling.filename, bytesOf(sibling)],
          [fooBar.filename, bytesOf(fooBar)],
          [fooBarSdist, randomBytes(512)],
          [oldSdist, randomBytes(512)],
        ],
        [victim.filename, fooBar.filename, fooBarSdist, oldSdist].join(','),
        ['-a', '.', '-P', '.'],
      ));
    });

    it("answers the project's page, keeps the file in the index and reports it on /health", async () => {
      const listed = await page(srv.url, 'crash-always');
      expect(listed.get(sibling.filename)).to.equal(sibling.sha256);
      // Pages only list files with a digest: the victim is not on it...
      expect(listed.has(victim.filename)).to.equal(false);
      const health = await settled(srv.url);
      expect(health.hash_failures).to.equal(4);
      // ...but it was not dropped from the index: it is still served.
      const dl = await request(srv.url, `/packages/${victim.filename}`);
      expect(dl.status).to.equal(200);
      expect(dl.body.equals(bytesOf(victim))).to.equal(true);
      const failure = srv.logs().find((l) => l.msg === 'cannot hash a file (kept in the index; retried by a later rescan, or when it changes)' && l.file === victim.filename);
      expect(failure?.retryInSeconds).to.equal(60);
    });

    // A file listed but not hashed (here: never) and an upload of the very same bytes: twine's
    // re-upload is answered 200 "identical", as for a hashed file, never 409 File already exists.
    it('answers an identical re-upload of a file that is not hashed yet with 200, and a different one with 409', async () => {
      const same = await post(srv.url, multipart(twineFields('crash-always', '1.0', victim.filename, bytesOf(victim)), { filename: victim.filename, bytes: bytesOf(victim) }));
      expect(same.status, same.statusText).to.equal(200);
      const other = buildWheel('crash-always', '1.0', randomBytes(8192));
      const clash = await post(srv.url, multipart(twineFields('crash-always', '1.0', victim.filename, bytesOf(other)), { filename: victim.filename, bytes: bytesOf(other) }));
      expect(clash.status).to.equal(409);
      expect(clash.statusText).to.match(/File already exists/);
    });

    // Item 17: before the metadata is read (here: never), the project list shows the
    // normalized name, never a wheel's escaped one; an sdist's own spelling is kept.
    it('shows normalized names (not wheel-escaped ones) on /simple/ until the metadata is read', async () => {
      const html = await request(srv.url, '/simple/');
      expect(html.status).to.equal(200);
      const shown = anchors(html.body.toString('utf8')).map((a) => a.text);
      expect(shown).to.include('foo-bar');
      expect(shown).to.include('Baz.Qux');
      expect(shown).to.not.include('foo_bar');
      const json = (await (await fetch(`${srv.url}/simple/`, { headers: { accept: JSON_V1 } })).json()) as { projects: { name: string }[] };
      const names = json.projects.map((p) => p.name);
      expect(names).to.include('foo-bar');
      expect(names).to.include('Baz.Qux');
      expect(names).to.not.include('foo_bar');
      // The HTML project page's title too.
      const project = await request(srv.url, '/simple/foo-bar/', { headers: { accept: 'text/html' } });
      expect(project.status).to.equal(200);
      expect(project.body.toString('utf8')).to.not.include('foo_bar-1.0<').and.to.not.match(/<title>[^<]*foo_bar/);
    });
  });
});
