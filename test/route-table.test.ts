// The route table (lib/routes.ts) is what a newcomer reads to learn who answers a URL and what
// access it needs. These tests are driven by the DECLARED table, so a new route is covered as
// soon as it is declared: for every route and every -a mode (with a password file), through the
// server as users reach it (the fast path in front of Express included), an anonymous request
// gets 401 exactly when the declared access is protected by the mode, a user gets past access
// control, and a wrong password gets 403 wherever credentials are asked. And every declared
// path answers a method that no route takes there with 405 and `Allow`.

import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { parseAuthenticate, type AuthAction, type Config } from '../lib/core/config.js';
import { makeConfig } from './helpers/config.js';
import { compilePath, type Access, type Method, type Route } from '../lib/routes.js';
import { startServer, type RunningServer } from '../lib/server.js';
import { copyExample, tempDir } from './helpers/server.js';

const USER = 'alice';
const PASSWORD = 'Alice-s3cret-Pw';
const MODES = ['.', 'list', 'download', 'update', 'download,list', 'update,download,list'];

/** A value for each path parameter of the table (a new parameter name needs one here). */
const SAMPLES: Record<string, string> = {
  project: 'pypi-lite-demo',
  version: '1.0.0',
  path: 'pypi_lite_demo-1.0.0-py3-none-any.whl',
};

/** A URL that the route's path pattern matches. */
function sampleUrl(pattern: string): string {
  const url = pattern
    .replace(/\/[:*](\w+)/g, (_m, name: string) => {
      const v = SAMPLES[name];
      if (v === undefined) throw new Error(`no sample value for the path parameter ${name} of ${pattern}: add one to SAMPLES`);
      return `/${v}`;
    })
    .replace('{/}', '/');
  expect(compilePath(pattern).test(url), `${url} matches ${pattern}`).to.equal(true);
  return url;
}

/** The rule, written out independently of lib/routes.ts: does this access need a user under -a? */
function protectedBy(access: Access, mode: Set<AuthAction>): boolean {
  switch (access) {
    case 'open':
      return false;
    case 'list':
      return mode.has('list');
    case 'download':
      return mode.has('download');
    case 'list+download':
      return mode.has('list') || mode.has('download');
    case 'update':
      return true; // with a password file, always
  }
}

const auth = (user: string, password: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });

interface Answer {
  status: number;
  statusText: string;
  allow: string | null;
  body: string;
}

async function send(url: string, method: string, headers: Record<string, string> = {}): Promise<Answer> {
  const body = method === 'GET' || method === 'HEAD' ? undefined : 'x=1';
  const res = await fetch(url, { method, headers: { ...(body ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {}), ...headers }, body, redirect: 'manual' });
  return { status: res.status, statusText: res.statusText, allow: res.headers.get('allow'), body: await res.text() };
}

function requestsOf(route: Route): { method: string; url: string }[] {
  const url = sampleUrl(route.path);
  return route.methods.flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m])).map((method) => ({ method, url }));
}

describe('the route table', function () {
  this.timeout(120_000);
  let work: string;
  let htpasswd: string;
  let root: string;

  before(async function () {
    work = await tempDir('pypi-lite-routes-');
    htpasswd = path.join(work, 'htpasswd');
    // {SHA}: a hash that costs nothing to check, so that the many checks below stay fast.
    await fsp.writeFile(htpasswd, `${USER}:{SHA}${createHash('sha1').update(PASSWORD).digest('base64')}\n`);
    root = await copyExample();
  });
  after(async function () {
    for (const d of [work, root]) await fsp.rm(d, { recursive: true, force: true });
  });

  /** A server as users reach it (fast path included) and the very table its app mounted. */
  async function serve(config: Config): Promise<{ running: RunningServer; routes: readonly Route[] }> {
    const running = await startServer(config, pino({ level: 'silent' }));
    await running.loaded;
    await running.indexer.whenIdle();
    return { running, routes: running.routes };
  }

  // The web UI's routes, the welcome page instead (--no-ui), and the proxy's file route
  // (--upstream: its upstream is never reached here; the sample paths are local or malformed).
  const VARIANTS: { label: string; ui: boolean; upstream: boolean }[] = [
    { label: '', ui: true, upstream: false },
    { label: ' --no-ui', ui: false, upstream: false },
    { label: ' --upstream', ui: true, upstream: true },
  ];
  for (const { label, ui, upstream } of VARIANTS) {
    for (const a of MODES) {
      it(`-P htpasswd -a ${a}${label}: every route asks exactly for the access it declares`, async function () {
        const proxy = upstream ? { upstream: 'http://127.0.0.1:9/simple/', upstreamCache: path.join(work, `upstream-${a}`) } : {};
        const config = makeConfig({ roots: [root], passwords: htpasswd, authenticate: parseAuthenticate(a), ui, ...proxy });
        const { running, routes } = await serve(config);
        const mode = config.authenticate;
        const wrong: string[] = [];
        try {
          expect(routes.length).to.be.above(10);
          expect(routes.some((r) => r.name === 'upstream'), 'the proxy route is declared exactly with --upstream').to.equal(upstream);
          for (const route of routes) {
            const asks = protectedBy(route.access, mode);
            for (const { method, url } of requestsOf(route)) {
              const what = `${method} ${url} (${route.name}, declared ${route.access})`;
              const anonymous = await send(`${running.url}${url}`, method);
              if (asks ? anonymous.status !== 401 : anonymous.status === 401 || anonymous.status === 403) {
                wrong.push(`${what}: anonymous got ${anonymous.status} ${anonymous.statusText}, expected ${asks ? '401' : 'no 401/403'}`);
              }
              const bad = await send(`${running.url}${url}`, method, auth(USER, 'Wr0ng-Guess-Xyz'));
              if (asks ? bad.status !== 403 : bad.status === 401 || bad.status === 403) {
                wrong.push(`${what}: a wrong password got ${bad.status} ${bad.statusText}, expected ${asks ? '403' : 'no 401/403'}`);
              }
              const user = await send(`${running.url}${url}`, method, auth(USER, PASSWORD));
              if (user.status === 401 || user.status === 403 || user.status >= 500) wrong.push(`${what}: the user got ${user.status} ${user.statusText}`);
            }
          }
        } finally {
          await running.close();
        }
        expect(wrong, wrong.join('\n')).to.deep.equal([]);
      });
    }
  }

  describe('405 Method Not Allowed', function () {
    const OTHER_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];

    it('every declared path: a method no route takes there gets 405 with Allow and the reason (no -P)', async function () {
      const config = makeConfig({ roots: [root] });
      const { running, routes } = await serve(config);
      const wrong: string[] = [];
      let checked = 0;
      try {
        const byPath = new Map<string, Set<Method>>();
        for (const r of routes) if (!r.fallback) byPath.set(r.path, new Set([...(byPath.get(r.path) ?? []), ...r.methods]));
        for (const [pattern, methods] of byPath) {
          const allow = [...methods, ...(methods.has('GET') ? ['HEAD'] : [])].sort().join(', ');
          const url = sampleUrl(pattern);
          for (const method of OTHER_METHODS.filter((m) => !allow.split(', ').includes(m))) {
            // A GET that the bare /<project>/ redirect may take (/upload is a valid project name) is its own.
            if ((method === 'GET' || method === 'HEAD') && routes.some((r) => r.fallback && compilePath(r.path).test(url))) continue;
            const got = await send(`${running.url}${url}`, method);
            checked++;
            const reason = `Method Not Allowed: ${method} ${url} (allowed: ${allow})`;
            if (got.status !== 405 || got.allow !== allow || got.statusText !== reason || (method !== 'HEAD' && got.body !== `405 ${reason}\n`)) {
              wrong.push(`${method} ${url}: ${got.status} ${got.statusText} Allow: ${got.allow}, expected 405 ${reason} Allow: ${allow}`);
            }
          }
        }
      } finally {
        await running.close();
      }
      expect(wrong, wrong.join('\n')).to.deep.equal([]);
      expect(checked).to.be.above(50);
    });

    it('the examples: POST /simple/, PUT /packages/<file>, DELETE /pypi/<project>/json, GET /legacy/; GET / stays the home page', async function () {
      const { running } = await serve(makeConfig({ roots: [root] }));
      try {
        const cases: [string, string, string][] = [
          ['POST', '/simple/', 'GET, HEAD'],
          ['PUT', '/packages/pypi_lite_demo-1.0.0-py3-none-any.whl', 'GET, HEAD'],
          ['DELETE', '/pypi/pypi-lite-demo/json', 'GET, HEAD'],
          ['GET', '/legacy/', 'POST'],
          ['GET', '/api/yank', 'POST'],
          ['PUT', '/', 'GET, HEAD, POST'],
        ];
        for (const [method, url, allow] of cases) {
          const got = await send(`${running.url}${url}`, method);
          expect(got.status, `${method} ${url}`).to.equal(405);
          expect(got.allow).to.equal(allow);
          expect(got.statusText).to.equal(`Method Not Allowed: ${method} ${url} (allowed: ${allow})`);
        }
        expect((await send(`${running.url}/`, 'GET')).status).to.equal(200);
        // Not a path of the table: still 404.
        expect((await send(`${running.url}/nothing/here`, 'POST')).status).to.equal(404);
        expect((await send(`${running.url}/simple/pypi-lite-demo/files/x`, 'PUT')).status).to.equal(404);
      } finally {
        await running.close();
      }
    });

    it('with -P, an anonymous writer gets 401 before any 405; a user gets the 405; reads are not asked', async function () {
      const { running } = await serve(makeConfig({ roots: [root], passwords: htpasswd }));
      try {
        for (const [method, url] of [['POST', '/simple/'], ['PUT', '/packages/pypi_lite_demo-1.0.0-py3-none-any.whl'], ['DELETE', '/pypi/pypi-lite-demo/json']]) {
          const anonymous = await send(`${running.url}${url}`, method);
          expect(anonymous.status, `${method} ${url}`).to.equal(401);
          expect(anonymous.allow).to.equal(null);
          const user = await send(`${running.url}${url}`, method, auth(USER, PASSWORD));
          expect(user.status, `${method} ${url} as a user`).to.equal(405);
          expect(user.allow).to.equal('GET, HEAD');
        }
        const get = await send(`${running.url}/legacy/`, 'GET');
        expect(get.status).to.equal(405);
        expect(get.allow).to.equal('POST');
      } finally {
        await running.close();
      }
    });
  });
});
