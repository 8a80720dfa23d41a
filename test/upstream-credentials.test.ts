// Found by hand while verifying issue 11 as a new user: company mirrors (Artifactory, Nexus,
// devpi with ACLs) are reached as https://user:token@mirror/simple/, the form pip itself takes in
// --index-url. `pypi-lite serve --upstream http://user:token@host/simple/` starts, but every
// page fetch fails (fetch() refuses a URL with credentials), and the failure message, with the
// token in it, goes to anonymous clients in the 502 reason phrase and in /health.

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { startServer, type RunningServer } from '../lib/server.js';
import { metadataText, writeWheel } from './helpers/archives.js';
import { request } from './helpers/http.js';
import { makeConfig } from './helpers/config.js';
import { tempDir } from './helpers/server.js';
import { StaticUpstream } from './helpers/upstream.js';

const USER = 'mirror-user';
const TOKEN = 'Tok3n-s3cret-value';

describe('an upstream index reached with credentials in its URL', function () {
  this.timeout(60_000);
  const up = new StaticUpstream();
  let work: string;
  let running: RunningServer;

  before(async () => {
    work = await tempDir('pypi-lite-upstream-creds-');
    const root = path.join(work, 'root');
    const build = path.join(work, 'build');
    await fsp.mkdir(root);
    await fsp.mkdir(build);
    const file = await writeWheel(build, 'beta', '1.0', metadataText([['Metadata-Version', '2.1'], ['Name', 'beta'], ['Version', '1.0']]));
    up.add('beta', { filename: path.basename(file), bytes: await fsp.readFile(file) });
    await up.start();
    const upstream = `http://${USER}:${TOKEN}@127.0.0.1:${up.port}/simple/`;
    const config = makeConfig({ roots: [root], upstream, upstreamCache: path.join(work, 'cache'), upstreamTimeout: 2 });
    running = await startServer(config, pino({ level: 'silent' }));
    await running.loaded;
  });
  after(async () => {
    await running.close();
    await up.stop();
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('fetches its pages with Basic auth, and never shows the token to clients', async () => {
    const page = await request(running.url, '/simple/beta/');
    const health = await request(running.url, '/health');
    const leaks = [`${page.status} ${page.body.toString()}`, health.body.toString()].filter((s) => s.includes(TOKEN));
    expect(leaks, 'answers with the token in them').to.deep.equal([]);
    expect(page.status, page.body.toString()).to.equal(200);
    const sent = up.seen('/simple/beta/').map((r) => r.headers.authorization);
    expect(sent).to.include(`Basic ${Buffer.from(`${USER}:${TOKEN}`).toString('base64')}`);
  });
});
