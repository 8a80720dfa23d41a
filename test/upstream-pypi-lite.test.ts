// The upstream proxy in front of a second pypi-lite (PEP 691 JSON, PEP 658 metadata, PEP 592
// yanks): real pip through the proxy sees the same yanks, requires-python and .metadata as it
// would from the upstream itself, and a private name is served from the local files only.

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { editYankFile } from '../lib/catalog/yank.js';
import { makeConfig } from './helpers/config.js';
import { startServer, type RunningServer } from '../lib/server.js';
import { JSON_V1, sha256, sleep, type ProjectJson } from './helpers/http.js';
import { copyExample, EXAMPLE, pip, tempDir, describeRun } from './helpers/server.js';

interface LogLine {
  msg: string;
  project?: string;
  path?: string;
  status?: number;
}


async function start(config: Parameters<typeof startServer>[0], lines: LogLine[]): Promise<RunningServer> {
  const s = await startServer(config, pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as LogLine) }));
  await s.loaded;
  await s.indexer.whenIdle();
  return s;
}

async function dists(target: string): Promise<string[]> {
  return (await fsp.readdir(target)).filter((f) => f.endsWith('.dist-info')).sort();
}

describe('upstream proxy in front of another pypi-lite (PEP 691/658/592)', function () {
  this.timeout(120_000);
  let work: string;
  let upRoot: string;
  let upstream: RunningServer;
  let proxy: RunningServer;
  let privateProxy: RunningServer;
  const upLines: LogLine[] = [];
  const proxyLines: LogLine[] = [];
  const privateLines: LogLine[] = [];
  const upFiles = () => upLines.filter((l) => l.msg === 'request' && typeof l.path === 'string' && l.path.startsWith('/packages/')).map((l) => l.path as string);

  before(async () => {
    work = await tempDir('pypi-lite-up2-');
    upRoot = await copyExample();
    await editYankFile(upRoot, 'pypi-lite-demo==1.1.0', { yank: true, reason: 'broken build' });
    upstream = await start(makeConfig({ roots: [upRoot], logLevel: 'info' }), upLines);
    const empty = path.join(work, 'empty');
    await fsp.mkdir(empty);
    proxy = await start(makeConfig({ roots: [empty], logLevel: 'info', upstream: `${upstream.url}/simple/`, upstreamCache: path.join(work, 'cache1') }), proxyLines);
    // A private pypi-lite-demo 1.0.0 only: the upstream's 1.1.0 and 2.0.0 must never be used.
    const priv = path.join(work, 'private');
    await fsp.mkdir(priv);
    await fsp.copyFile(path.join(EXAMPLE, 'pypi_lite_demo-1.0.0-py3-none-any.whl'), path.join(priv, 'pypi_lite_demo-1.0.0-py3-none-any.whl'));
    privateProxy = await start(makeConfig({ roots: [priv], logLevel: 'info', upstream: `${upstream.url}/simple/`, upstreamCache: path.join(work, 'cache2') }), privateLines);
  });

  after(async () => {
    await proxy?.close();
    await privateProxy?.close();
    await upstream?.close();
    for (const d of [work, upRoot]) if (d) await fsp.rm(d, { recursive: true, force: true });
  });

  it('passes yanks, requires-python, sizes, upload times and core-metadata through in JSON', async () => {
    const direct = (await (await fetch(`${upstream.url}/simple/pypi-lite-demo/`, { headers: { accept: JSON_V1 } })).json()) as ProjectJson;
    const proxied = (await (await fetch(`${proxy.url}/simple/pypi-lite-demo/`, { headers: { accept: JSON_V1 } })).json()) as ProjectJson;
    expect(proxied.versions).to.deep.equal(direct.versions);
    expect(proxied.files.map((f) => ({ ...f, url: '' }))).to.deep.equal(direct.files.map((f) => ({ ...f, url: '' })));
    expect(proxied.files.find((f) => f.filename === 'pypi_lite_demo-1.1.0-py3-none-any.whl')!.yanked).to.equal('broken build');
    for (const f of proxied.files) expect(f.url).to.equal(`../../packages/~upstream/pypi-lite-demo/${f.filename}`);
  });

  it('pip installs through the proxy using PEP 658 metadata, skipping the yanked release', async () => {
    const target = path.join(work, 't1');
    const r = await pip(['install', '--no-cache-dir', '--target', target, '--index-url', `${proxy.url}/simple/`, 'pypi-lite-extras', 'pypi-lite-demo<2']);
    expect(r.code, describeRun(r)).to.equal(0);
    // 1.1.0 is yanked: pip takes 1.0.0 for "<2".
    expect(await dists(target)).to.deep.equal(['pypi_lite_demo-1.0.0.dist-info', 'pypi_lite_extras-0.1.0.dist-info']);
    const served = proxyLines.filter((l) => l.msg === 'request' && l.status === 200 && l.path?.endsWith('.metadata')).map((l) => l.path);
    expect(served).to.include('/packages/~upstream/pypi-lite-extras/pypi_lite_extras-0.1.0-py3-none-any.whl.metadata');
    const name = 'pypi_lite_demo-2.0.0-py3-none-any.whl.metadata';
    const viaProxy = Buffer.from(await (await fetch(`${proxy.url}/packages/~upstream/pypi-lite-demo/${name}`)).arrayBuffer());
    const fromUp = Buffer.from(await (await fetch(`${upstream.url}/packages/${name}`)).arrayBuffer());
    expect(viaProxy.length).to.be.above(0);
    expect(sha256(viaProxy)).to.equal(sha256(fromUp));
  });

  it('installs a private name from the local files only, never fetching the higher upstream versions', async () => {
    const before = upFiles().length;
    const target = path.join(work, 't2');
    const r = await pip(['install', '--no-cache-dir', '--target', target, '--index-url', `${privateProxy.url}/simple/`, 'pypi-lite-demo']);
    expect(r.code, describeRun(r)).to.equal(0);
    expect(await dists(target)).to.deep.equal(['pypi_lite_demo-1.0.0.dist-info']);
    const page = (await (await fetch(`${privateProxy.url}/simple/pypi-lite-demo/`, { headers: { accept: JSON_V1 } })).json()) as ProjectJson;
    expect(page.versions).to.deep.equal(['1.0.0']);
    expect(upFiles().slice(before).filter((p) => p.includes('pypi_lite_demo'))).to.deep.equal([]);
    for (let i = 0; i < 100 && !privateLines.some((l) => l.project === 'pypi-lite-demo' && /dependency confusion/.test(l.msg)); i++) await sleep(20);
    expect(privateLines.some((l) => l.project === 'pypi-lite-demo' && /dependency confusion/.test(l.msg))).to.equal(true);
  });
});
