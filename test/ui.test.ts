// The web UI, in-process (startServer -> createApp) against a fixture repository: what a person
// sees on the home, search and project pages, the 301/404 answers, the access modes, --no-ui,
// README sanitizing, and pypiserver's /packages/ page with real pip.

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { hashPassword } from '../lib/auth/hashes.js';
import type { AuthAction, Config } from '../lib/core/config.js';
import { makeConfig } from './helpers/config.js';
import { startServer, type RunningServer } from '../lib/server.js';
import { Lru } from '../lib/ui/lru.js';
import { renderReadme, sanitizeReadmeHtml } from '../lib/ui/readme.js';
import { UI_CSP } from '../lib/ui/routes.js';
import { metadataText, writeWheel } from './helpers/archives.js';
import { request, sha256 } from './helpers/http.js';
import { BIN, cleanEnv, copyExample, pip, run, spawnServer, tempDir } from './helpers/server.js';
import { makeUiFixture, waitForSummaries } from './helpers/ui-fixture.js';
import { basic, eventually } from './helpers/upload.js';

const silent = pino({ level: 'silent' });

async function start(partial: Partial<Config> & { roots: string[] }): Promise<RunningServer> {
  const running = await startServer(makeConfig(partial), silent);
  await running.loaded;
  await running.indexer.whenIdle();
  return running;
}

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; statusText: string; headers: Headers; body: string }> {
  const r = await fetch(url, { headers, redirect: 'manual' });
  return { status: r.status, statusText: r.statusText, headers: r.headers, body: await r.text() };
}

/** The text a person reads in an HTML fragment: tags removed, entities decoded, spaces collapsed. */
function text(html: string): string {
  return html
    .replace(/<[^>]*>/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();
}

function section(html: string, id: string): string {
  const start = html.indexOf(`<section id="${id}"`);
  expect(start, `section #${id}`).to.be.greaterThan(-1);
  return html.slice(start, html.indexOf('</section>', start));
}

function readmeOf(html: string): string {
  const start = html.indexOf('<div class="readme">');
  expect(start, 'README block').to.be.greaterThan(-1);
  return html.slice(start, html.indexOf('</section>', start));
}

describe('web UI', function () {
  this.timeout(60_000);
  let root: string;
  let srv: RunningServer;

  before(async function () {
    ({ root } = await makeUiFixture());
    srv = await start({ roots: [root] });
    await waitForSummaries(srv.url);
  });
  after(async () => srv?.close());

  describe('home page', function () {
    it('lists the projects, most recently updated first, with their latest version and summary', async function () {
      const r = await get(`${srv.url}/`);
      expect(r.status).to.equal(200);
      expect(r.headers.get('content-type')).to.equal('text/html; charset=utf-8');
      const cards = [...r.body.matchAll(/<li class="project-card">([\s\S]*?)<\/li>/g)].map((m) => text(m[1]));
      expect(cards.map((c) => c.split(' Updated')[0])).to.deep.equal([
        'Acme.Widgets 1.2.0 Widgets and gears for the whole team',
        'hostile-readme 0.1 Nothing to see here',
        'gear-box 0.5 A box to keep widgets in',
        'rusty-tool 3.1.4 A tool with an rst README',
        'plain-notes 1.0 Plain text notes',
        'no-readme 0.0.1 A project without a description',
      ]);
      expect(cards[0]).to.contain('Updated 2026-03-11 · 4 releases · 5 files');
      expect(r.body).to.contain('href="/project/acme-widgets/"');
      expect(text(r.body)).to.contain('6 projects · 10 files on this index.');
    });

    it('shows the summaries to the very first visitor (no waiting for the background reader)', async function () {
      const fresh = await start({ roots: [root] });
      try {
        const t = text((await get(`${fresh.url}/`)).body);
        for (const s of ['Widgets and gears for the whole team', 'Nothing to see here', 'A box to keep widgets in', 'A project without a description']) expect(t).to.contain(s);
        expect(text((await get(`${fresh.url}/search?q=gear`)).body)).to.contain('gear-box 0.5 A box to keep widgets in');
      } finally {
        await fresh.close();
      }
    });

    it('has a search box that is a plain GET form with a labelled field q', async function () {
      const { body } = await get(`${srv.url}/`);
      expect(body).to.match(/<form class="search" role="search" method="get" action="\/search">/);
      expect(body).to.contain('<label class="visually-hidden" for="q">Search projects</label>');
      expect(body).to.match(/<input id="q" name="q" type="search"/);
    });

    it('shows how to install from and upload to this index with the URL the visitor used', async function () {
      const { body } = await get(`${srv.url}/`);
      const t = text(body);
      // makeConfig has no PyPI fallback: pip needs PyPI too, so --extra-index-url.
      expect(t).to.contain(`pip install --extra-index-url ${srv.url}/simple/ PACKAGE`);
      expect(t).to.contain(`twine upload --repository-url ${srv.url}/ -u USER dist/*`);
      expect(t).to.contain(`uv publish --publish-url ${srv.url}/ -u USER dist/*`);
      expect(t).to.contain(`repository = ${srv.url}/`);
      const named = await request(srv.url, '/', { headers: { Host: 'pkgs.example.com:8080' } });
      expect(text(named.body.toString())).to.contain('pip install --extra-index-url http://pkgs.example.com:8080/simple/ --trusted-host pkgs.example.com PACKAGE');
      const hostile = await request(srv.url, '/', { headers: { Host: '"><script>x</script>' } });
      expect(hostile.status).to.equal(200);
      expect(hostile.body.toString()).to.not.contain('<script>x');
    });

    it('uses --index-url when unknown projects fall back to PyPI', async function () {
      const withFallback = await start({ roots: [root], fallbackUrl: 'https://pypi.org/simple/' });
      try {
        const { body } = await get(`${withFallback.url}/project/gear-box/`);
        expect(text(body)).to.contain(`pip install --index-url ${withFallback.url}/simple/ gear-box`);
      } finally {
        await withFallback.close();
      }
    });

    it('is served with a strict CSP that allows only its own stylesheet and script', async function () {
      const r = await get(`${srv.url}/`);
      expect(r.headers.get('content-security-policy')).to.equal(UI_CSP);
      expect(r.body).to.not.match(/<style|style="|<script>|\son[a-z]+=/);
      const css = r.body.match(/<link rel="stylesheet" href="([^"]+)">/)![1];
      const js = r.body.match(/<script src="([^"]+)" defer><\/script>/)![1];
      const cssRes = await get(`${srv.url}${css}`);
      expect(cssRes.status).to.equal(200);
      expect(cssRes.headers.get('content-type')).to.equal('text/css; charset=utf-8');
      expect(cssRes.headers.get('cache-control')).to.contain('immutable');
      expect(cssRes.body).to.contain('prefers-color-scheme: dark');
      const jsRes = await get(`${srv.url}${js}`);
      expect(jsRes.headers.get('content-type')).to.equal('text/javascript; charset=utf-8');
      expect(jsRes.body).to.contain('navigator.clipboard');
    });

    it('paginates long lists (50 projects a page) instead of sending one huge page', async function () {
      const many = await tempDir('pypi-lite-ui-many-');
      // Unreadable archives are still listed (by file name): enough for the home page.
      for (let i = 0; i < 120; i++) await fsp.writeFile(path.join(many, `proj${String(i).padStart(3, '0')}-1.0.tar.gz`), 'not really a tarball');
      const big = await start({ roots: [many] });
      try {
        const count = (body: string) => body.match(/<li class="project-card">/g)?.length ?? 0;
        const first = await get(`${big.url}/`);
        expect(count(first.body)).to.equal(50);
        expect(text(first.body)).to.contain('Page 1 of 3');
        expect(first.body).to.contain('href="/?page=2"');
        expect(count((await get(`${big.url}/?page=3`)).body)).to.equal(20);
        expect(text((await get(`${big.url}/?page=99`)).body)).to.contain('Page 3 of 3');
        expect(text((await get(`${big.url}/?page=nonsense`)).body)).to.contain('Page 1 of 3');
      } finally {
        await big.close();
      }
    });

    it('follows the catalog: a new release shows up without a restart', async function () {
      const live = await tempDir('pypi-lite-ui-live-');
      const md = (v: string) => metadataText([['Metadata-Version', '2.1'], ['Name', 'live-proj'], ['Version', v], ['Summary', `summary of ${v}`]]);
      await writeWheel(live, 'live-proj', '1.0', md('1.0'));
      const s = await start({ roots: [live] });
      try {
        expect(await eventually(async () => text((await get(`${s.url}/`)).body).includes('live-proj 1.0 summary of 1.0'), 10_000)).to.equal(true);
        await writeWheel(live, 'live-proj', '2.0', md('2.0'));
        const seen = await eventually(async () => text((await get(`${s.url}/`)).body).includes('live-proj 2.0 summary of 2.0'), 10_000);
        expect(seen, 'home page shows 2.0 and its summary').to.equal(true);
        expect(text((await get(`${s.url}/search?q=summary+of+2.0`)).body)).to.contain('live-proj 2.0');
      } finally {
        await s.close();
      }
    });
  });

  describe('search', function () {
    const names = async (q: string) => {
      const { body } = await get(`${srv.url}/search?q=${encodeURIComponent(q)}`);
      return [...body.matchAll(/<span class="project-name">([^<]*)<\/span>/g)].map((m) => m[1]);
    };

    it('puts the exact (normalized) name first, then prefix, substring, then summary and keywords', async function () {
      expect(await names('ACME_widgets')).to.deep.equal(['Acme.Widgets']);
      expect(await names('gear')).to.deep.equal(['gear-box', 'Acme.Widgets']); // prefix, then keyword "gears"
      expect(await names('widgets')).to.deep.equal(['Acme.Widgets', 'gear-box']); // name substring, then summary
      expect(await names('sprockets')).to.deep.equal(['gear-box']); // keyword
      expect(await names('readme')).to.deep.equal(['no-readme', 'hostile-readme', 'rusty-tool']); // substrings (shorter first), then summary
      expect(await names('whole team')).to.deep.equal(['Acme.Widgets']); // every word of the summary
    });

    it('says so when nothing matches and keeps the query in the box, escaped', async function () {
      const { status, body } = await get(`${srv.url}/search?q=${encodeURIComponent('<b>zzz</b>')}`);
      expect(status).to.equal(200);
      expect(text(body)).to.contain('No project matches “<b>zzz</b>”');
      expect(body).to.contain('value="&lt;b&gt;zzz&lt;/b&gt;"');
      expect(body).to.not.contain('<b>zzz');
      const empty = await get(`${srv.url}/search`);
      expect(empty.status).to.equal(200);
      expect(text(empty.body)).to.contain('Type a project name');
    });
  });

  describe('project page', function () {
    it('shows the latest release: name, version, summary, install line, metadata', async function () {
      const r = await get(`${srv.url}/project/acme-widgets/`);
      expect(r.status).to.equal(200);
      const t = text(r.body);
      expect(r.body).to.match(/<h1>Acme\.Widgets <span class="version">1\.2\.0<\/span><\/h1>/);
      expect(t).to.contain('Widgets and gears for the whole team');
      expect(t).to.contain(`pip install --extra-index-url ${srv.url}/simple/ Acme.Widgets`);
      expect(t).to.contain('Requires Python >=3.9');
      expect(t).to.contain('License MIT');
      expect(r.body).to.contain('<a href="mailto:ada@example.com">Ada Lovelace</a>');
      expect(r.body).to.contain('<a href="https://acme.example.com" rel="nofollow noopener">Homepage</a>');
      expect(r.body).to.contain('<a href="https://git.example.com/acme/widgets" rel="nofollow noopener">Source</a>');
      expect(r.body).to.not.contain('javascript:');
      expect(t).to.contain('Development Status 5 - Production/Stable');
      expect(t).to.contain('requests>=2.28');
      expect(t).to.contain('rich; extra == "cli"');
      expect(t).to.contain('gears machinery');
    });

    it('renders the Markdown README (headings, table, fenced code, strikethrough, badge, links)', async function () {
      const readme = readmeOf((await get(`${srv.url}/project/acme-widgets/`)).body);
      expect(readme).to.contain('<h2>Acme Widgets</h2>'); // one level below the page's h1
      expect(readme).to.contain('<h3>Usage</h3>');
      expect(readme).to.contain('<code class="language-python">from acme_widgets import Widget');
      expect(readme).to.match(/<table>\s*<thead>\s*<tr>\s*<th>Widget<\/th>\s*<th align="right">Teeth<\/th>/);
      expect(readme).to.match(/<td>gear<\/td>\s*<td align="right">32<\/td>\s*<td>steel<\/td>/);
      expect(readme).to.contain('<s>old API</s>');
      expect(readme).to.contain('<img src="https://img.shields.io/badge/build-passing-brightgreen" alt="build" />');
      expect(readme).to.contain('<a href="https://docs.example.com/acme" rel="nofollow noopener">documentation</a>');
      expect(readme).to.contain('Version 1.2.0. Widgets for <strong>every</strong> occasion.');
    });

    it('lists the release history, newest first, with latest, pre-release and yanked marks and the reason', async function () {
      const history = section((await get(`${srv.url}/project/acme-widgets/`)).body, 'history');
      const rows = [...history.matchAll(/<li class="([^"]*)">([\s\S]*?)<\/li>/g)].map((m) => ({ cls: m[1], text: text(m[2]) }));
      expect(rows.map((r) => r.text)).to.deep.equal([
        '2.0.0rc1 pre-release 2026-03-11',
        '1.2.0 latest 2026-03-11',
        '1.1.0 yanked 2026-03-11 Yanked: broken import',
        '1.0.0 2026-03-11',
      ]);
      expect(rows[1].cls).to.equal('release current');
      expect(rows[2].cls).to.equal('release yanked');
      expect(history).to.contain('href="/project/acme-widgets/1.1.0/"');
    });

    it('lists every file of the release with size, upload time, sha256 and a working download link', async function () {
      const files = section((await get(`${srv.url}/project/acme-widgets/`)).body, 'files');
      expect(text(files)).to.contain('Files for Acme.Widgets 1.2.0');
      for (const name of ['acme_widgets-1.2.0-py3-none-any.whl', 'acme_widgets-1.2.0.tar.gz']) {
        const bytes = await fsp.readFile(path.join(root, name));
        const st = await fsp.stat(path.join(root, name));
        const item = files.split('<li class="file').find((li) => li.includes(`>${name}</a>`))!;
        const itemText = text(`<${item}`);
        expect(item).to.contain(`href="/packages/${name}" download>${name}</a>`);
        expect(itemText).to.contain(`SHA256 ${sha256(bytes)}`);
        expect(itemText).to.contain(`Uploaded ${new Date(st.mtimeMs).toISOString().slice(0, 16).replace('T', ' ')} UTC`);
        expect(itemText).to.match(bytes.length < 1024 ? new RegExp(`Size ${bytes.length} bytes`) : /Size \d+\.\d KB/);
        const dl = await fetch(`${srv.url}/packages/${name}`);
        expect(dl.status).to.equal(200);
        expect(Buffer.from(await dl.arrayBuffer()).equals(bytes)).to.equal(true);
      }
      expect(files).to.not.contain('1.1.0');
    });

    it('shows one release at /project/<name>/<version>/, pinned in the install line, yanked with its reason', async function () {
      const r = await get(`${srv.url}/project/acme-widgets/1.1.0/`);
      expect(r.status).to.equal(200);
      const t = text(r.body);
      expect(r.body).to.match(/<h1>Acme\.Widgets <span class="version">1\.1\.0<\/span><\/h1>/);
      expect(t).to.contain(`pip install --extra-index-url ${srv.url}/simple/ Acme.Widgets==1.1.0`);
      expect(t).to.contain('This release is yanked: broken import. pip ignores it unless a requirement pins it with ==');
      expect(t).to.contain('This is not the latest release. The latest is Acme.Widgets 1.2.0');
      expect(r.body).to.contain('<a href="/project/acme-widgets/">Acme.Widgets 1.2.0</a>');
      expect(readmeOf(r.body)).to.contain('Version 1.1.0.');
      expect(text(section(r.body, 'files'))).to.contain('acme_widgets-1.1.0-py3-none-any.whl yanked');
      const pre = await get(`${srv.url}/project/acme-widgets/2.0.0rc1/`);
      expect(text(pre.body)).to.contain('Acme.Widgets==2.0.0rc1');
    });

    it('shows reStructuredText and plain text READMEs as preformatted text, and says when there is none', async function () {
      const rst = readmeOf((await get(`${srv.url}/project/rusty-tool/`)).body);
      expect(rst).to.contain('<pre class="readme-text">Rusty Tool\n==========\n\nA tool documented in *reStructuredText*.');
      const plain = readmeOf((await get(`${srv.url}/project/plain-notes/`)).body);
      expect(plain).to.contain('Line one &lt;b&gt;not bold&lt;/b&gt;\n  indented line two');
      const none = await get(`${srv.url}/project/no-readme/`);
      expect(text(none.body)).to.contain('The author of this package has not provided a project description.');
    });

    it('redirects non-normalized names, missing slashes and other spellings of a version (301)', async function () {
      const cases: [string, string][] = [
        ['/project/Acme.Widgets/', '/project/acme-widgets/'],
        ['/project/ACME__widgets/1.1.0/', '/project/acme-widgets/1.1.0/'],
        ['/project/acme-widgets', '/project/acme-widgets/'],
        ['/project/acme-widgets/1.1.0', '/project/acme-widgets/1.1.0/'],
        ['/project/acme-widgets/1.1/', '/project/acme-widgets/1.1.0/'],
        ['/project/acme-widgets/2.0.0-RC1/', '/project/acme-widgets/2.0.0rc1/'],
      ];
      for (const [from, to] of cases) {
        const r = await get(`${srv.url}${from}`);
        expect(r.status, from).to.equal(301);
        expect(r.headers.get('location'), from).to.equal(to);
      }
    });

    it('answers an unknown project or version with a friendly 404 page', async function () {
      const r = await get(`${srv.url}/project/no-such-thing/`);
      expect(r.status).to.equal(404);
      expect(r.statusText).to.equal('Project not found: no-such-thing');
      expect(r.headers.get('content-type')).to.equal('text/html; charset=utf-8');
      expect(text(r.body)).to.contain('Project not found There is no project named “no-such-thing” on this index.');
      expect(r.body).to.contain('Browse all projects');
      const v = await get(`${srv.url}/project/acme-widgets/9.9/`);
      expect(v.status).to.equal(404);
      expect(v.statusText).to.equal('Not Found: Acme.Widgets has no version 9.9');
      expect(text(v.body)).to.contain('Acme.Widgets has no release 9.9.');
      const bad = await get(`${srv.url}/project/%E0%A4%A/`);
      expect(bad.status).to.equal(404);
    });
  });

  describe('README sanitizing', function () {
    it('keeps nothing executable from a hostile README, on the page', async function () {
      const readme = readmeOf((await get(`${srv.url}/project/hostile-readme/`)).body);
      expect(readme).to.contain('<h2>Totally normal package</h2>');
      for (const bad of ['<script', 'onerror', 'onload', 'ontoggle', 'style=', '<style', '<iframe', '<svg', '<form', '<input', '<object', 'window.__pwned']) {
        expect(readme, bad).to.not.contain(bad);
      }
      // The Markdown links to javascript:/data: URLs stay visible as text, never as a link or image.
      expect(readme).to.not.match(/(href|src)="(javascript|data):/i);
      expect(text(readme)).to.contain('[markdown js link](javascript:alert(1))');
      expect(readme).to.contain('<a href="https://example.com/docs" rel="nofollow noopener">safe link</a>');
      expect(readme).to.contain('<img src="https://img.example.com/ok.png" alt="remote image" />');
      expect([...readme.matchAll(/<img [^>]*>/g)]).to.have.length(1);
      expect(text(readme)).to.contain('styled paragraph');
    });

    const cases: [string, string, RegExp[], RegExp[]][] = [
      ['script tag', '<script>alert(1)</script>hi', [/^<p>hi<\/p>$|^hi$/], [/script|alert/]],
      ['onerror handler', '<img src="https://x.example/a.png" onerror="alert(1)">', [/<img src="https:\/\/x\.example\/a\.png" \/>/], [/onerror/]],
      ['javascript: link', '<a href="javascript:alert(1)">x</a>', [/<a rel="nofollow noopener">x<\/a>/], [/javascript/]],
      ['JaVaScRiPt: link with entities', '<a href="jav&#x09;ascript:alert(1)">x</a>', [/>x<\/a>/], [/ascript/]],
      ['data: link', '<a href="data:text/html,<script>alert(1)</script>">x</a>', [/>x<\/a>/], [/data:|script/]],
      ['relative and data: images', '<img src="/metrics"><img src="data:image/png;base64,AA=="><img src="//evil.example/x.png">', [/^$/], [/<img/]],
      ['style attribute and tag', '<p style="color:red">a</p><style>*{}</style>', [/^<p>a<\/p>$/], [/style/]],
      ['iframe, object, embed, form', '<iframe src="https://e.example"></iframe><object></object><embed src="x"><form><input></form>', [/^$/], [/iframe|object|embed|form|input/]],
      ['svg with script', '<svg onload="alert(1)"><script>alert(2)</script></svg>', [/^$/], [/svg|alert/]],
      ['event handlers on allowed tags', '<details ontoggle="alert(1)" open><summary onclick="x()">s</summary></details>', [/<details open><summary>s<\/summary><\/details>/], [/on[a-z]+=/]],
      ['meta refresh and base', '<meta http-equiv="refresh" content="0;url=https://e.example"><base href="https://e.example/">', [/^$/], [/meta|base/]],
      ['ids and classes (DOM clobbering)', '<p id="main" class="site-header">x</p>', [/^<p>x<\/p>$/], [/id=|class=/]],
    ];
    for (const [label, input, keep, drop] of cases) {
      it(`sanitizes: ${label}`, function () {
        const out = sanitizeReadmeHtml(input).trim();
        for (const k of keep) expect(out, label).to.match(k);
        for (const d of drop) expect(out, label).to.not.match(d);
      });
    }

    it('renders Markdown javascript:/data: links and images inertly, and raw HTML in Markdown sanitized', function () {
      const out = renderReadme('[a](javascript:alert(1)) ![i](data:image/png;base64,AA==) <b onclick="x()">bold</b>', 'text/markdown');
      expect(out).to.not.match(/href|src=|onclick|<img/);
      expect(out).to.contain('<b>bold</b>');
    });

    it('treats a missing or unknown content type as reStructuredText (PyPI default): escaped preformatted text', function () {
      expect(renderReadme('<script>x</script>', null)).to.equal('<pre class="readme-text">&lt;script&gt;x&lt;/script&gt;</pre>');
      expect(renderReadme('# Title', 'text/markdown; variant=CommonMark')).to.equal('<h2>Title</h2>\n');
      expect(renderReadme('   ', 'text/markdown')).to.equal('');
    });
  });

  describe('bounded caches (rendered READMEs and pages)', function () {
    it('keep at most maxEntries entries and maxWeight bytes, dropping the least recently used', function () {
      const lru = new Lru<string>(100, 3);
      for (const k of ['a', 'b', 'c']) lru.set(k, k, 10);
      expect(lru.get('a')).to.equal('a'); // a is now the most recent
      lru.set('d', 'd', 10);
      expect([lru.get('b'), lru.size]).to.deep.equal([undefined, 3]);
      lru.set('e', 'e', 25);
      lru.set('f', 'f', 25);
      lru.set('g', 'g', 25);
      expect(lru.weight).to.be.at.most(100);
      expect(lru.size).to.equal(3);
      expect(lru.get('a')).to.equal(undefined);
      lru.set('huge', 'x', 26); // more than a quarter of the budget: not kept
      expect(lru.get('huge')).to.equal(undefined);
      expect(lru.get('g')).to.equal('g');
    });
  });

  describe('/packages/ (pypiserver --find-links page)', function () {
    it('lists every file with #sha256= fragments; file downloads still work', async function () {
      const r = await get(`${srv.url}/packages/`);
      expect(r.status).to.equal(200);
      const links = [...r.body.matchAll(/<a href="([^"]+)"[^>]*>([^<]+)<\/a>/g)].map((m) => [m[1], m[2]]);
      const onDisk = (await fsp.readdir(root)).filter((f) => f.endsWith('.whl') || f.endsWith('.tar.gz')).sort();
      expect(links.map(([, name]) => name).sort()).to.deep.equal(onDisk);
      for (const [href, name] of links) {
        expect(href).to.equal(`${name}#sha256=${sha256(await fsp.readFile(path.join(root, name)))}`);
      }
      expect(r.body).to.contain('data-yanked="broken import"');
      const head = await fetch(`${srv.url}/packages/`, { method: 'HEAD' });
      expect(head.status).to.equal(200);
      expect((await get(`${srv.url}/packages`)).status).to.equal(404);
      expect((await fetch(`${srv.url}/packages/gear_box-0.5-py3-none-any.whl`)).status).to.equal(200);
    });

    it('works with pip install --no-index --find-links <server>/packages/ (and links into subdirectories)', async function () {
      const example = await copyExample();
      const s = await start({ roots: [example] });
      const target = await tempDir('pypi-lite-ui-pip-');
      try {
        const r = await pip(['install', '--no-index', '--find-links', `${s.url}/packages/`, '--target', target, 'pypi-lite-extras']);
        expect(r.code, r.stdout + r.stderr).to.equal(0);
        expect(r.stdout).to.match(/Successfully installed .*pypi-lite-demo-2\.0\.0/);
        expect(r.stdout).to.contain('pypi-lite-extras-0.1.0');
        // A file in a subdirectory of the root: its link, resolved against the page, downloads it.
        const page = await get(`${s.url}/packages/`);
        const href = page.body.match(/<a href="([^"#]*pypi_lite_extras-0\.1\.0\.tar\.gz)#sha256=/)![1];
        expect(href).to.equal('legacy/pypi_lite_extras-0.1.0.tar.gz');
        const dl = await fetch(new URL(href, `${s.url}/packages/`));
        expect(Buffer.from(await dl.arrayBuffer()).equals(await fsp.readFile(path.join(example, 'legacy', 'pypi_lite_extras-0.1.0.tar.gz')))).to.equal(true);
      } finally {
        await s.close();
      }
    });
  });

  describe('access modes', function () {
    let htpasswd: string;
    const PW = 'correct horse battery staple';
    before(async function () {
      htpasswd = path.join(await tempDir('pypi-lite-ui-auth-'), 'htpasswd');
      await fsp.writeFile(htpasswd, `alice:${await hashPassword(PW, 4)}\n`);
    });
    const pages = ['/', '/index.html', '/search?q=acme', '/project/acme-widgets/', '/project/acme-widgets/1.1.0/', '/packages/'];

    async function withAuth(actions: AuthAction[], fn: (s: RunningServer) => Promise<void>): Promise<void> {
      const s = await start({ roots: [root], passwords: htpasswd, authenticate: new Set(actions) });
      try {
        await fn(s);
      } finally {
        await s.close();
      }
    }

    it('-a list: every UI page needs the same credentials as /simple/', async function () {
      await withAuth(['update', 'list'], async (s) => {
        for (const p of pages) {
          const anon = await get(`${s.url}${p}`);
          expect(anon.status, p).to.equal(401);
          expect(anon.headers.get('www-authenticate'), p).to.match(/^Basic realm="pypi-lite"/);
          expect(anon.body, p).to.not.contain('acme');
          expect((await get(`${s.url}${p}`, basic('alice', 'wrong'))).status, p).to.equal(403);
          expect((await get(`${s.url}${p}`, basic('alice', PW))).status, p).to.equal(200);
        }
        expect((await get(`${s.url}/project/nope/`)).status).to.equal(401); // no hint whether a project exists
      });
    });

    it('-a download: pages that show metadata need credentials (as the JSON API), /packages/ is open, its file links are not', async function () {
      await withAuth(['update', 'download'], async (s) => {
        for (const p of pages.filter((p) => p !== '/packages/')) {
          const anon = await get(`${s.url}${p}`);
          expect(anon.status, p).to.equal(401);
          expect(anon.body, p).to.not.contain('Widgets and gears'); // no summary, no README
          expect((await get(`${s.url}${p}`, basic('alice', PW))).status, p).to.equal(200);
        }
        const index = await get(`${s.url}/packages/`);
        expect(index.status).to.equal(200);
        const rel = index.body.match(/href="(acme_widgets-1\.2\.0-py3-none-any\.whl)#sha256=[0-9a-f]{64}"/)![1];
        const link = `/packages/${rel}`;
        expect((await get(`${s.url}${link}`)).status).to.equal(401);
        const { body } = await get(`${s.url}/project/acme-widgets/`, basic('alice', PW));
        expect(body).to.contain(`href="${link}"`);
        expect((await fetch(`${s.url}${link}`, { headers: basic('alice', PW) })).status).to.equal(200);
      });
    });
  });

  describe('--no-ui', function () {
    it('keeps the plain welcome page at / and serves no UI pages (but still /packages/)', async function () {
      const s = await start({ roots: [root], ui: false });
      try {
        const home = await get(`${s.url}/`);
        expect(home.status).to.equal(200);
        expect(home.body).to.contain('<h1>Welcome to pypi-lite</h1>');
        for (const p of ['/search?q=acme', '/project/acme-widgets/', '/static/ui.css']) expect((await get(`${s.url}${p}`)).status, p).to.equal(404);
        expect((await get(`${s.url}/packages/`)).status).to.equal(200);
      } finally {
        await s.close();
      }
    });

    it('is an option of `serve` (--no-ui) and an environment variable (PYPI_LITE_NO_UI=1)', async function () {
      const help = await run(process.execPath, [BIN, 'serve', '--help'], { env: cleanEnv() });
      expect(help.stdout).to.contain('--no-ui');
      expect(help.stdout).to.contain('PYPI_LITE_NO_UI=1');
      for (const [args, env] of [[['--no-ui'], {}], [[], { PYPI_LITE_NO_UI: '1' }]] as const) {
        const spawned = await spawnServer([...args, root], { env });
        try {
          expect(await (await fetch(`${spawned.url}/`)).text()).to.contain('Welcome to pypi-lite');
        } finally {
          await spawned.stop();
        }
      }
      const on = await spawnServer([root], { env: { PYPI_LITE_NO_UI: '0' } });
      try {
        expect(await (await fetch(`${on.url}/`)).text()).to.contain('Recently updated');
      } finally {
        await on.stop();
      }
    });
  });
});
