// The rendered Simple API pages are bounded by bytes (issue 13): past the budget the least
// recently used projects' pages are dropped and rendered again on their next request, to the
// same bytes and ETag; a page served since the last sweep survives it (each format on its own);
// a change to a project still replaces only that project's pages.

import { expect } from 'chai';
import os from 'node:os';
import pino from 'pino';
import { IndexedFile } from '../lib/catalog/catalog.js';
import { describeName } from '../lib/catalog/filename.js';
import { Indexer } from '../lib/catalog/indexer.js';
import { PageCache } from '../lib/simple/pages.js';
import { FsStore } from '../lib/store/fs-store.js';

const log = pino({ level: 'silent' });

describe('PageCache: rendered pages bounded by bytes', function () {
  let indexer: Indexer;
  const store = new FsStore(os.tmpdir(), log);

  function add(project: string, version: string, sha = 'a'.repeat(64)): void {
    const name = `${project.replace(/-/g, '_')}-${version}-py3-none-any.whl`;
    const f = new IndexedFile(store, name, describeName(name)!, 1000, 1_700_000_000_000);
    f.sha256 = sha;
    f.metadata = null;
    indexer.catalog.upsert(f);
  }

  beforeEach(() => {
    indexer = new Indexer({ stores: [], cacheDir: null, workers: 1, watch: false }, log);
    for (let p = 0; p < 40; p++) for (let v = 0; v < 5; v++) add(`proj-${p}`, `1.${v}`);
  });
  afterEach(async () => indexer.close());

  it('keeps the pages within the budget and renders a dropped page again to the same bytes and ETag', async () => {
    const probe = new PageCache(indexer.catalog, indexer);
    const one = (await probe.project('proj-0', 'html'))!;
    const budget = 6 * (one.body.length + 512); // about six projects' HTML pages
    const pages = new PageCache(indexer.catalog, indexer, null, new Set(), budget);
    const first = (await pages.project('proj-0', 'html'))!;
    expect(pages.cached('proj-0', 'html'), 'rendered pages are cached').to.equal(first);
    for (let p = 1; p < 40; p++) await pages.project(`proj-${p}`, 'html');
    expect(pages.cachedBytes).to.be.at.most(budget);
    expect(pages.cachedBytes).to.be.greaterThan(budget / 2);
    expect(pages.cached('proj-0', 'html'), 'the oldest page was dropped').to.equal(undefined);
    const again = (await pages.project('proj-0', 'html'))!;
    expect(again).to.not.equal(first);
    expect(again.etag).to.equal(first.etag);
    expect(again.lastModified).to.equal(first.lastModified);
    expect(again.body.equals(first.body)).to.equal(true);
  });

  it("counts a page's gzip copy only once a client asked for it (pip does not): as many uncompressed pages fit as their bytes allow", async () => {
    const probe = new PageCache(indexer.catalog, indexer);
    const one = (await probe.project('proj-0', 'json'))!;
    const budget = 10 * (one.body.length + 512) + 100; // ten pages, not eight
    const pages = new PageCache(indexer.catalog, indexer, null, new Set(), budget);
    for (let p = 0; p < 10; p++) await pages.project(`proj-${p}`, 'json');
    for (let p = 0; p < 10; p++) expect(pages.cached(`proj-${p}`, 'json'), `proj-${p}`).to.not.equal(undefined);
    const before = pages.cachedBytes;
    const gz = pages.cached('proj-9', 'json')!.gzip;
    expect(pages.cachedBytes, 'the gzip copy is counted once made').to.be.at.most(budget);
    expect(pages.cachedBytes).to.be.greaterThan(budget - (one.body.length + 512) - 1);
    expect(pages.cached('proj-9', 'json'), 'the page just compressed stays').to.not.equal(undefined);
    expect(before + gz.length).to.be.greaterThan(budget);
    // Pages served since the last sweep stay: the budget holds by dropping another.
    expect([...Array(10).keys()].filter((p) => pages.cached(`proj-${p}`, 'json') === undefined)).to.have.length(1);
  });

  it('a page served since the last sweep survives it; unserved ones go first', async () => {
    const probe = new PageCache(indexer.catalog, indexer);
    const one = (await probe.project('proj-0', 'json'))!;
    const budget = 4.5 * (one.body.length + 512);
    const pages = new PageCache(indexer.catalog, indexer, null, new Set(), budget);
    await pages.project('proj-0', 'json');
    for (let p = 1; p < 20; p++) {
      expect(pages.cached('proj-0', 'json'), `proj-0 (served all along) before proj-${p}`).to.not.equal(undefined);
      await pages.project(`proj-${p}`, 'json');
    }
    expect(pages.cached('proj-0', 'json')).to.not.equal(undefined);
    expect(pages.cached('proj-1', 'json'), 'never served again').to.equal(undefined);
    expect(pages.cachedBytes).to.be.at.most(budget);
  });

  it("each format has its own chance: a project's JSON page, served all along, stays; its HTML page, not served since, goes", async () => {
    const probe = new PageCache(indexer.catalog, indexer);
    const one = (await probe.project('proj-0', 'json'))!;
    const budget = 4.5 * (one.body.length + 512);
    const pages = new PageCache(indexer.catalog, indexer, null, new Set(), budget);
    await pages.project('proj-0', 'html');
    await pages.project('proj-0', 'json');
    for (let p = 1; p < 20; p++) {
      expect(pages.cached('proj-0', 'json'), `proj-0's JSON page (served all along) before proj-${p}`).to.not.equal(undefined);
      await pages.project(`proj-${p}`, 'json');
    }
    expect(pages.cached('proj-0', 'json')).to.not.equal(undefined);
    expect(pages.cached('proj-0', 'html'), 'the HTML page nobody asked for again').to.equal(undefined);
    expect(pages.cachedBytes).to.be.at.most(budget);
    // Rendered again on request, to the same bytes.
    const html = (await pages.project('proj-0', 'html'))!;
    expect(html.etag).to.equal((await probe.project('proj-0', 'html'))!.etag);
  });

  it('a change to a project replaces its pages and keeps the others', async () => {
    const pages = new PageCache(indexer.catalog, indexer);
    const a = (await pages.project('proj-1', 'json'))!;
    const b = (await pages.project('proj-2', 'json'))!;
    const bytes = pages.cachedBytes;
    add('proj-1', '9.0', 'b'.repeat(64));
    expect(pages.cached('proj-1', 'json')).to.equal(undefined);
    expect(pages.cachedBytes, 'its bytes are released').to.be.below(bytes);
    expect(pages.cached('proj-2', 'json')).to.equal(b);
    const a2 = (await pages.project('proj-1', 'json'))!;
    expect(a2.etag).to.not.equal(a.etag);
    expect(a2.body.toString()).to.contain('b'.repeat(64));
  });
});
