import { expect } from 'chai';
import { Catalog, type DistFile } from '../lib/catalog/catalog.js';
import type { MetadataSummary } from '../lib/metadata/types.js';
import { parseFilename, type ParsedFilename } from '../lib/catalog/filename.js';
import { normalizeName } from '../lib/core/names.js';
import pino from 'pino';
import { FsStore } from '../lib/store/fs-store.js';
import { listLocal } from '../lib/simple/listing.js';
import { renderIndexHtml, renderIndexJson, renderProjectHtml, renderProjectJson, type ProjectPageData } from '../lib/simple/render.js';
import { anchors, decodeEntities, type ProjectJson } from './helpers/http.js';

/** Never touched: rendering needs no file. */
const STORE = new FsStore('/root', pino({ level: 'silent' }));

const HEX_A = 'a'.repeat(64);
const HEX_B = '0123456789abcdef'.repeat(4);
const HEX_M = 'f'.repeat(64);
const UPLOAD_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$/;

interface FileOpts {
  relPath?: string;
  sha256?: string | null;
  size?: number;
  mtimeMs?: number;
  metadata?: MetadataSummary | null;
  yank?: string | null;
  version?: string;
  project?: string;
  displayName?: string;
}

function metadata(servable: boolean, requiresPython: string | null = null, sha = HEX_M): MetadataSummary {
  return { sha256: sha, size: 100, name: null, version: null, requiresPython, servable };
}

/** A DistFile as the indexer would build it; names the parser refuses get a hand-made parse. */
function dist(filename: string, o: FileOpts = {}): DistFile {
  const parsed: ParsedFilename = parseFilename(filename) ?? {
    filename,
    kind: 'sdist',
    packagetype: 'sdist',
    name: o.displayName ?? 'weird',
    project: o.project ?? 'weird',
    version: o.version ?? '1.0',
    buildTag: null,
    pythonTag: 'source',
    abiTag: null,
    platformTag: null,
    extension: '.tar.gz',
  };
  const relPath = o.relPath ?? filename;
  return {
    root: '/root',
    relPath,
    store: STORE,
    filename,
    parsed,
    project: o.project ?? parsed.project,
    displayName: o.displayName ?? parsed.name,
    version: o.version ?? parsed.version,
    size: o.size ?? 1234,
    mtimeMs: o.mtimeMs ?? 1_700_000_000_123.456,
    sha256: o.sha256 === undefined ? HEX_A : o.sha256,
    metadata: o.metadata,
    yank: o.yank === undefined || o.yank === null ? null : { reason: o.yank },
  };
}

function page(files: DistFile[], name = 'demo', displayName = 'Demo'): ProjectPageData {
  return { name, displayName, files: files.map(listLocal), versions: [...new Set(files.map((f) => f.version))] };
}

function htmlOf(p: ProjectPageData): string {
  return renderProjectHtml(p).toString('utf8');
}

function jsonOf(p: ProjectPageData): ProjectJson {
  return JSON.parse(renderProjectJson(p).toString('utf8')) as ProjectJson;
}

const PAGE_URL = 'https://index.example/simple/demo/';

describe('Simple API rendering', () => {
  describe('HTML project page (PEP 503)', () => {
    it('has one anchor per file whose text is the last path segment of its href', () => {
      const files = [
        dist('demo-1.0-py3-none-any.whl'),
        dist('demo-1.0.tar.gz', { relPath: 'sub dir/demo-1.0.tar.gz' }),
        dist('demo-1.0+local.tar.gz', { relPath: 'x/y/demo-1.0+local.tar.gz' }),
      ];
      const as = anchors(htmlOf(page(files)));
      expect(as).to.have.length(3);
      for (const [i, a] of as.entries()) {
        const u = new URL(a.href, PAGE_URL);
        const last = decodeURIComponent(u.pathname.split('/').pop()!);
        expect(a.text).to.equal(files[i].filename);
        expect(last).to.equal(files[i].filename);
        expect(decodeURIComponent(u.pathname)).to.equal(`/packages/${files[i].relPath}`);
        expect(u.search).to.equal('');
      }
    });

    it('puts the sha256 in the URL fragment', () => {
      const [a] = anchors(htmlOf(page([dist('demo-1.0.tar.gz', { sha256: HEX_B })])));
      expect(new URL(a.href, PAGE_URL).hash).to.equal(`#sha256=${HEX_B}`);
    });

    it('escapes <script>, quotes and & in names, file names, requires-python and yank reasons', () => {
      const evilName = '<script>alert("x")</script> & \'co\'';
      const filename = 'evil<script>&"\'-1.0.tar.gz';
      const rp = '>=3.8,<4 && "quoted"';
      const reason = 'broken <b>"badly"</b> & \'worse\' <script>alert(1)</script>';
      const f = dist(filename, { metadata: metadata(true, rp), yank: reason, version: '1.0&<v>' });
      const html = htmlOf(page([f], 'evil', evilName));
      expect(html.toLowerCase()).not.to.include('<script');
      expect(html).not.to.include('<b>');
      const as = anchors(html);
      expect(as).to.have.length(1);
      expect(as[0].text).to.equal(filename);
      expect(as[0].attrs['data-requires-python']).to.equal(rp);
      expect(as[0].attrs['data-yanked']).to.equal(reason);
      // the title and heading show the name literally
      expect(decodeEntities(/<title>([^<]*)<\/title>/.exec(html)![1])).to.equal(`Links for ${evilName}`);
      expect(decodeEntities(/<h1>([^<]*)<\/h1>/.exec(html)![1])).to.equal(`Links for ${evilName}`);
      // every attribute value is properly quoted: no tag has a stray quote or angle bracket
      for (const tag of html.match(/<a\s[^>]*>/g) ?? []) expect((tag.match(/"/g) ?? []).length % 2).to.equal(0);
    });

    it('escapes names in the project list', () => {
      const html = renderIndexHtml([{ name: 'x', displayName: '<script>alert(1)</script>&"' }]).toString();
      expect(html.toLowerCase()).not.to.include('<script');
      const as = anchors(html);
      expect(as.map((a) => a.text)).to.deep.equal(['<script>alert(1)</script>&"']);
    });

    it('marks requires-python only when there is one', () => {
      const as = anchors(htmlOf(page([dist('demo-1.0.tar.gz', { metadata: metadata(true, '>=3.9') }), dist('demo-1.1.tar.gz', { metadata: metadata(true, null) })])));
      expect(as[0].attrs['data-requires-python']).to.equal('>=3.9');
      expect(as[1].attrs).not.to.have.property('data-requires-python');
    });

    it('adds data-core-metadata and data-dist-info-metadata only when the metadata can be served', () => {
      const files = [
        dist('a-1.0-py3-none-any.whl', { metadata: metadata(true, null, HEX_B) }),
        dist('a-1.1-py3-none-any.whl', { metadata: metadata(false, null, HEX_B) }),
        dist('a-1.2-py3-none-any.whl', { metadata: null }),
        dist('a-1.3-py3-none-any.whl', { metadata: undefined }),
      ];
      const as = anchors(htmlOf(page(files)));
      expect(as[0].attrs['data-core-metadata']).to.equal(`sha256=${HEX_B}`);
      expect(as[0].attrs['data-dist-info-metadata']).to.equal(`sha256=${HEX_B}`);
      for (const a of as.slice(1)) {
        expect(a.attrs, a.text).not.to.have.property('data-core-metadata');
        expect(a.attrs, a.text).not.to.have.property('data-dist-info-metadata');
      }
    });

    it('marks yanked files with data-yanked (empty or the reason) and leaves others alone', () => {
      const as = anchors(htmlOf(page([dist('a-1.0.tar.gz', { yank: '' }), dist('a-1.1.tar.gz', { yank: 'security hole' }), dist('a-1.2.tar.gz')])));
      expect(as[0].attrs['data-yanked']).to.equal('');
      expect(as[1].attrs['data-yanked']).to.equal('security hole');
      expect(as[2].attrs).not.to.have.property('data-yanked');
    });

    it('announces the repository version in a meta tag', () => {
      const html = htmlOf(page([dist('a-1.0.tar.gz')]));
      expect(html).to.match(/<meta name="pypi:repository-version" content="1\.1">/);
      expect(renderIndexHtml([]).toString()).to.match(/<meta name="pypi:repository-version" content="1\.1">/);
    });
  });

  describe('JSON project page (PEP 691/700)', () => {
    it('has meta.api-version 1.1 and the normalized name', () => {
      const j = jsonOf(page([dist('Demo_Pkg-1.0.tar.gz')], 'demo-pkg', 'Demo_Pkg'));
      expect(j.meta['api-version']).to.equal('1.1');
      expect(j.name).to.equal('demo-pkg');
      const idx = JSON.parse(renderIndexJson([{ name: 'demo-pkg', displayName: 'Demo_Pkg' }]).toString()) as { meta: { 'api-version': string }; projects: { name: string }[] };
      expect(idx.meta['api-version']).to.equal('1.1');
      expect(idx.projects).to.deep.equal([{ name: 'Demo_Pkg' }]);
    });

    it('always has hashes, an integer size and a well-formed upload-time', () => {
      const mtimes = [0, 1, 999.999, 1_700_000_000_000, 1_700_000_000_123.4568, Date.UTC(2099, 11, 31, 23, 59, 59, 999)];
      const files = mtimes.map((m, i) => dist(`a-1.${i}.tar.gz`, { mtimeMs: m, size: 1000 + i }));
      files.push(dist('a-2.0.tar.gz', { sha256: null }));
      const j = jsonOf(page(files));
      expect(j.files).to.have.length(files.length);
      for (const [i, f] of j.files.entries()) {
        expect(f, f.filename).to.have.property('hashes').that.is.an('object');
        expect(Number.isInteger(f.size), f.filename).to.equal(true);
        expect(f.size).to.equal(files[i].size);
        expect(f['upload-time'], f.filename).to.match(UPLOAD_TIME);
        expect(Date.parse(f['upload-time'])).to.equal(Math.floor(files[i].mtimeMs));
      }
      expect(j.files[1].hashes).to.deep.equal({ sha256: HEX_A });
    });

    it('gives url relative to the page, without query, and resolving to /packages/<path>', () => {
      const j = jsonOf(page([dist('a-1.0.tar.gz', { relPath: 'legacy/a-1.0.tar.gz' })]));
      const u = new URL(j.files[0].url, PAGE_URL);
      expect(u.pathname).to.equal('/packages/legacy/a-1.0.tar.gz');
      expect(u.search).to.equal('');
      expect(u.hash).to.equal('');
    });

    it('uses core-metadata, never the old dist-info-metadata key', () => {
      const j = jsonOf(page([dist('a-1.0-py3-none-any.whl', { metadata: metadata(true, null, HEX_B) }), dist('a-1.1-py3-none-any.whl', { metadata: metadata(false) }), dist('a-1.2.tar.gz', { metadata: null })]));
      expect(j.files[0]['core-metadata']).to.deep.equal({ sha256: HEX_B });
      expect(j.files[1]['core-metadata'] ?? false).to.equal(false);
      expect(j.files[2]['core-metadata'] ?? false).to.equal(false);
      for (const f of j.files) expect(f).not.to.have.property('dist-info-metadata');
      expect(renderProjectJson(page([dist('a-1.0-py3-none-any.whl', { metadata: metadata(true) })])).toString()).not.to.include('dist-info-metadata');
    });

    it('gives yanked as false, true, or the reason', () => {
      const j = jsonOf(page([dist('a-1.0.tar.gz'), dist('a-1.1.tar.gz', { yank: '' }), dist('a-1.2.tar.gz', { yank: 'do not use "this" <one>' })]));
      expect(j.files.map((f) => f.yanked)).to.deep.equal([false, true, 'do not use "this" <one>']);
    });

    it('round-trips strings with quotes, < and & exactly', () => {
      const rp = '>=3.8,<4 && "x"';
      const j = jsonOf(page([dist('weird"&<-1.0.tar.gz', { metadata: metadata(true, rp) })], 'weird', '<script>"&'));
      expect(j.files[0].filename).to.equal('weird"&<-1.0.tar.gz');
      expect(j.files[0]['requires-python']).to.equal(rp);
    });

    it('lists every file version in versions (via the catalog)', () => {
      const c = new Catalog();
      const names = ['demo-1.0.tar.gz', 'demo-1.0-py3-none-any.whl', 'demo-2.0rc1.tar.gz', 'demo-1.10-py3-none-any.whl', 'demo-0.9.zip', 'demo-1.0.post1.tar.gz', 'demo-3.0.dev0-py3-none-any.whl'];
      for (const n of names) c.upsert(dist(n));
      const p = c.project(normalizeName('demo'))!;
      expect(p).to.not.equal(undefined);
      const j = jsonOf({ name: p.name, displayName: p.displayName, files: c.filesOf(p).map(listLocal), versions: c.versionsOf(p) });
      expect(j.files).to.have.length(names.length);
      for (const f of j.files) expect(j.versions, f.filename).to.include(parseFilename(f.filename)!.version);
      expect(new Set(j.versions).size).to.equal(j.versions.length);
    });
  });
});
