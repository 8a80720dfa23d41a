// Real pip 23.2 against a real server: resolution from PEP 658 metadata files (without
// downloading the wheels it rejects), selection by Requires-Python (PEP 503 data-requires-python),
// and PEP 592 yanking through the CLI, the HTTP API and hand edits of yanked.txt.

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { metadataText, writeWheel } from './helpers/archives.js';
import { JSON_V1, anchors, type Anchor, type ProjectJson } from './helpers/http.js';
import { BIN, copyExample, pip, run, spawnServer, tempDir, waitHealthy, type RunResult, type Spawned } from './helpers/server.js';

const DEMO = 'pypi-lite-demo';
const demoWheel = (v: string): string => `pypi_lite_demo-${v}-py3-none-any.whl`;
const demoSdist = (v: string): string => `pypi_lite_demo-${v}.tar.gz`;
/** The state written by hand into yanked.txt: one file (with a reason) and one release (without). */
const HAND_EDITED: Record<string, string> = { [demoWheel('2.0.0')]: 'hand edited', [demoWheel('1.0.0')]: '', [demoSdist('1.0.0')]: '' };

/** Paths of the requests the server logged at or after `since` (ms since the epoch). */
function requestsSince(server: Spawned, since: number): string[] {
  return server
    .logs()
    .filter((l) => l.msg === 'request' && typeof l.time === 'number' && l.time >= since && typeof l.path === 'string')
    .map((l) => l.path as string);
}

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number): Promise<{ value: T; ms: number }> {
  const start = Date.now();
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return { value, ms: Date.now() - start };
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The server logs asynchronously: wait until the request log shows `pathname` after `since`. */
async function waitLogged(server: Spawned, since: number, pathname: string): Promise<string[]> {
  const { value } = await waitFor(`a log line for ${pathname}`, () => {
    const reqs = requestsSince(server, since);
    return reqs.includes(pathname) ? reqs : undefined;
  }, 5_000);
  return value;
}

function pipOutput(r: RunResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** `pip download` into a fresh directory; returns the names of the files pip saved. */
async function pipDownload(server: Spawned, args: string[]): Promise<{ files: string[]; result: RunResult }> {
  const dest = await tempDir('pypi-lite-pipdl-');
  try {
    const result = await pip(['download', '--disable-pip-version-check', '--no-input', '-d', dest, '--index-url', `${server.url}/simple/`, ...args]);
    expect(result.code, pipOutput(result)).to.equal(0);
    return { files: (await fsp.readdir(dest)).sort(), result };
  } finally {
    await fsp.rm(dest, { recursive: true, force: true });
  }
}

async function cli(args: string[], input?: string): Promise<RunResult> {
  return run(process.execPath, [BIN, ...args], { input });
}

describe('pip 23.2 and PEP 658 metadata files', function () {
  this.timeout(120_000);
  let root: string;
  let server: Spawned;

  before(async () => {
    root = await copyExample();
    // pick-me 2.0 needs pypi-lite-demo>=2.0, pick-me 1.0 needs pypi-lite-demo<2: asking for
    // `pick-me` together with `pypi-lite-demo<2` makes pip look at pick-me 2.0 and reject it.
    await writeWheel(root, 'pick-me', '2.0', metadataText([
      ['Metadata-Version', '2.1'], ['Name', 'pick-me'], ['Version', '2.0'], ['Summary', 'needs the new demo'],
      ['Requires-Python', '>=3.7'], ['Requires-Dist', 'pypi-lite-demo>=2.0'],
    ]));
    await writeWheel(root, 'pick-me', '1.0', metadataText([
      ['Metadata-Version', '2.1'], ['Name', 'pick-me'], ['Version', '1.0'], ['Summary', 'needs the old demo'],
      ['Requires-Python', '>=3.7'], ['Requires-Dist', 'pypi-lite-demo<2'],
    ]));
    server = await spawnServer(['--disable-fallback', root]);
    await waitHealthy(server.url, { idle: true });
  });

  after(async () => {
    await server?.stop();
    if (root) await fsp.rm(root, { recursive: true, force: true });
  });

  it('resolves from .metadata files and downloads only the wheels it installs', async () => {
    const since = Date.now();
    const { files, result } = await pipDownload(server, ['--only-binary=:all:', 'pick-me', `${DEMO}<2`]);
    expect(files, pipOutput(result)).to.deep.equal(['pick_me-1.0-py3-none-any.whl', demoWheel('1.1.0')]);

    const reqs = await waitLogged(server, since, `/packages/${demoWheel('1.1.0')}`);
    await waitLogged(server, since, '/packages/pick_me-1.0-py3-none-any.whl');
    const seen = `requests seen:\n${reqs.join('\n')}`;
    // pip learnt the dependencies of both pick-me releases from their metadata files...
    expect(reqs, seen).to.include('/packages/pick_me-2.0-py3-none-any.whl.metadata');
    expect(reqs, seen).to.include('/packages/pick_me-1.0-py3-none-any.whl.metadata');
    expect(reqs, seen).to.include(`/packages/${demoWheel('1.1.0')}.metadata`);
    // ...and never touched the archives of what it rejected or never needed
    expect(reqs, seen).not.to.include('/packages/pick_me-2.0-py3-none-any.whl');
    for (const v of ['1.0.0', '2.0.0']) {
      expect(reqs, seen).not.to.include(`/packages/${demoWheel(v)}`);
      expect(reqs, seen).not.to.include(`/packages/${demoSdist(v)}`);
    }
    // no sdist was fetched at all
    expect(reqs.filter((p) => p.endsWith('.tar.gz')), seen).to.deep.equal([]);
  });

  it('picks the newest release whose Requires-Python allows the target Python', async () => {
    const cases: { python: string[]; expected: string; unseen: string[] }[] = [
      { python: ['--python-version', '3.7'], expected: '1.1.0', unseen: ['2.0.0'] },
      { python: ['--python-version', '3.6'], expected: '1.0.0', unseen: ['2.0.0', '1.1.0'] },
      { python: [], expected: '2.0.0', unseen: [] },
    ];
    for (const c of cases) {
      const since = Date.now();
      const { files, result } = await pipDownload(server, ['--no-deps', '--only-binary=:all:', ...c.python, DEMO]);
      expect(files, `${c.python.join(' ') || 'default python'}\n${pipOutput(result)}`).to.deep.equal([demoWheel(c.expected)]);
      const reqs = await waitLogged(server, since, `/packages/${demoWheel(c.expected)}`);
      // data-requires-python lets pip skip the others without fetching anything of them
      for (const v of c.unseen) {
        expect(reqs.filter((p) => p.includes(`-${v}`)), `${c.python.join(' ')}: requests seen:\n${reqs.join('\n')}`).to.deep.equal([]);
      }
    }
  });
});

describe('yanking (PEP 592) with pip, the CLI and the HTTP API', function () {
  this.timeout(120_000);
  let root: string;
  let scratch: string;
  let htpasswd: string;
  let server: Spawned;

  async function startServer(): Promise<Spawned> {
    const s = await spawnServer(['--disable-fallback', '-P', htpasswd, root]);
    await waitHealthy(s.url, { idle: true });
    return s;
  }

  async function htmlAnchors(): Promise<Anchor[]> {
    const r = await fetch(`${server.url}/simple/${DEMO}/`, { headers: { Accept: 'text/html' } });
    expect(r.status).to.equal(200);
    return anchors(await r.text());
  }

  /** filename -> data-yanked value (undefined: not yanked), from the HTML page. */
  async function htmlYanks(): Promise<Record<string, string | undefined>> {
    const out: Record<string, string | undefined> = {};
    for (const a of await htmlAnchors()) out[a.text] = a.attrs['data-yanked'];
    return out;
  }

  async function jsonYanks(): Promise<Record<string, boolean | string>> {
    const r = await fetch(`${server.url}/simple/${DEMO}/`, { headers: { Accept: JSON_V1 } });
    expect(r.status).to.equal(200);
    const page = (await r.json()) as ProjectJson;
    const out: Record<string, boolean | string> = {};
    for (const f of page.files) out[f.filename] = f.yanked;
    return out;
  }

  /** Expected yank state of all six demo files (html: attribute value or undefined). */
  function expectedHtml(yanked: Record<string, string>): Record<string, string | undefined> {
    const out: Record<string, string | undefined> = {};
    for (const v of ['1.0.0', '1.1.0', '2.0.0']) for (const f of [demoWheel(v), demoSdist(v)]) out[f] = yanked[f];
    return out;
  }

  function expectedJson(yanked: Record<string, string>): Record<string, boolean | string> {
    const out: Record<string, boolean | string> = {};
    for (const [f, v] of Object.entries(expectedHtml(yanked))) out[f] = v === undefined ? false : v === '' ? true : v;
    return out;
  }

  /** Wait (at most ~2 s, the promised delay) until the HTML page shows exactly this yank state. */
  async function waitYankState(yanked: Record<string, string>, what: string): Promise<number> {
    const want = expectedHtml(yanked);
    let last: Record<string, string | undefined> = {};
    try {
      const { ms } = await waitFor(what, async () => {
        last = await htmlYanks();
        const keys = Object.keys(want);
        return Object.keys(last).length === keys.length && keys.every((k) => k in last && last[k] === want[k]);
      }, 2_500);
      return ms;
    } catch {
      expect(last, `${what}: the page did not show the yank state within 2.5 s`).to.deep.equal(want);
      return -1;
    }
  }

  const auth = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

  before(async () => {
    root = await copyExample();
    scratch = await tempDir('pypi-lite-yank-');
    htpasswd = path.join(scratch, 'htpasswd');
    const r = await cli(['passwd', htpasswd, 'alice', '--password-stdin', '--rounds', '4'], 'wonderland\n');
    expect(r.code, r.stderr).to.equal(0);
    server = await startServer();
  });

  after(async () => {
    await server?.stop();
    for (const d of [root, scratch]) if (d) await fsp.rm(d, { recursive: true, force: true });
  });

  it('`pypi-lite yank` on a running server shows on the HTML and JSON pages within 2 s', async () => {
    expect(await htmlYanks()).to.deep.equal(expectedHtml({}));
    const r = await cli(['yank', root, `${DEMO}==2.0.0`, '--reason', 'broken']);
    expect(r.code, r.stderr).to.equal(0);
    const state = { [demoWheel('2.0.0')]: 'broken', [demoSdist('2.0.0')]: 'broken' };
    const ms = await waitYankState(state, 'the CLI yank');
    expect(ms).to.be.at.most(2_500);
    const html = await (await fetch(`${server.url}/simple/${DEMO}/`)).text();
    expect(html).to.contain('data-yanked="broken"');
    expect(await jsonYanks()).to.deep.equal(expectedJson(state));
    // the Warehouse JSON API agrees, and its "latest" skips the yanked release
    const j = (await (await fetch(`${server.url}/pypi/${DEMO}/json`)).json()) as {
      info: { version: string };
      releases: Record<string, { yanked: boolean; yanked_reason: string | null }[]>;
    };
    expect(j.info.version).to.equal('1.1.0');
    expect(j.releases['2.0.0'].map((f) => [f.yanked, f.yanked_reason])).to.deep.equal([[true, 'broken'], [true, 'broken']]);
    expect(j.releases['1.1.0'].map((f) => [f.yanked, f.yanked_reason])).to.deep.equal([[false, null], [false, null]]);
  });

  it('pip skips the yanked release unless it is pinned, and warns when it is', async () => {
    const unpinned = await pipDownload(server, ['--no-deps', '--only-binary=:all:', DEMO]);
    expect(unpinned.files, pipOutput(unpinned.result)).to.deep.equal([demoWheel('1.1.0')]);

    const pinned = await pipDownload(server, ['--no-deps', '--only-binary=:all:', `${DEMO}==2.0.0`]);
    expect(pinned.files, pipOutput(pinned.result)).to.deep.equal([demoWheel('2.0.0')]);
    const out = pinned.result.stdout + pinned.result.stderr;
    expect(out, pipOutput(pinned.result)).to.match(/yanked version/i);
    expect(out, pipOutput(pinned.result)).to.match(/Reason for being yanked: broken/);
  });

  it('`pypi-lite unyank` restores the release', async () => {
    const r = await cli(['unyank', root, `${DEMO}==2.0.0`]);
    expect(r.code, r.stderr).to.equal(0);
    await waitYankState({}, 'the CLI unyank');
    expect(await jsonYanks()).to.deep.equal(expectedJson({}));
    const again = await cli(['unyank', root, `${DEMO}==2.0.0`]);
    expect(again.code, 'unyanking what is not yanked fails').to.equal(2);
    const dl = await pipDownload(server, ['--no-deps', '--only-binary=:all:', DEMO]);
    expect(dl.files, pipOutput(dl.result)).to.deep.equal([demoWheel('2.0.0')]);
  });

  it('POST /api/yank and /api/unyank need credentials and take effect at once', async () => {
    // a reason with characters HTML must escape
    const reason = 'bad "build" <b> & co';
    const body = JSON.stringify({ target: `${DEMO}==1.1.0`, reason });
    const json = { 'Content-Type': 'application/json' };
    const anon = await fetch(`${server.url}/api/yank`, { method: 'POST', headers: json, body });
    expect(anon.status).to.equal(401);
    expect(anon.headers.get('www-authenticate') ?? '').to.match(/^Basic /i);
    const wrong = await fetch(`${server.url}/api/yank`, { method: 'POST', headers: { ...json, Authorization: auth('alice', 'nope') }, body });
    expect(wrong.status).to.be.oneOf([401, 403]);
    // nothing changed
    expect(await htmlYanks()).to.deep.equal(expectedHtml({}));

    const ok = await fetch(`${server.url}/api/yank`, { method: 'POST', headers: { ...json, Authorization: auth('alice', 'wonderland') }, body });
    expect(ok.status, await ok.clone().text()).to.equal(200);
    const state = { [demoWheel('1.1.0')]: reason, [demoSdist('1.1.0')]: reason };
    // the yank file was re-read before the answer: no polling delay
    expect(await htmlYanks()).to.deep.equal(expectedHtml(state));
    expect(await jsonYanks()).to.deep.equal(expectedJson(state));
    // ...and written to the root's yanked.txt, where it can be seen and edited
    const text = await fsp.readFile(path.join(root, 'yanked.txt'), 'utf8');
    expect(text.split('\n')).to.include(`${DEMO}==1.1.0 ${reason}`);
    const html = await (await fetch(`${server.url}/simple/${DEMO}/`)).text();
    expect(html).to.contain('data-yanked="bad &quot;build&quot; &lt;b&gt; &amp; co"');

    const missing = await fetch(`${server.url}/api/yank`, {
      method: 'POST',
      headers: { ...json, Authorization: auth('alice', 'wonderland') },
      body: JSON.stringify({ target: `${DEMO}==9.9`, reason: 'x' }),
    });
    expect(missing.status).to.equal(404);

    const anonUnyank = await fetch(`${server.url}/api/unyank`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ target: `${DEMO}==1.1.0` }).toString(),
    });
    expect(anonUnyank.status).to.equal(401);
    const unyank = await fetch(`${server.url}/api/unyank`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: auth('alice', 'wonderland') },
      body: new URLSearchParams({ target: `${DEMO}==1.1.0` }).toString(),
    });
    expect(unyank.status, await unyank.clone().text()).to.equal(200);
    expect(await htmlYanks()).to.deep.equal(expectedHtml({}));
  });

  it('a release target matches every PEP 440-equal spelling of the version (==2.0 is 2.0.0)', async () => {
    const yank = await fetch(`${server.url}/api/yank`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: auth('alice', 'wonderland') },
      body: JSON.stringify({ target: 'PyPI_Lite.Demo==2.0', reason: 'short spelling' }),
    });
    expect(yank.status, await yank.clone().text()).to.equal(200);
    const state = { [demoWheel('2.0.0')]: 'short spelling', [demoSdist('2.0.0')]: 'short spelling' };
    // the server answered "Yanked": the release must be yanked now, not merely written down
    expect(await htmlYanks(), 'POST /api/yank {"target": "PyPI_Lite.Demo==2.0"}').to.deep.equal(expectedHtml(state));
    const dl = await pipDownload(server, ['--no-deps', '--only-binary=:all:', DEMO]);
    expect(dl.files, pipOutput(dl.result)).to.deep.equal([demoWheel('1.1.0')]);
    // and the CLI removes it under yet another spelling
    const r = await cli(['unyank', root, `${DEMO}==2.0.0.0`]);
    expect(r.code, r.stderr).to.equal(0);
    await waitYankState({}, 'the CLI unyank of ==2.0.0.0');
  });

  it('picks up hand edits of yanked.txt live (file and release entries, empty reasons)', async () => {
    await fsp.writeFile(
      path.join(root, 'yanked.txt'),
      `# edited by hand\n\n${demoWheel('2.0.0')}   hand edited\n${DEMO}==1.0.0\n`,
    );
    await waitYankState(HAND_EDITED, 'the hand-edited yanked.txt');
    // PEP 592 in HTML: an empty data-yanked attribute; PEP 691: `true`
    const html = await (await fetch(`${server.url}/simple/${DEMO}/`)).text();
    expect(html).to.match(new RegExp(`href="[^"]*${demoSdist('1.0.0').replace(/\./g, '\\.')}#sha256=[0-9a-f]{64}"[^>]* data-yanked=""`));
    expect(await jsonYanks()).to.deep.equal(expectedJson(HAND_EDITED));
  });

  it('the yank state survives a restart', async () => {
    const code = await server.stop();
    expect(code).to.equal(0);
    server = await startServer();
    expect(await htmlYanks()).to.deep.equal(expectedHtml(HAND_EDITED));
    expect(await jsonYanks()).to.deep.equal(expectedJson(HAND_EDITED));
    // and pip still honours it: the 2.0.0 wheel is yanked, so 1.1.0 is the newest wheel
    const dl = await pipDownload(server, ['--no-deps', '--only-binary=:all:', DEMO]);
    expect(dl.files, pipOutput(dl.result)).to.deep.equal([demoWheel('1.1.0')]);
  });
});

describe('pip 23.0.1 (reads only the pre-PEP 714 metadata name) and the JSON Simple API', function () {
  this.timeout(120_000);
  // Debian's python3-pip-whl (.ci/install-system-deps), run from the wheel with Debian's python3.
  const PIP_23_0_1 = '/usr/share/python-wheels/pip-23.0.1-py3-none-any.whl/pip';
  let root: string;
  let server: Spawned;

  before(async () => {
    root = await copyExample();
    server = await spawnServer(['--disable-fallback', root]);
    await waitHealthy(server.url, { idle: true });
  });

  after(async () => {
    await server?.stop();
    if (root) await fsp.rm(root, { recursive: true, force: true });
  });

  // pip 22.3 to 23.1 ask for JSON and parse a `dist-info-metadata` key there as if it were the
  // HTML attribute's string: any JSON value (a hashes dict, `true`) makes them crash with a
  // TypeError. That is why PEP 714 renamed the key and why PyPI never emits it in JSON; so the
  // JSON pages carry only `core-metadata`, and these pips download whole wheels, as with PyPI.
  it('installs from the JSON pages without crashing (they carry no dist-info-metadata key)', async () => {
    const page = await fetch(`${server.url}/simple/${DEMO}/`, { headers: { Accept: JSON_V1 } });
    const body = (await page.json()) as ProjectJson;
    expect(body.files.some((f) => typeof f['core-metadata'] === 'object'), 'the page offers PEP 658 metadata').to.equal(true);
    for (const f of body.files) expect(f, f.filename).not.to.have.property('dist-info-metadata');

    const dest = await tempDir('pypi-lite-pip2301-');
    try {
      const since = Date.now();
      const r = await run('/usr/bin/python3', [PIP_23_0_1, 'download', '--no-deps', '--only-binary=:all:', '-d', dest, '--index-url', `${server.url}/simple/`, `${DEMO}==1.1.0`]);
      expect(r.code, pipOutput(r)).to.equal(0);
      expect(r.stdout + r.stderr, pipOutput(r)).to.not.contain('Traceback');
      expect(await fsp.readdir(dest)).to.deep.equal([demoWheel('1.1.0')]);
      const reqs = await waitLogged(server, since, `/packages/${demoWheel('1.1.0')}`);
      expect(reqs).to.include(`/simple/${DEMO}/`);
    } finally {
      await fsp.rm(dest, { recursive: true, force: true });
    }
  });
});
