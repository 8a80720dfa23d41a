// PEP 658 / 714 metadata files served by a real server: byte-identical to the archive's
// METADATA / PKG-INFO, with the advertised sha256 in HTML (data-core-metadata and the legacy
// data-dist-info-metadata) and JSON (core-metadata only); sdists only when their metadata is
// static (Metadata-Version >= 2.2, no Dynamic dependency fields); data-requires-python escaping;
// and the metadata's Name deciding the project of an ambiguous legacy sdist name.

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { listFiles, metadataText, parseMetadataPy, sdistPkgInfo, wheelMetadata, writeTarGz, writeWheel } from './helpers/archives.js';
import { JSON_V1, anchors, sha256, type Anchor, type ProjectJson } from './helpers/http.js';
import { copyExample, spawnServer, waitHealthy, type Spawned } from './helpers/server.js';

/** PEP 503 normalization, written here independently of lib/. */
const normalize = (name: string): string => name.toLowerCase().replace(/[-_.]+/g, '-');

const STATIC_PKG_INFO = metadataText(
  [
    ['Metadata-Version', '2.2'],
    ['Name', 'static-sdist'],
    ['Version', '1.0'],
    ['Summary', 'An sdist whose metadata is static (PEP 643)'],
    ['Requires-Python', '>=3.8, <4'],
    ['Requires-Dist', 'pypi-lite-demo>=1.0'],
    ['Provides-Extra', 'extra'],
    ['Dynamic', 'Summary'],
  ],
  'Static metadata: installers may trust it without building.\n',
);

const DYNAMIC_PKG_INFO = metadataText([
  ['Metadata-Version', '2.2'],
  ['Name', 'dynamic-sdist'],
  ['Version', '1.0'],
  ['Requires-Python', '>=3.8'],
  ['Dynamic', 'Requires-Dist'],
]);

/** `demo-lib-3-1.tar.gz`: the file name rule reads project "demo-lib", version "3-1" (3.post1). */
const AMBIGUOUS = 'demo-lib-3-1.tar.gz';
const AMBIGUOUS_PKG_INFO = metadataText([
  ['Metadata-Version', '1.1'],
  ['Name', 'demo-lib-3'],
  ['Version', '1'],
  ['Summary', 'legacy sdist with a digit-suffixed name'],
]);

const NESTED_WHEEL = 'nested/deeper/nested_pkg-0.1-py3-none-any.whl';

describe('PEP 658/714 metadata files served by a real server', function () {
  this.timeout(60_000);
  let root: string;
  let server: Spawned;

  async function page(project: string): Promise<{ html: string; anchors: Anchor[]; json: ProjectJson; jsonText: string }> {
    const h = await fetch(`${server.url}/simple/${project}/`, { headers: { Accept: 'text/html' } });
    expect(h.status, `/simple/${project}/`).to.equal(200);
    const html = await h.text();
    const j = await fetch(`${server.url}/simple/${project}/`, { headers: { Accept: JSON_V1 } });
    expect(j.status).to.equal(200);
    const jsonText = await j.text();
    return { html, anchors: anchors(html), json: JSON.parse(jsonText) as ProjectJson, jsonText };
  }

  /** The URL pip builds for a file's metadata: the file URL (without fragment) + ".metadata". */
  function metadataUrl(project: string, a: Anchor): string {
    const u = new URL(a.href, `${server.url}/simple/${project}/`);
    u.hash = '';
    return `${u.href}.metadata`;
  }

  function anchorFor(p: { anchors: Anchor[] }, filename: string): Anchor {
    const a = p.anchors.find((x) => x.text === filename);
    expect(a, `${filename} is listed`).to.not.equal(undefined);
    return a!;
  }

  function jsonFileFor(p: { json: ProjectJson }, filename: string): ProjectJson['files'][number] {
    const f = p.json.files.find((x) => x.filename === filename);
    expect(f, `${filename} is in the JSON page`).to.not.equal(undefined);
    return f!;
  }

  /** Name and Requires-Python of a distribution, read by Python from the archive itself. */
  async function coreMetadata(rel: string): Promise<{ bytes: Buffer; name: string; requiresPython: string | null; metadataVersion: string }> {
    const abs = path.join(root, rel);
    const bytes = rel.endsWith('.whl') ? await wheelMetadata(abs) : await sdistPkgInfo(abs);
    expect(bytes, `${rel} has core metadata`).to.not.equal(null);
    const md = await parseMetadataPy(bytes!);
    return {
      bytes: bytes!,
      name: md.fields.name[0],
      requiresPython: md.fields['requires-python']?.[0] ?? null,
      metadataVersion: md.fields['metadata-version'][0],
    };
  }

  before(async () => {
    root = await copyExample();
    await writeTarGz(path.join(root, 'static_sdist-1.0.tar.gz'), [
      // a nested PKG-INFO first: only the top-level one is the sdist's metadata
      ['static_sdist-1.0/src/static_sdist.egg-info/PKG-INFO', 'Metadata-Version: 2.1\nName: static-sdist\nVersion: 1.0\n'],
      ['static_sdist-1.0/pyproject.toml', '[project]\nname = "static-sdist"\nversion = "1.0"\n'],
      ['static_sdist-1.0/PKG-INFO', STATIC_PKG_INFO],
    ]);
    await writeTarGz(path.join(root, 'dynamic_sdist-1.0.tar.gz'), [['dynamic_sdist-1.0/PKG-INFO', DYNAMIC_PKG_INFO]]);
    await writeTarGz(path.join(root, AMBIGUOUS), [
      ['demo-lib-3-1/setup.py', 'from setuptools import setup\nsetup(name="demo-lib-3", version="1")\n'],
      ['demo-lib-3-1/PKG-INFO', AMBIGUOUS_PKG_INFO],
    ]);
    await fsp.mkdir(path.join(root, 'nested', 'deeper'), { recursive: true });
    await writeWheel(path.join(root, 'nested', 'deeper'), 'nested-pkg', '0.1', metadataText(
      [
        ['Metadata-Version', '2.1'],
        ['Name', 'nested-pkg'],
        ['Version', '0.1'],
        ['Summary', 'Déjà vu — a wheel in a subdirectory'],
        ['Requires-Python', '<4,>=3.7,!=3.8.*'],
        ['Requires-Dist', 'pypi-lite-demo (>=1.0) ; python_version < "4" and extra == "x"'],
        ['Provides-Extra', 'x'],
      ],
      'Body with <markup> & "quotes".\n',
    ));
    // a local version: '+' must survive the href and the appended '.metadata'
    await writeWheel(root, 'local-ver', '1.0+cpu.2', metadataText([['Metadata-Version', '2.1'], ['Name', 'local-ver'], ['Version', '1.0+cpu.2']]));
    // CRLF line ends and no trailing body: served byte for byte all the same
    await writeWheel(root, 'crlf-pkg', '1.0', 'Metadata-Version: 2.1\r\nName: crlf-pkg\r\nVersion: 1.0\r\nRequires-Python: >=3\r\n');
    server = await spawnServer(['--disable-fallback', root]);
    await waitHealthy(server.url, { idle: true });
  });

  after(async () => {
    await server?.stop();
    if (root) await fsp.rm(root, { recursive: true, force: true });
  });

  it('serves every wheel\'s .metadata byte-identical to its .dist-info/METADATA, with the advertised sha256', async () => {
    const wheels = (await listFiles(root)).filter((f) => f.endsWith('.whl'));
    expect(wheels).to.include(NESTED_WHEEL);
    expect(wheels).to.include('local_ver-1.0+cpu.2-py3-none-any.whl');
    expect(wheels.length).to.be.at.least(8);
    for (const rel of wheels) {
      const md = await coreMetadata(rel);
      const project = normalize(md.name);
      const filename = path.basename(rel);
      const p = await page(project);
      const a = anchorFor(p, filename);
      const digest = sha256(md.bytes);
      expect(a.attrs['data-core-metadata'], `${rel}: data-core-metadata`).to.equal(`sha256=${digest}`);
      expect(a.attrs['data-dist-info-metadata'], `${rel}: data-dist-info-metadata`).to.equal(`sha256=${digest}`);
      expect(jsonFileFor(p, filename)['core-metadata'], `${rel}: JSON core-metadata`).to.deep.equal({ sha256: digest });

      const r = await fetch(metadataUrl(project, a));
      expect(r.status, `${rel}.metadata`).to.equal(200);
      const body = Buffer.from(await r.arrayBuffer());
      expect(body.equals(md.bytes), `${rel}.metadata is byte-identical to the wheel's METADATA`).to.equal(true);
      expect(r.headers.get('content-encoding')).to.equal(null);
    }
  });

  it('never sends the old dist-info-metadata key in JSON (older pip crashes on it)', async () => {
    const index = (await (await fetch(`${server.url}/simple/`, { headers: { Accept: JSON_V1 } })).json()) as { projects: { name: string }[] };
    expect(index.projects.length).to.be.at.least(8);
    for (const { name } of index.projects) {
      const p = await page(normalize(name));
      expect(p.jsonText, `/simple/${normalize(name)}/ JSON`).not.to.contain('dist-info-metadata');
      for (const f of p.json.files) expect(f).not.to.have.property('dist-info-metadata');
    }
  });

  it('advertises nothing for sdists with Metadata-Version < 2.2, and their .metadata is 404', async () => {
    const legacy = (await listFiles(root)).filter((f) => f.endsWith('.tar.gz') && !['static_sdist-1.0.tar.gz', 'dynamic_sdist-1.0.tar.gz'].includes(f));
    expect(legacy).to.include.members(['pypi_lite_demo-1.0.0.tar.gz', 'sdist-only-tool-0.9.tar.gz', 'legacy/pypi_lite_extras-0.1.0.tar.gz', AMBIGUOUS]);
    for (const rel of legacy) {
      const md = await coreMetadata(rel);
      expect(Number.parseFloat(md.metadataVersion), `${rel}: test premise`).to.be.below(2.2);
      const project = normalize(md.name);
      const filename = path.basename(rel);
      const p = await page(project);
      const a = anchorFor(p, filename);
      expect(a.attrs, rel).not.to.have.property('data-core-metadata');
      expect(a.attrs, rel).not.to.have.property('data-dist-info-metadata');
      const core = jsonFileFor(p, filename)['core-metadata'];
      expect(core === undefined || core === false, `${rel}: JSON core-metadata is ${JSON.stringify(core)}`).to.equal(true);
      const r = await fetch(metadataUrl(project, a));
      expect(r.status, `${rel}.metadata`).to.equal(404);
    }
    // and a .metadata next to nothing is a 404 too
    expect((await fetch(`${server.url}/packages/nothing-1.0-py3-none-any.whl.metadata`)).status).to.equal(404);
  });

  it('advertises and serves the top-level PKG-INFO of an sdist with static metadata (Metadata-Version 2.2)', async () => {
    const md = await coreMetadata('static_sdist-1.0.tar.gz');
    expect(md.bytes.toString('utf8')).to.equal(STATIC_PKG_INFO);
    const digest = sha256(md.bytes);
    const p = await page('static-sdist');
    const a = anchorFor(p, 'static_sdist-1.0.tar.gz');
    expect(a.attrs['data-core-metadata']).to.equal(`sha256=${digest}`);
    expect(a.attrs['data-dist-info-metadata']).to.equal(`sha256=${digest}`);
    expect(jsonFileFor(p, 'static_sdist-1.0.tar.gz')['core-metadata']).to.deep.equal({ sha256: digest });
    const r = await fetch(metadataUrl('static-sdist', a));
    expect(r.status).to.equal(200);
    expect(Buffer.from(await r.arrayBuffer()).equals(md.bytes)).to.equal(true);
  });

  it('does not advertise an sdist whose Requires-Dist is Dynamic', async () => {
    const p = await page('dynamic-sdist');
    const a = anchorFor(p, 'dynamic_sdist-1.0.tar.gz');
    expect(a.attrs).not.to.have.property('data-core-metadata');
    expect(a.attrs).not.to.have.property('data-dist-info-metadata');
    const core = jsonFileFor(p, 'dynamic_sdist-1.0.tar.gz')['core-metadata'];
    expect(core === undefined || core === false).to.equal(true);
    expect((await fetch(metadataUrl('dynamic-sdist', a))).status).to.equal(404);
    // its Requires-Python is still published
    expect(a.attrs['data-requires-python']).to.equal('>=3.8');
  });

  it('publishes Requires-Python HTML-escaped in data-requires-python and as is in JSON', async () => {
    const demo = await page('pypi-lite-demo');
    expect(demo.html).to.match(/href="[^"]*pypi_lite_demo-2\.0\.0-py3-none-any\.whl#sha256=[0-9a-f]{64}"[^>]* data-requires-python="&gt;=3\.9"/);
    expect(demo.html).not.to.match(/data-requires-python="[^"]*[<>]/);
    const nested = await page('nested-pkg');
    expect(nested.html).to.contain('data-requires-python="&lt;4,&gt;=3.7,!=3.8.*"');

    for (const rel of await listFiles(root)) {
      if (!/\.(whl|tar\.gz)$/.test(rel)) continue;
      const md = await coreMetadata(rel);
      const p = rel.startsWith('nested/') ? nested : rel.startsWith('pypi_lite_demo') ? demo : await page(normalize(md.name));
      const filename = path.basename(rel);
      expect(anchorFor(p, filename).attrs['data-requires-python'], `${rel}: data-requires-python`).to.equal(md.requiresPython ?? undefined);
      expect(jsonFileFor(p, filename)['requires-python'] ?? null, `${rel}: JSON requires-python`).to.equal(md.requiresPython);
    }
  });

  it('groups an ambiguous legacy sdist under the project its metadata names, and says so in the log', async () => {
    const p = await page('demo-lib-3');
    expect(p.anchors.map((a) => a.text)).to.deep.equal([AMBIGUOUS]);
    expect(p.json.name).to.equal('demo-lib-3');
    expect(p.json.versions).to.deep.equal(['1']);
    // the file name's reading ("demo-lib" 3-1) is not a project
    expect((await fetch(`${server.url}/simple/demo-lib/`)).status).to.equal(404);
    const index = (await (await fetch(`${server.url}/simple/`, { headers: { Accept: JSON_V1 } })).json()) as { projects: { name: string }[] };
    const names = index.projects.map((x) => normalize(x.name));
    expect(names).to.include('demo-lib-3');
    expect(names).not.to.include('demo-lib');
    // the file still downloads from its listed URL
    const a = anchorFor(p, AMBIGUOUS);
    const dl = await fetch(new URL(a.href, `${server.url}/simple/demo-lib-3/`));
    expect(dl.status).to.equal(200);
    expect(sha256(Buffer.from(await dl.arrayBuffer()))).to.equal(sha256(await fsp.readFile(path.join(root, AMBIGUOUS))));
    // the Warehouse JSON API agrees
    const j = await fetch(`${server.url}/pypi/demo-lib-3/json`);
    expect(j.status).to.equal(200);
    const body = (await j.json()) as { info: { name: string; version: string }; releases: Record<string, { filename: string }[]> };
    expect(body.info.version).to.equal('1');
    expect(Object.keys(body.releases)).to.deep.equal(['1']);
    expect(body.releases['1'].map((f) => f.filename)).to.deep.equal([AMBIGUOUS]);

    const warnings = server.logs().filter((l) => typeof l.level === 'number' && l.level >= 40 && String(l.msg).includes(AMBIGUOUS));
    expect(warnings.length, `a warning about ${AMBIGUOUS} in:\n${server.output()}`).to.be.at.least(1);
    expect(String(warnings[0].msg)).to.contain('demo-lib-3');
  });

  it('serves the new metadata when a wheel is replaced in place', async () => {
    const abs = path.join(root, NESTED_WHEEL);
    const tmpDir = path.join(root, '.tmp-rebuild');
    await fsp.mkdir(tmpDir);
    const rebuilt = await writeWheel(tmpDir, 'nested-pkg', '0.1', metadataText([
      ['Metadata-Version', '2.1'], ['Name', 'nested-pkg'], ['Version', '0.1'], ['Summary', 'rebuilt'], ['Requires-Python', '>=3.10'],
    ]));
    await fsp.rename(rebuilt, abs);
    const fresh = await coreMetadata(NESTED_WHEEL);
    const digest = sha256(fresh.bytes);
    const deadline = Date.now() + 10_000;
    let a: Anchor | undefined;
    for (;;) {
      a = (await page('nested-pkg')).anchors.find((x) => x.text === path.basename(NESTED_WHEEL));
      if (a?.attrs['data-core-metadata'] === `sha256=${digest}`) break;
      if (Date.now() > deadline) expect.fail(`the page never advertised the new metadata; last: ${JSON.stringify(a?.attrs)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(a.attrs['data-requires-python']).to.equal('>=3.10');
    const r = await fetch(metadataUrl('nested-pkg', a));
    expect(r.status).to.equal(200);
    expect(Buffer.from(await r.arrayBuffer()).equals(fresh.bytes)).to.equal(true);
  });
});
