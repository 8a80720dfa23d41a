// The Warehouse JSON API (/pypi/<project>/json, /pypi/<project>/<version>/json) of a real
// server, compared field by field with values computed here from the files themselves: digests
// with node:crypto and Python's hashlib (blake2b-256), metadata with Python's email parser.

import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { blake2b256, canonicalVersions, listFiles, metadataText, parseMetadataPy, sdistPkgInfo, wheelMetadata, writeTarGz, writeWheel, type PyMetadata } from './helpers/archives.js';
import { JSON_V1, request, type ProjectJson } from './helpers/http.js';
import { copyExample, spawnServer, waitHealthy, type Spawned } from './helpers/server.js';

interface FileJson {
  comment_text?: string;
  digests: { md5: string; sha256: string; blake2b_256: string };
  filename: string;
  md5_digest?: string;
  packagetype: string;
  python_version: string;
  requires_python: string | null;
  size: number;
  upload_time: string;
  upload_time_iso_8601: string;
  url: string;
  yanked: boolean;
  yanked_reason: string | null;
}

interface InfoJson {
  name: string;
  version: string;
  summary: string | null;
  requires_python: string | null;
  requires_dist: string[] | null;
  license: string | null;
  author: string | null;
  author_email: string | null;
  home_page: string | null;
  keywords: string | null;
  classifiers: string[];
  project_urls: Record<string, string> | null;
  description: string;
  description_content_type: string | null;
  yanked: boolean;
  yanked_reason: string | null;
}

interface ProjectDoc {
  info: InfoJson;
  releases: Record<string, FileJson[]>;
  urls: FileJson[];
}

interface ReleaseDoc {
  info: InfoJson;
  urls: FileJson[];
}

/** Everything the JSON API should say about one file, computed from the file itself. */
interface Expected {
  rel: string;
  filename: string;
  version: string;
  kind: 'wheel' | 'sdist';
  pythonTag: string;
  size: number;
  mtimeMs: number;
  md5: string;
  sha256: string;
  blake2b: string;
  md: PyMetadata;
}

const richMetadata = (version: string, extra: [string, string][] = []): string =>
  metadataText(
    [
      ['Metadata-Version', '2.1'],
      ['Name', 'Rich.Pkg'],
      ['Version', version],
      ['Summary', `Rich.Pkg ${version}: a distribution with many fields`],
      ['Home-page', 'https://example.invalid/home'],
      ['Author', 'Ada Lovelace'],
      ['Author-email', 'Ada <ada@example.invalid>'],
      ['License', 'BSD-3-Clause'],
      ['Keywords', 'demo,json,test'],
      ['Classifier', 'Programming Language :: Python :: 3'],
      ['Classifier', 'License :: OSI Approved :: BSD License'],
      ['Requires-Python', '>=3.8'],
      ['Requires-Dist', 'pypi-lite-demo>=1.0'],
      ['Requires-Dist', 'colorama; sys_platform == "win32"'],
      ['Provides-Extra', 'fast'],
      ['Requires-Dist', 'pypi-lite-demo>=2.0; extra == "fast"'],
      ['Project-URL', 'Homepage, https://example.invalid/'],
      ['Project-URL', 'Source Code, https://example.invalid/src'],
      ['Project-URL', 'Issue Tracker, https://example.invalid/issues?q=1&r=2'],
      ['Description-Content-Type', 'text/markdown; charset=UTF-8'],
      ...extra,
    ],
    `# Rich.Pkg ${version}\n\nSome *markdown*, with "quotes", <angles> & a non-ASCII ümlaut.\n\n    indented code\n`,
  );

const first = (md: PyMetadata, field: string): string | null => md.fields[field]?.[0] ?? null;

function projectUrls(md: PyMetadata): Record<string, string> | null {
  const out: Record<string, string> = {};
  for (const v of md.fields['project-url'] ?? []) {
    const i = v.indexOf(',');
    const label = v.slice(0, i).trim();
    if (!(label in out)) out[label] = v.slice(i + 1).trim();
  }
  return Object.keys(out).length ? out : null;
}

describe('Warehouse JSON API (/pypi/<project>/json)', function () {
  this.timeout(60_000);
  let root: string;
  let server: Spawned;
  const expected = new Map<string, Expected>();
  /** version spelling -> canonical form (Python's packaging), for every version the tests use */
  const canon = new Map<string, string>();
  const canonical = (v: string): string => {
    const c = canon.get(v);
    if (c === undefined) throw new Error(`no canonical form computed for version ${v}`);
    return c;
  };

  async function getJson<T>(pathname: string): Promise<T> {
    const r = await fetch(`${server.url}${pathname}`);
    expect(r.status, pathname).to.equal(200);
    expect(r.headers.get('content-type') ?? '', pathname).to.match(/^application\/json\b/);
    return (await r.json()) as T;
  }

  function filesOfVersion(project: string, version: string): Expected[] {
    return [...expected.values()].filter((e) => normalize(first(e.md, 'name')!) === project && canonical(e.version) === canonical(version));
  }

  /** Check one entry of `urls` / `releases[v]` against the file on disk. */
  async function checkFile(f: FileJson, yank: string | null): Promise<void> {
    const e = expected.get(f.filename);
    expect(e, `unexpected file ${f.filename}`).to.not.equal(undefined);
    const what = f.filename;
    expect(f.digests, `${what}: digests`).to.deep.equal({ md5: e!.md5, sha256: e!.sha256, blake2b_256: e!.blake2b });
    if (f.md5_digest !== undefined) expect(f.md5_digest, `${what}: md5_digest`).to.equal(e!.md5);
    expect(f.size, `${what}: size`).to.equal(e!.size);
    expect(f.packagetype, `${what}: packagetype`).to.equal(e!.kind === 'wheel' ? 'bdist_wheel' : 'sdist');
    expect(f.python_version, `${what}: python_version`).to.equal(e!.pythonTag);
    expect(f.requires_python, `${what}: requires_python`).to.equal(first(e!.md, 'requires-python'));
    expect(f.yanked, `${what}: yanked`).to.equal(yank !== null);
    expect(f.yanked_reason, `${what}: yanked_reason`).to.equal(yank === null || yank === '' ? null : yank);
    // times: the file's modification time (there is no upload record), in PyPI's two formats
    expect(f.upload_time, `${what}: upload_time`).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
    expect(f.upload_time_iso_8601, `${what}: upload_time_iso_8601`).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$/);
    const mtimeSecond = Math.floor(e!.mtimeMs / 1000) * 1000;
    expect(Date.parse(`${f.upload_time}Z`), `${what}: upload_time is the file's mtime`).to.equal(mtimeSecond);
    expect(Math.abs(Date.parse(f.upload_time_iso_8601) - e!.mtimeMs), `${what}: upload_time_iso_8601 is the file's mtime`).to.be.below(1);
    // an absolute URL that downloads exactly this file
    expect(f.url, `${what}: url`).to.match(new RegExp(`^${server.url.replace(/[.]/g, '\\.')}/`));
    expect(decodeURIComponent(new URL(f.url).pathname.split('/').pop()!), `${what}: url names the file`).to.equal(f.filename);
    const dl = await fetch(f.url);
    expect(dl.status, `${what}: GET url`).to.equal(200);
    const bytes = Buffer.from(await dl.arrayBuffer());
    expect(createHash('sha256').update(bytes).digest('hex'), `${what}: downloaded bytes`).to.equal(e!.sha256);
  }

  /** The release's metadata as PyPI shows it: from a wheel when there is one, else the sdist. */
  function releaseMetadata(files: Expected[]): PyMetadata {
    const wheel = files.find((f) => f.kind === 'wheel');
    return (wheel ?? files[0]).md;
  }

  function checkInfo(info: InfoJson, files: Expected[], version: string, yank: string | null): void {
    const md = releaseMetadata(files);
    const body = md.body;
    expect(info.name, 'info.name').to.equal(first(md, 'name'));
    // the release's version, as one of its files spells it
    expect(files.map((f) => f.version), 'info.version').to.include(info.version);
    expect(canonical(info.version), 'info.version').to.equal(canonical(version));
    expect(info.summary, 'info.summary').to.equal(first(md, 'summary'));
    expect(info.requires_python, 'info.requires_python').to.equal(first(md, 'requires-python'));
    expect(info.requires_dist, 'info.requires_dist').to.deep.equal(md.fields['requires-dist'] ?? null);
    expect(info.license, 'info.license').to.equal(first(md, 'license'));
    expect(info.author, 'info.author').to.equal(first(md, 'author'));
    expect(info.author_email, 'info.author_email').to.equal(first(md, 'author-email'));
    expect(info.home_page, 'info.home_page').to.equal(first(md, 'home-page'));
    expect(info.keywords, 'info.keywords').to.equal(first(md, 'keywords'));
    expect(info.classifiers, 'info.classifiers').to.deep.equal(md.fields.classifier ?? []);
    expect(info.project_urls, 'info.project_urls').to.deep.equal(projectUrls(md));
    expect(info.description, 'info.description').to.equal(body ?? '');
    expect(info.description_content_type, 'info.description_content_type').to.equal(first(md, 'description-content-type'));
    expect(info.yanked, 'info.yanked').to.equal(yank !== null);
    expect(info.yanked_reason, 'info.yanked_reason').to.equal(yank === null || yank === '' ? null : yank);
  }

  before(async () => {
    root = await copyExample();
    await writeWheel(root, 'Rich.Pkg', '0.9', richMetadata('0.9'));
    await writeWheel(root, 'Rich.Pkg', '1.0', richMetadata('1.0'));
    await writeTarGz(path.join(root, 'rich_pkg-1.0.tar.gz'), [
      ['rich_pkg-1.0/pyproject.toml', '[project]\nname = "Rich.Pkg"\n'],
      ['rich_pkg-1.0/PKG-INFO', richMetadata('1.0')],
    ]);
    await writeWheel(root, 'Rich.Pkg', '1.5', richMetadata('1.5', [['Requires-Dist', 'something-new>=1']]));
    await writeWheel(root, 'Rich.Pkg', '2.0rc1', richMetadata('2.0rc1'));
    // a legacy sdist spelling the pre-release differently: the same release as the 2.0rc1 wheel
    await writeTarGz(path.join(root, 'Rich.Pkg-2.0-RC1.tar.gz'), [
      ['Rich.Pkg-2.0-RC1/PKG-INFO', metadataText([['Metadata-Version', '1.1'], ['Name', 'Rich.Pkg'], ['Version', '2.0-RC1'], ['Summary', 'legacy sdist']])],
    ]);
    await fsp.writeFile(path.join(root, 'yanked.txt'), 'rich-pkg==1.5 bad\nRich.Pkg==0.9.0\n');

    const rels = (await listFiles(root)).filter((f) => /\.(whl|tar\.gz)$/.test(f));
    const blakes = await blake2b256(rels.map((r) => path.join(root, r)));
    for (const [i, rel] of rels.entries()) {
      const abs = path.join(root, rel);
      const data = await fsp.readFile(abs);
      const st = await fsp.stat(abs);
      const filename = path.basename(rel);
      const wheel = filename.endsWith('.whl');
      const mdBytes = wheel ? await wheelMetadata(abs) : await sdistPkgInfo(abs);
      const md = await parseMetadataPy(mdBytes!);
      expected.set(filename, {
        rel,
        filename,
        version: first(md, 'version')!,
        kind: wheel ? 'wheel' : 'sdist',
        pythonTag: wheel ? filename.split('-').slice(-3)[0] : 'source',
        size: st.size,
        mtimeMs: st.mtimeMs,
        md5: createHash('md5').update(data).digest('hex'),
        sha256: createHash('sha256').update(data).digest('hex'),
        blake2b: blakes[i],
        md,
      });
    }
    const spellings = [...new Set([...[...expected.values()].map((e) => e.version), '2.0', '2.0.0rc1', '1.0.0'])];
    for (const [i, c] of (await canonicalVersions(spellings)).entries()) canon.set(spellings[i], c);
    server = await spawnServer(['--disable-fallback', root]);
    await waitHealthy(server.url, { idle: true });
  });

  after(async () => {
    await server?.stop();
    if (root) await fsp.rm(root, { recursive: true, force: true });
  });

  it('describes pypi-lite-demo: info of the latest release, every release, urls of the latest', async () => {
    const doc = await getJson<ProjectDoc>('/pypi/pypi-lite-demo/json');
    checkInfo(doc.info, filesOfVersion('pypi-lite-demo', '2.0.0'), '2.0.0', null);
    expect(doc.info.requires_python).to.equal('>=3.9');
    expect(doc.info.requires_dist).to.equal(null);
    expect(doc.info.project_urls).to.equal(null);
    expect(Object.keys(doc.releases).sort()).to.deep.equal(['1.0.0', '1.1.0', '2.0.0']);
    for (const [v, files] of Object.entries(doc.releases)) {
      expect(files.map((f) => f.filename).sort(), `releases[${v}]`).to.deep.equal(filesOfVersion('pypi-lite-demo', v).map((e) => e.filename).sort());
      for (const f of files) await checkFile(f, null);
    }
    expect(doc.urls.map((f) => f.filename).sort()).to.deep.equal(['pypi_lite_demo-2.0.0-py3-none-any.whl', 'pypi_lite_demo-2.0.0.tar.gz']);
    for (const f of doc.urls) await checkFile(f, null);
  });

  it('takes every info field from the metadata (Project-URL, Requires-Dist, description, ...)', async () => {
    const doc = await getJson<ProjectDoc>('/pypi/rich-pkg/json');
    // 2.0rc1 is a pre-release and 1.5 is yanked: PyPI's "latest" is 1.0
    checkInfo(doc.info, filesOfVersion('rich-pkg', '1.0'), '1.0', null);
    expect(doc.info.name).to.equal('Rich.Pkg');
    expect(doc.info.project_urls).to.deep.equal({
      Homepage: 'https://example.invalid/',
      'Source Code': 'https://example.invalid/src',
      'Issue Tracker': 'https://example.invalid/issues?q=1&r=2',
    });
    expect(doc.info.requires_dist).to.deep.equal(['pypi-lite-demo>=1.0', 'colorama; sys_platform == "win32"', 'pypi-lite-demo>=2.0; extra == "fast"']);
    expect(doc.info.description).to.contain('ümlaut').and.to.contain('    indented code');
    // one entry per release: the 2.0rc1 wheel and the 2.0-RC1 sdist are the same release
    expect(Object.keys(doc.releases).map(canonical).sort(), `releases: ${Object.keys(doc.releases).join(', ')}`).to.deep.equal(['0.9', '1', '1.5', '2rc1']);
    for (const [v, files] of Object.entries(doc.releases)) {
      expect(files.map((f) => f.filename).sort(), `releases[${v}]`).to.deep.equal(filesOfVersion('rich-pkg', v).map((e) => e.filename).sort());
      for (const f of files) await checkFile(f, v === '1.5' ? 'bad' : v === '0.9' ? '' : null);
    }
    expect(doc.releases['2.0rc1'] ?? doc.releases['2.0-RC1']).to.have.length(2);
    expect(doc.urls.map((f) => f.filename).sort()).to.deep.equal(['rich_pkg-1.0-py3-none-any.whl', 'rich_pkg-1.0.tar.gz']);
    for (const f of doc.urls) await checkFile(f, null);
  });

  it('describes one release at /pypi/<project>/<version>/json, yanked ones included', async () => {
    const yanked = await getJson<ReleaseDoc>('/pypi/rich-pkg/1.5/json');
    checkInfo(yanked.info, filesOfVersion('rich-pkg', '1.5'), '1.5', 'bad');
    expect(yanked.info.requires_dist).to.include('something-new>=1');
    expect(yanked.urls.map((f) => f.filename)).to.deep.equal(['rich_pkg-1.5-py3-none-any.whl']);
    for (const f of yanked.urls) await checkFile(f, 'bad');

    // yanked without a reason: yanked_reason is null
    const noReason = await getJson<ReleaseDoc>('/pypi/rich-pkg/0.9/json');
    checkInfo(noReason.info, filesOfVersion('rich-pkg', '0.9'), '0.9', '');
    for (const f of noReason.urls) await checkFile(f, '');

    const pre = await getJson<ReleaseDoc>('/pypi/rich-pkg/2.0rc1/json');
    checkInfo(pre.info, filesOfVersion('rich-pkg', '2.0rc1'), '2.0rc1', null);
    // every file of the release, whatever the spelling of the version in its name
    expect(pre.urls.map((f) => f.filename).sort()).to.deep.equal(['Rich.Pkg-2.0-RC1.tar.gz', 'rich_pkg-2.0rc1-py3-none-any.whl']);
    for (const f of pre.urls) await checkFile(f, null);

    const old = await getJson<ReleaseDoc>('/pypi/pypi-lite-demo/1.0.0/json');
    checkInfo(old.info, filesOfVersion('pypi-lite-demo', '1.0.0'), '1.0.0', null);
    expect(old.info.requires_python).to.equal('>=3.6');
    expect(old.urls.map((f) => f.filename).sort()).to.deep.equal(['pypi_lite_demo-1.0.0-py3-none-any.whl', 'pypi_lite_demo-1.0.0.tar.gz']);
    for (const f of old.urls) await checkFile(f, null);

    // an sdist-only project: the info comes from PKG-INFO
    const tool = await getJson<ProjectDoc>('/pypi/sdist-only-tool/json');
    checkInfo(tool.info, filesOfVersion('sdist-only-tool', '0.9'), '0.9', null);
    for (const f of tool.urls) await checkFile(f, null);

    // a dependency and an extra
    const extras = await getJson<ProjectDoc>('/pypi/pypi-lite-extras/json');
    checkInfo(extras.info, filesOfVersion('pypi-lite-extras', '0.1.0'), '0.1.0', null);
    expect(extras.info.requires_dist).to.deep.equal(['pypi-lite-demo>=1.0', "pypi-lite-demo>=2.0; extra == 'fast'"]);
    expect(extras.urls.map((f) => f.filename).sort()).to.deep.equal(['pypi_lite_extras-0.1.0-py3-none-any.whl', 'pypi_lite_extras-0.1.0.tar.gz']);
    for (const f of extras.urls) await checkFile(f, null);
  });

  it('finds a version by PEP 440 equality (2.0 is 2.0.0)', async () => {
    const doc = await getJson<ReleaseDoc>('/pypi/pypi-lite-demo/2.0/json');
    expect(doc.info.version).to.equal('2.0.0');
    expect(doc.urls.map((f) => f.filename).sort()).to.deep.equal(['pypi_lite_demo-2.0.0-py3-none-any.whl', 'pypi_lite_demo-2.0.0.tar.gz']);
    const pre = await getJson<ReleaseDoc>('/pypi/rich-pkg/2.0.0rc1/json');
    expect(['2.0rc1', '2.0-RC1']).to.include(pre.info.version);
    expect(pre.urls.map((f) => f.filename).sort()).to.deep.equal(['Rich.Pkg-2.0-RC1.tar.gz', 'rich_pkg-2.0rc1-py3-none-any.whl']);
    const v = await getJson<ReleaseDoc>('/pypi/rich-pkg/1.0.0/json');
    expect(v.info.version).to.equal('1.0');
  });

  it('redirects other spellings of the name to the normalized one (301)', async () => {
    for (const [from, to] of [
      ['/pypi/Fancy.Mixed_Name/json', '/pypi/fancy-mixed-name/json'],
      ['/pypi/Fancy.Mixed_Name/0.3.1/json', '/pypi/fancy-mixed-name/0.3.1/json'],
      ['/pypi/PYPI_LITE.demo/json', '/pypi/pypi-lite-demo/json'],
    ] as const) {
      const r = await request(server.url, from);
      expect(r.status, from).to.equal(301);
      const loc = new URL(String(r.headers.location), `${server.url}${from}`);
      expect(`${loc.origin}${loc.pathname}`, from).to.equal(`${server.url}${to}`);
    }
    const fancy = await getJson<ProjectDoc>('/pypi/fancy-mixed-name/json');
    expect(fancy.info.name).to.equal('Fancy.Mixed_Name');
    checkInfo(fancy.info, filesOfVersion('fancy-mixed-name', '0.3.1'), '0.3.1', null);
  });

  it('answers 404 for an unknown project or version', async () => {
    for (const p of ['/pypi/no-such-project/json', '/pypi/no-such-project/1.0/json', '/pypi/pypi-lite-demo/9.9/json', '/pypi/pypi-lite-demo/not-a-version/json', '/pypi/rich-pkg/2.0/json']) {
      const r = await fetch(`${server.url}${p}`);
      expect(r.status, p).to.equal(404);
    }
  });

  it('agrees with the Simple API on sizes, hashes, Requires-Python, yanks and times', async () => {
    const doc = await getJson<ProjectDoc>('/pypi/rich-pkg/json');
    const simple = (await (await fetch(`${server.url}/simple/rich-pkg/`, { headers: { Accept: JSON_V1 } })).json()) as ProjectJson;
    const all = Object.values(doc.releases).flat();
    expect(all.map((f) => f.filename).sort()).to.deep.equal(simple.files.map((f) => f.filename).sort());
    for (const s of simple.files) {
      const j = all.find((f) => f.filename === s.filename)!;
      expect(j.size).to.equal(s.size);
      expect(j.digests.sha256).to.equal(s.hashes.sha256);
      expect(j.requires_python).to.equal(s['requires-python'] ?? null);
      expect(j.yanked ? (j.yanked_reason ?? true) : false).to.equal(s.yanked);
      expect(Date.parse(j.upload_time_iso_8601)).to.equal(Date.parse(s['upload-time']));
    }
  });
});

function normalize(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}
