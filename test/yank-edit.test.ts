// Concurrent edits of yanked.txt and of the htpasswd file (issue 9, item 12): every
// acknowledged yank is kept, hand-written comments survive, and a yank reason is stored and
// shown exactly as the server acknowledged it (one line, whatever characters the client sent).

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { hashPassword } from '../lib/auth/hashes.js';
import { setUser } from '../lib/auth/htpasswd-edit.js';
import { parseHtpasswd } from '../lib/auth/htpasswd.js';
import { makeConfig } from './helpers/config.js';
import { startServer, type RunningServer } from '../lib/server.js';
import { metadataText, writeWheel } from './helpers/archives.js';
import { anchors, JSON_V1, type ProjectJson } from './helpers/http.js';
import { BIN, copyExample, pip, run, tempDir } from './helpers/server.js';

const auth = `Basic ${Buffer.from('alice:wonderland').toString('base64')}`;
const HAND = '# hand-written: keep this comment\n\n# and this one\npypi_lite_demo-1.0.0.tar.gz   yanked by hand\n';

async function postYank(url: string, body: Record<string, string>, what = 'yank'): Promise<Response> {
  return fetch(`${url}/api/${what}`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: auth }, body: JSON.stringify(body) });
}

async function jsonPage(url: string, project: string): Promise<ProjectJson> {
  const r = await fetch(`${url}/simple/${project}/`, { headers: { Accept: JSON_V1 } });
  expect(r.status).to.equal(200);
  return (await r.json()) as ProjectJson;
}

describe('yank file and password file edits (in-process server)', function () {
  this.timeout(120_000);
  let root: string;
  let scratch: string;
  let running: RunningServer;

  before(async () => {
    root = await copyExample();
    scratch = await tempDir('pypi-lite-yank-edit-');
    const htpasswd = path.join(scratch, 'htpasswd');
    await fsp.writeFile(htpasswd, setUser('', 'alice', await hashPassword('wonderland', 4)));
    for (let i = 0; i < 20; i++) await writeWheel(root, 'many', `1.${i}`, metadataText([['Name', 'many'], ['Version', `1.${i}`]]));
    await fsp.writeFile(path.join(root, 'yanked.txt'), HAND);
    running = await startServer(makeConfig({ roots: [root], passwords: htpasswd }), pino({ level: 'silent' }));
    await running.loaded;
    await running.indexer.whenIdle();
  });

  after(async () => {
    await running?.close();
    for (const d of [root, scratch]) if (d) await fsp.rm(d, { recursive: true, force: true });
  });

  it('20 concurrent POST /api/yank all succeed, all are kept, and hand-written comments stay', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => postYank(running.url, { target: `many==1.${i}`, reason: `r${i}` })));
    const statuses = await Promise.all(results.map(async (r) => `${r.status} ${await r.text()}`.trim()));
    expect(statuses).to.deep.equal(Array.from({ length: 20 }, (_, i) => `200 Yanked many==1.${i} (reason: r${i})`));
    const page = await jsonPage(running.url, 'many');
    const yanked = Object.fromEntries(page.files.map((f) => [f.filename, f.yanked]));
    expect(yanked).to.deep.equal(Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`many-1.${i}-py3-none-any.whl`, `r${i}`])));
    const text = await fsp.readFile(path.join(root, 'yanked.txt'), 'utf8');
    expect(text.startsWith(HAND), text).to.equal(true);
    // no temporary or lock files left behind
    expect((await fsp.readdir(root)).filter((f) => f.startsWith('yanked.txt'))).to.deep.equal(['yanked.txt']);
    // unyanking concurrently removes exactly those lines
    const undo = await Promise.all(Array.from({ length: 20 }, (_, i) => postYank(running.url, { target: `many==1.${i}` }, 'unyank')));
    expect(undo.map((r) => r.status)).to.deep.equal(Array(20).fill(200));
    expect(await fsp.readFile(path.join(root, 'yanked.txt'), 'utf8')).to.equal(HAND);
  });

  it('`pypi-lite yank` processes and HTTP yanks running at once lose nothing', async () => {
    const cli = Array.from({ length: 6 }, (_, i) => run(process.execPath, [BIN, 'yank', root, `many==1.${i}`, '--reason', `cli${i}`]));
    const http = Array.from({ length: 6 }, (_, i) => postYank(running.url, { target: `many==1.${10 + i}`, reason: `http${i}` }));
    const [c, h] = await Promise.all([Promise.all(cli), Promise.all(http)]);
    expect(c.map((r) => [r.code, r.stderr])).to.deep.equal(Array(6).fill([0, '']));
    expect(h.map((r) => r.status)).to.deep.equal(Array(6).fill(200));
    await running.deps.reloadYanks();
    const page = await jsonPage(running.url, 'many');
    const yanked = Object.fromEntries(page.files.filter((f) => f.yanked !== false).map((f) => [f.filename, f.yanked]));
    const want: Record<string, string> = {};
    for (let i = 0; i < 6; i++) {
      want[`many-1.${i}-py3-none-any.whl`] = `cli${i}`;
      want[`many-1.${10 + i}-py3-none-any.whl`] = `http${i}`;
    }
    expect(yanked).to.deep.equal(want);
    expect((await fsp.readFile(path.join(root, 'yanked.txt'), 'utf8')).startsWith(HAND)).to.equal(true);
  });

  for (const [label, sent, shown] of [
    ['U+2028 and U+2029', 'broken\u2028on\u2029Windows', 'broken on Windows'],
    ['NUL, ESC and DEL', 'bad\u0000build \u001b[31mred\u007f!', 'bad build [31mred !'],
    ['CR, LF, tabs and NEL', '\r\n line one\r\nline\ttwo\u0085three \n', 'line one line two three'],
  ] as const) {
    it(`a reason with ${label} is acknowledged as it is then shown (JSON, HTML, yanked.txt)`, async () => {
      const r = await postYank(running.url, { target: 'pypi-lite-demo==1.1.0', reason: sent });
      expect(r.status).to.equal(200);
      expect(await r.text()).to.equal(`Yanked pypi-lite-demo==1.1.0 (reason: ${shown})\n`);
      const page = await jsonPage(running.url, 'pypi-lite-demo');
      expect(page.files.filter((f) => f.filename.includes('1.1.0')).map((f) => f.yanked)).to.deep.equal([shown, shown]);
      const html = await (await fetch(`${running.url}/simple/pypi-lite-demo/`, { headers: { Accept: 'text/html' } })).text();
      expect(anchors(html).filter((a) => a.text.includes('1.1.0')).map((a) => a.attrs['data-yanked'])).to.deep.equal([shown, shown]);
      // a restart (a fresh parse of the file) shows the same
      const text = await fsp.readFile(path.join(root, 'yanked.txt'), 'utf8');
      expect(text.split('\n')).to.include(`pypi-lite-demo==1.1.0 ${shown}`);
    });
  }

  it('pip shows the reason the server acknowledged', async () => {
    const r = await postYank(running.url, { target: 'pypi-lite-demo==2.0.0', reason: 'do not\u2028use' });
    expect(await r.text()).to.equal('Yanked pypi-lite-demo==2.0.0 (reason: do not use)\n');
    const dest = await tempDir('pypi-lite-yank-dl-');
    try {
      const res = await pip(['download', '--no-deps', '--only-binary=:all:', '-d', dest, '--index-url', `${running.url}/simple/`, 'pypi-lite-demo==2.0.0']);
      expect(res.code, res.stderr).to.equal(0);
      expect(res.stdout + res.stderr).to.contain('Reason for being yanked: do not use');
    } finally {
      await fsp.rm(dest, { recursive: true, force: true });
    }
  });
});

describe('`pypi-lite passwd` run concurrently', function () {
  this.timeout(120_000);

  it('keeps every user when 8 processes add users to one file at once', async () => {
    const dir = await tempDir('pypi-lite-passwd-race-');
    try {
      const file = path.join(dir, 'htpasswd');
      await fsp.writeFile(file, '# team accounts\n');
      const users = Array.from({ length: 8 }, (_, i) => `user${i}`);
      const results = await Promise.all(users.map((u) => run(process.execPath, [BIN, 'passwd', file, u, '--password-stdin', '--rounds', '4'], { input: `pw-${u}\n` })));
      expect(results.map((r) => [r.code, r.stderr])).to.deep.equal(Array(8).fill([0, '']));
      const text = await fsp.readFile(file, 'utf8');
      expect(text.startsWith('# team accounts\n')).to.equal(true);
      expect([...parseHtpasswd(text, file).keys()].sort()).to.deep.equal(users);
      expect(await fsp.readdir(dir)).to.deep.equal(['htpasswd']);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
