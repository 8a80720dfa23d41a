import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { copyExample, pip, spawnServer, waitHealthy, type Spawned } from './helpers/server.js';
import { DISPLAY_NAMES, EXAMPLE_FILES, EXAMPLE_PROJECTS, basename, distFilesOnDisk, filesOf, hashesIn } from './helpers/example.js';
import { HTML_V1, JSON_V1, PIP_ACCEPT, UV_ACCEPT, anchors, mediaType, request, sha256, varyFields, type ProjectJson } from './helpers/http.js';

interface IndexJson {
  meta: { 'api-version': string };
  projects: { name: string }[];
}

const normalize = (n: string) => n.replace(/[-_.]+/g, '-').toLowerCase();

async function get(url: string, accept?: string, extra: Record<string, string> = {}): Promise<Response> {
  const headers: Record<string, string> = { ...extra };
  if (accept !== undefined) headers.accept = accept;
  return fetch(url, { headers, redirect: 'manual' });
}

/** Where a redirect points, as path + query (the server may send a relative Location). */
function target(res: Response, base: string): string {
  const loc = res.headers.get('location');
  expect(loc, `status ${res.status} without Location`).to.be.a('string');
  const u = new URL(loc!, base);
  return `${u.pathname}${u.search}`;
}

describe('Simple API over HTTP (real server)', function () {
  this.timeout(60_000);
  let root: string;
  let srv: Spawned;
  let hashes: Map<string, string>;

  before(async () => {
    root = await copyExample();
    hashes = await hashesIn(root);
    srv = await spawnServer(['--disable-fallback', root]);
    await waitHealthy(srv.url, { idle: true });
  });

  after(async () => {
    await srv?.stop();
    if (root) await fsp.rm(root, { recursive: true, force: true });
  });

  it('serves exactly the sample files (sanity check of the test data)', async () => {
    expect(await distFilesOnDisk(root)).to.deep.equal(EXAMPLE_FILES.map((f) => f.relPath).sort());
  });

  describe('/simple/ (project list)', () => {
    it('lists every project in HTML with links to its normalized page', async () => {
      const res = await get(`${srv.url}/simple/`);
      expect(res.status).to.equal(200);
      expect(mediaType(res.headers.get('content-type'))).to.equal('text/html');
      const html = await res.text();
      expect(html).to.match(/<meta name="pypi:repository-version" content="1\.\d+">/);
      const as = anchors(html);
      const hrefs = as.map((a) => new URL(a.href, `${srv.url}/simple/`).pathname).sort();
      expect(hrefs).to.deep.equal(EXAMPLE_PROJECTS.map((p) => `/simple/${p}/`));
      for (const a of as) expect(normalize(a.text)).to.equal(a.href.replace(/\/$/, ''));
    });

    it('lists every project in JSON for pip and uv', async () => {
      for (const accept of [PIP_ACCEPT, UV_ACCEPT]) {
        const res = await get(`${srv.url}/simple/`, accept);
        expect(res.status).to.equal(200);
        expect(mediaType(res.headers.get('content-type'))).to.equal(JSON_V1);
        const body = (await res.json()) as IndexJson;
        expect(body.meta['api-version']).to.match(/^1\.\d+$/);
        expect(body.projects.map((p) => normalize(p.name)).sort()).to.deep.equal([...EXAMPLE_PROJECTS]);
      }
    });

    it('shows each project under the name its metadata gives (Fancy.Mixed_Name)', async () => {
      const json = (await (await get(`${srv.url}/simple/`, JSON_V1)).json()) as IndexJson;
      expect(json.projects.map((p) => p.name).sort()).to.deep.equal(Object.values(DISPLAY_NAMES).sort());
      const html = await (await get(`${srv.url}/simple/`, 'text/html')).text();
      const fancy = anchors(html).find((a) => a.href === 'fancy-mixed-name/');
      expect(fancy?.text).to.equal('Fancy.Mixed_Name');
    });
  });

  describe('project pages', () => {
    for (const project of EXAMPLE_PROJECTS) {
      it(`${project}: HTML links every file with its sha256 and requires-python`, async () => {
        const pageUrl = `${srv.url}/simple/${project}/`;
        const res = await get(pageUrl, 'text/html');
        expect(res.status).to.equal(200);
        expect(mediaType(res.headers.get('content-type'))).to.equal('text/html');
        const as = anchors(await res.text());
        const expected = filesOf(project);
        expect(as.map((a) => a.text).sort()).to.deep.equal(expected.map((f) => basename(f.relPath)).sort());
        for (const f of expected) {
          const a = as.find((x) => x.text === basename(f.relPath))!;
          const u = new URL(a.href, pageUrl);
          expect(decodeURIComponent(u.pathname)).to.equal(`/packages/${f.relPath}`);
          expect(u.hash).to.equal(`#sha256=${hashes.get(f.relPath)}`);
          if (f.requiresPython) expect(a.attrs['data-requires-python'], f.relPath).to.equal(f.requiresPython);
        }
      });

      it(`${project}: JSON has every file, its hash, size and version`, async () => {
        const pageUrl = `${srv.url}/simple/${project}/`;
        const res = await get(pageUrl, PIP_ACCEPT);
        expect(res.status).to.equal(200);
        expect(mediaType(res.headers.get('content-type'))).to.equal(JSON_V1);
        const j = (await res.json()) as ProjectJson;
        expect(j.name).to.equal(project);
        expect(j.meta['api-version']).to.match(/^1\.\d+$/);
        const expected = filesOf(project);
        expect(j.files.map((f) => f.filename).sort()).to.deep.equal(expected.map((f) => basename(f.relPath)).sort());
        for (const f of expected) {
          const jf = j.files.find((x) => x.filename === basename(f.relPath))!;
          expect(decodeURIComponent(new URL(jf.url, pageUrl).pathname)).to.equal(`/packages/${f.relPath}`);
          expect(jf.hashes).to.deep.equal({ sha256: hashes.get(f.relPath) });
          expect(jf.size).to.equal((await fsp.stat(`${root}/${f.relPath}`)).size);
          expect(jf.yanked).to.equal(false);
          expect(jf).not.to.have.property('dist-info-metadata');
          expect(j.versions).to.include(f.version);
          if (f.requiresPython) expect(jf['requires-python']).to.equal(f.requiresPython);
        }
      });
    }

    it('serves the v1+html type when asked for it', async () => {
      const res = await get(`${srv.url}/simple/pypi-lite-demo/`, HTML_V1);
      expect(res.status).to.equal(200);
      expect(mediaType(res.headers.get('content-type'))).to.equal(HTML_V1);
      expect(anchors(await res.text())).to.have.length(6);
    });
  });

  describe('headers and negotiation', () => {
    it('always sends Content-Type and Vary: Accept (pages, 406, 404, redirects), twice in a row', async () => {
      const cases: [string, string | undefined, number][] = [
        ['/simple/', undefined, 200],
        ['/simple/', PIP_ACCEPT, 200],
        ['/simple/pypi-lite-demo/', undefined, 200],
        ['/simple/pypi-lite-demo/', PIP_ACCEPT, 200],
        ['/simple/pypi-lite-demo/', HTML_V1, 200],
        ['/simple/pypi-lite-demo/', 'application/json', 406],
        ['/simple/', 'application/json', 406],
        ['/simple/no-such-project/', PIP_ACCEPT, 404],
        ['/simple/Pypi_Lite.Demo/', PIP_ACCEPT, 301],
      ];
      for (let round = 0; round < 2; round++) {
        for (const [p, accept, status] of cases) {
          const res = await get(`${srv.url}${p}`, accept);
          const what = `${p} Accept: ${accept ?? '(none)'} round ${round}`;
          expect(res.status, what).to.equal(status);
          expect(res.headers.get('content-type'), what).to.be.a('string').and.not.equal('');
          expect(varyFields(res.headers.get('vary')), what).to.include('accept');
          await res.arrayBuffer();
        }
      }
    });

    it('answers 406 to Accept: application/json, naming what it offers', async () => {
      for (const p of ['/simple/', '/simple/pypi-lite-demo/']) {
        const res = await get(`${srv.url}${p}`, 'application/json');
        expect(res.status, p).to.equal(406);
        expect(mediaType(res.headers.get('content-type'))).not.to.equal('application/json');
        expect(await res.text()).to.include(JSON_V1);
      }
    });

    it('lets ?format= override the Accept header', async () => {
      let res = await get(`${srv.url}/simple/pypi-lite-demo/?format=${encodeURIComponent(JSON_V1)}`, 'text/html');
      expect(res.status).to.equal(200);
      expect(mediaType(res.headers.get('content-type'))).to.equal(JSON_V1);
      expect(((await res.json()) as ProjectJson).name).to.equal('pypi-lite-demo');
      res = await get(`${srv.url}/simple/?format=application/vnd.pypi.simple.v1+json`);
      expect(res.status).to.equal(200);
      expect(mediaType(res.headers.get('content-type'))).to.equal(JSON_V1);
      await res.arrayBuffer();
      res = await get(`${srv.url}/simple/pypi-lite-demo/?format=text/html`, PIP_ACCEPT);
      expect(mediaType(res.headers.get('content-type'))).to.equal('text/html');
      await res.arrayBuffer();
    });
  });

  describe('redirects', () => {
    it('redirects /simple to /simple/', async () => {
      const res = await get(`${srv.url}/simple`);
      expect(res.status).to.equal(301);
      expect(target(res, srv.url)).to.equal('/simple/');
    });

    it('redirects a non-normalized name with 301, keeping the query string', async () => {
      let res = await get(`${srv.url}/simple/Fancy.Mixed_Name/`, PIP_ACCEPT);
      expect(res.status).to.equal(301);
      expect(target(res, srv.url)).to.equal('/simple/fancy-mixed-name/');
      res = await get(`${srv.url}/simple/Fancy.Mixed_Name/?format=${encodeURIComponent(JSON_V1)}&x=1`);
      expect(res.status).to.equal(301);
      expect(target(res, srv.url)).to.equal(`/simple/fancy-mixed-name/?format=${encodeURIComponent(JSON_V1)}&x=1`);
      res = await get(`${srv.url}/simple/FANCY__MIXED--NAME`);
      expect(res.status).to.equal(301);
      expect(target(res, srv.url)).to.equal('/simple/fancy-mixed-name/');
    });

    it('redirects a page URL without its trailing slash', async () => {
      const res = await get(`${srv.url}/simple/fancy-mixed-name`);
      expect(res.status).to.equal(301);
      expect(target(res, srv.url)).to.equal('/simple/fancy-mixed-name/');
    });

    it('ends on the right page when a client follows the redirects', async () => {
      const res = await fetch(`${srv.url}/simple/Fancy.Mixed_Name`, { headers: { accept: PIP_ACCEPT } });
      expect(res.status).to.equal(200);
      expect(new URL(res.url).pathname).to.equal('/simple/fancy-mixed-name/');
      expect(((await res.json()) as ProjectJson).files).to.have.length(2);
    });

    it('answers 404 for an unknown project with --disable-fallback', async () => {
      const res = await get(`${srv.url}/simple/definitely-not-here/`, PIP_ACCEPT);
      expect(res.status).to.equal(404);
      expect(res.headers.get('location')).to.equal(null);
      await res.arrayBuffer();
    });
  });

  describe('caching and compression', () => {
    for (const [label, p, accept] of [
      ['project list (HTML)', '/simple/', 'text/html'],
      ['project page (HTML)', '/simple/pypi-lite-demo/', 'text/html'],
      ['project page (JSON)', '/simple/pypi-lite-demo/', PIP_ACCEPT],
    ] as const) {
      it(`${label}: ETag + If-None-Match gives 304`, async () => {
        const first = await get(`${srv.url}${p}`, accept);
        expect(first.status).to.equal(200);
        const body = await first.text();
        expect(body.length).to.be.greaterThan(0);
        const etag = first.headers.get('etag');
        expect(etag, 'ETag').to.be.a('string').and.match(/^(W\/)?"[^"]*"$/);
        const again = await get(`${srv.url}${p}`, accept, { 'if-none-match': etag! });
        expect(again.status).to.equal(304);
        expect((await again.arrayBuffer()).byteLength).to.equal(0);
        const other = await get(`${srv.url}${p}`, accept, { 'if-none-match': '"not-the-etag"' });
        expect(other.status).to.equal(200);
        expect(await other.text()).to.equal(body);
      });
    }

    it('gives HTML and JSON different ETags', async () => {
      const h = await get(`${srv.url}/simple/pypi-lite-demo/`, 'text/html');
      const j = await get(`${srv.url}/simple/pypi-lite-demo/`, JSON_V1);
      expect(h.headers.get('etag')).to.not.equal(j.headers.get('etag'));
      await h.arrayBuffer();
      await j.arrayBuffer();
    });

    it('gzips pages for Accept-Encoding: gzip, decompressing to the same bytes', async () => {
      for (const [p, accept] of [
        ['/simple/', 'text/html'],
        ['/simple/pypi-lite-demo/', 'text/html'],
        ['/simple/pypi-lite-demo/', PIP_ACCEPT],
      ] as const) {
        const plain = await request(srv.url, p, { headers: { accept } });
        const gz = await request(srv.url, p, { headers: { accept, 'accept-encoding': 'gzip' } });
        expect(plain.status).to.equal(200);
        expect(plain.headers['content-encoding']).to.equal(undefined);
        expect(gz.status).to.equal(200);
        expect(gz.headers['content-encoding']).to.equal('gzip');
        expect(Number(gz.headers['content-length'])).to.equal(gz.body.length);
        expect(varyFields(gz.headers.vary)).to.include.members(['accept', 'accept-encoding']);
        expect(gunzipSync(gz.body).equals(plain.body), p).to.equal(true);
        expect(gz.headers.etag, 'a gzip body needs its own ETag').to.not.equal(plain.headers.etag);
      }
    });

    it('answers HEAD with the headers of GET and no body', async () => {
      for (const accept of ['text/html', PIP_ACCEPT]) {
        const g = await request(srv.url, '/simple/pypi-lite-demo/', { headers: { accept } });
        const h = await request(srv.url, '/simple/pypi-lite-demo/', { method: 'HEAD', headers: { accept } });
        expect(h.status).to.equal(200);
        expect(h.body.length).to.equal(0);
        expect(h.headers['content-type']).to.equal(g.headers['content-type']);
        expect(Number(h.headers['content-length'])).to.equal(g.body.length);
        expect(h.headers.etag).to.equal(g.headers.etag);
        expect(varyFields(h.headers.vary)).to.include('accept');
      }
    });
  });
});

describe('Simple API fallback and --base-url (real servers)', function () {
  this.timeout(60_000);
  let root: string;
  let plain: Spawned;
  let based: Spawned;
  /** The based server's origin (its printed URL already ends in the /pypi prefix). */
  let origin: string;

  before(async () => {
    root = await copyExample();
    [plain, based] = await Promise.all([
      spawnServer([root]),
      spawnServer(['--base-url', '/pypi', '--fallback-url', 'https://mirror.example/custom/simple/', root]),
    ]);
    origin = new URL(based.url).origin;
    expect(based.url).to.equal(`${origin}/pypi`);
    await Promise.all([waitHealthy(plain.url, { idle: true }), waitHealthy(origin, { idle: true })]);
  });

  after(async () => {
    await Promise.all([plain?.stop(), based?.stop()]);
    if (root) await fsp.rm(root, { recursive: true, force: true });
  });

  it('redirects an unknown project to PyPI with 303 by default', async () => {
    const res = await get(`${plain.url}/simple/some-unknown-project/`, PIP_ACCEPT);
    expect(res.status).to.equal(303);
    expect(res.headers.get('location')).to.equal('https://pypi.org/simple/some-unknown-project/');
    await res.arrayBuffer();
  });

  it('still serves known projects itself', async () => {
    const res = await get(`${plain.url}/simple/pypi-lite-demo/`, PIP_ACCEPT);
    expect(res.status).to.equal(200);
    expect(((await res.json()) as ProjectJson).files).to.have.length(6);
  });

  it('uses --fallback-url for unknown projects', async () => {
    const res = await get(`${origin}/pypi/simple/requests/`, PIP_ACCEPT);
    expect(res.status).to.equal(303);
    expect(res.headers.get('location')).to.equal('https://mirror.example/custom/simple/requests/');
    await res.arrayBuffer();
  });

  it('puts the --base-url prefix in redirects', async () => {
    let res = await get(`${origin}/pypi/simple`);
    expect(res.status).to.equal(301);
    expect(res.headers.get('location')).to.equal('/pypi/simple/');
    res = await get(`${origin}/pypi/simple/Fancy.Mixed_Name/?a=b`);
    expect(res.status).to.equal(301);
    expect(res.headers.get('location')).to.equal('/pypi/simple/fancy-mixed-name/?a=b');
    res = await get(`${origin}/pypi/simple/fancy-mixed-name`);
    expect(res.status).to.equal(301);
    expect(res.headers.get('location')).to.equal('/pypi/simple/fancy-mixed-name/');
  });

  it('serves pages and files under the prefix', async () => {
    const list = await get(`${origin}/pypi/simple/`, JSON_V1);
    expect(list.status).to.equal(200);
    expect(((await list.json()) as IndexJson).projects).to.have.length(EXAMPLE_PROJECTS.length);
    const pageUrl = `${origin}/pypi/simple/pypi-lite-extras/`;
    const res = await get(pageUrl, 'text/html');
    expect(res.status).to.equal(200);
    const as = anchors(await res.text());
    expect(as).to.have.length(2);
    for (const a of as) {
      const u = new URL(a.href, pageUrl);
      expect(u.pathname.startsWith('/pypi/packages/'), u.pathname).to.equal(true);
      const file = await fetch(u);
      expect(file.status, u.pathname).to.equal(200);
      const bytes = Buffer.from(await file.arrayBuffer());
      const rel = decodeURIComponent(u.pathname.slice('/pypi/packages/'.length));
      expect(bytes.equals(await fsp.readFile(`${root}/${rel}`))).to.equal(true);
    }
  });
});

describe('pypiserver-style index URL without /simple/ (real server, real pip)', function () {
  this.timeout(120_000);
  let root: string;
  let srv: Spawned;

  before(async () => {
    root = await copyExample();
    srv = await spawnServer(['--disable-fallback', root]);
    await waitHealthy(srv.url, { idle: true });
  });

  after(async () => {
    await srv?.stop();
    if (root) await fsp.rm(root, { recursive: true, force: true });
  });

  it('redirects /<project>/ and /<project> to the normalized /simple/<project>/ (301, query kept)', async () => {
    for (const [from, to] of [
      ['/pypi-lite-demo/', '/simple/pypi-lite-demo/'],
      ['/pypi-lite-demo', '/simple/pypi-lite-demo/'],
      ['/Fancy.Mixed_Name/?format=text/html', '/simple/fancy-mixed-name/?format=text/html'],
      // unknown projects too, as pypiserver does: /simple/ then applies its own rules (here 404)
      ['/not-here/', '/simple/not-here/'],
    ]) {
      const res = await get(`${srv.url}${from}`);
      expect(res.status, from).to.equal(301);
      expect(target(res, srv.url), from).to.equal(to);
    }
    const res = await fetch(`${srv.url}/not-here/`);
    expect(res.status).to.equal(404);
  });

  it('HEAD is redirected too; several segments, invalid names and the app\'s own routes are not', async () => {
    const head = await fetch(`${srv.url}/pypi-lite-demo/`, { method: 'HEAD', redirect: 'manual' });
    expect(head.status).to.equal(301);
    for (const p of ['/pypi-lite-demo/x/', '/-bad-/', '/a%2Fb/', '/project/', '/search', '/favicon.ico', '/api/', '/legacy', '/metrics/', '/packages/']) {
      const res = await get(`${srv.url}${p}`);
      expect(res.status, p).to.not.equal(301);
    }
    expect((await get(`${srv.url}/health`)).status).to.equal(200);
    expect((await get(`${srv.url}/simple`)).status, '/simple keeps its own redirect').to.equal(301);
    expect(target(await get(`${srv.url}/simple`), srv.url)).to.equal('/simple/');
  });

  it('pip installs with --index-url http://host:port/ (no /simple/)', async () => {
    const dest = await fsp.mkdtemp(`${root}-pip-`);
    try {
      const r = await pip(['download', '--no-deps', '--only-binary=:all:', '-d', dest, '--index-url', `${srv.url}/`, 'pypi-lite-demo==1.1.0']);
      expect(r.code, `${r.stdout}\n${r.stderr}`).to.equal(0);
      expect(await fsp.readdir(dest)).to.deep.equal(['pypi_lite_demo-1.1.0-py3-none-any.whl']);
      const h = sha256(await fsp.readFile(`${dest}/pypi_lite_demo-1.1.0-py3-none-any.whl`));
      expect(h).to.equal(sha256(await fsp.readFile(`${root}/pypi_lite_demo-1.1.0-py3-none-any.whl`)));
    } finally {
      await fsp.rm(dest, { recursive: true, force: true });
    }
  });
});
