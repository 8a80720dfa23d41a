// The in-bucket index, change feed and uniqueness claims that keep replicas on one bucket in
// step (lib/store/s3-feed.ts, s3-claims.ts), against a real S3 engine (test/helpers/rgw.ts):
// what one replica records, another recalls without reading the object; late feed objects are
// read once; compaction by one of two replicas; of two racing claims exactly one wins; a claim
// whose file never appeared expires.

import { expect } from 'chai';
import { pino } from 'pino';
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { startRgwOrSkip, type Rgw } from './helpers/rgw.js';
import { S3Feed, RESERVED } from '../lib/store/s3-feed.js';
import { S3Claims } from '../lib/store/s3-claims.js';
import { S3TextObject } from '../lib/store/s3-text.js';
import { YankStore, editYankList } from '../lib/catalog/yank.js';
import { parseFilename } from '../lib/catalog/filename.js';
import type { KnownDigests, StoreEvent } from '../lib/store/types.js';

const log = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const known = (sha: string): KnownDigests => ({ sha256: sha.repeat(64).slice(0, 64), metadata: { sha256: 'm'.repeat(64), size: 10, name: 'demo', version: '1.0', requiresPython: null, servable: true } });

async function until<T>(what: string, f: () => T | undefined, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('S3 feed and claims (replicas on one bucket)', function () {
  this.timeout(120_000);
  let rgw: Rgw;
  let s3: S3Client;
  let n = 0;
  const feeds: S3Feed[] = [];
  const bucket = () => `feed${n}`;
  const feed = (opts: Partial<ConstructorParameters<typeof S3Feed>[0]> = {}) => {
    const f = new S3Feed({ client: s3, bucket: bucket(), prefix: 'pkgs/', log, pollMs: 100, ...opts });
    feeds.push(f);
    return f;
  };

  before(async function () {
    rgw = await startRgwOrSkip(this);
    s3 = rgw.client();
  });
  beforeEach(async () => {
    n++;
    await rgw.createBucket(bucket());
  });
  afterEach(async () => {
    for (const f of feeds.splice(0)) await f.close();
  });
  after(async () => {
    s3?.destroy();
    await rgw?.stop();
  });

  it('what replica A records, replica B recalls for the same bytes only, and is told of', async () => {
    const a = feed();
    const b = feed();
    await a.load();
    await b.load();
    const events: StoreEvent[] = [];
    b.subscribe((e) => events.push(e));
    const entry = { key: 'demo/demo-1.0.tar.gz', size: 123, mtimeMs: 1000, etag: '"e1"' };
    a.record(entry, known('a'));
    const ev = await until('the put event on B', () => events.find((e) => e.type === 'file' && e.key === entry.key));
    expect(ev).to.deep.equal({ type: 'file', key: entry.key, entry });
    expect(b.recall(entry)?.sha256).to.equal(known('a').sha256);
    expect(b.recall({ ...entry, etag: '"e2"' }), 'other bytes (another ETag)').to.equal(undefined);
    expect(b.recall({ ...entry, size: 124 }), 'other size').to.equal(undefined);
    a.removed(entry.key);
    await until('the delete event on B', () => events.find((e) => e.type === 'file' && e.entry === null));
    expect(b.recall(entry)).to.equal(undefined);
    // A replica started later learns it all from the bucket.
    a.record({ ...entry, etag: '"e3"' }, known('c'));
    await a.flush();
    const c = feed();
    await c.load();
    expect(c.recall({ ...entry, etag: '"e3"' })?.sha256).to.equal(known('c').sha256);
  });

  it('reads a feed object that lands late (named in the past, within the window) exactly once', async () => {
    const b = feed();
    await b.load();
    const events: StoreEvent[] = [];
    b.subscribe((e) => events.push(e));
    await sleep(300); // several polls have passed the moment the late object is named after
    const past = String(Date.now() - 5000).padStart(13, '0');
    const record = { op: 'put', key: 'late/late-1.0.tar.gz', etag: '"l"', size: 5, mtimeMs: 1, known: known('l') };
    await s3.send(new PutObjectCommand({ Bucket: bucket(), Key: `pkgs/${RESERVED}feed/${past}-slowpoke-00000001.json`, Body: JSON.stringify({ v: 1, replica: 'slowpoke', records: [record] }) }));
    await until('the late put', () => events.find((e) => e.type === 'file' && e.key === 'late/late-1.0.tar.gz'));
    await sleep(500); // more polls: it must not be applied again
    expect(events.filter((e) => e.type === 'file' && e.key === 'late/late-1.0.tar.gz')).to.have.length(1);
  });

  it('compacts into a snapshot written by one replica; a new replica starts from it', async () => {
    const a = feed({ compactAt: 5, graceMs: 0, windowMs: 200 });
    const b = feed({ compactAt: 5, graceMs: 0, windowMs: 200 });
    await a.load();
    await b.load();
    for (let i = 0; i < 12; i++) {
      a.record({ key: `p/p-${i}.tar.gz`, size: i + 1, mtimeMs: i, etag: `"${i}"` }, known(String(i % 10)));
      await a.flush();
    }
    await sleep(300);
    const [ca, cb] = await Promise.all([a.compact(), b.compact()]);
    expect([ca, cb].filter(Boolean), 'exactly one replica writes the snapshot').to.have.length(1);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket(), Prefix: `pkgs/${RESERVED}index/` }));
    expect(listed.Contents?.map((o) => o.Key)).to.deep.equal([`pkgs/${RESERVED}index/0000000001.json`]);
    // A second compaction removes the feed objects the first one covered.
    a.record({ key: 'p/late.tar.gz', size: 1, mtimeMs: 1, etag: '"x"' }, known('x'));
    await a.flush();
    await sleep(300);
    await b.poll();
    // (b first follows a snapshot of a's that it had not read, if a won the race)
    expect((await b.compact()) || (await b.compact())).to.equal(true);
    const feedLeft = await s3.send(new ListObjectsV2Command({ Bucket: bucket(), Prefix: `pkgs/${RESERVED}feed/` }));
    expect(feedLeft.Contents?.length ?? 0).to.be.below(3);
    const c = feed();
    await c.load();
    expect(c.size).to.equal(13);
    for (let i = 0; i < 12; i++) expect(c.recall({ key: `p/p-${i}.tar.gz`, size: i + 1, mtimeMs: i, etag: `"${i}"` })?.sha256).to.equal(known(String(i % 10)).sha256);
  });

  it('of two replicas claiming one name for different keys, exactly one wins; the holder may claim again', async () => {
    const a = new S3Claims({ client: s3, bucket: bucket(), prefix: 'pkgs/', log });
    const b = new S3Claims({ client: s3, bucket: bucket(), prefix: 'pkgs/', log });
    const [ra, rb] = await Promise.all([a.claim(['dist:x'], 'demo-1.0.tar.gz'), b.claim(['dist:x'], 'Demo-1.0.tar.gz')]);
    const results = [ra, rb];
    expect(results.filter((r) => r.granted)).to.have.length(1);
    const loser = results.find((r) => !r.granted);
    expect(loser).to.deep.include({ granted: false, name: 'dist:x' });
    const winnerKey = ra.granted ? 'demo-1.0.tar.gz' : 'Demo-1.0.tar.gz';
    expect(await a.claim(['dist:x'], winnerKey)).to.deep.equal({ granted: true });
    // Released (remove_pkg): the other spelling may now be claimed.
    await a.release(['dist:x'], winnerKey);
    expect(await b.claim(['dist:x'], 'other-1.0.tar.gz')).to.deep.equal({ granted: true });
  });

  it('a claim whose file never appeared (a crash between claim and put) expires; one whose file exists does not', async () => {
    const a = new S3Claims({ client: s3, bucket: bucket(), prefix: 'pkgs/', log, ttlMs: 1000 });
    expect(await a.claim(['dist:crashed'], 'crashed-1.0.tar.gz')).to.deep.equal({ granted: true });
    expect(await a.claim(['dist:stored'], 'stored-1.0.tar.gz')).to.deep.equal({ granted: true });
    await s3.send(new PutObjectCommand({ Bucket: bucket(), Key: 'pkgs/stored-1.0.tar.gz', Body: 'x' }));
    expect(await a.claim(['dist:crashed'], 'Crashed-1.0.tar.gz')).to.deep.include({ granted: false, key: 'crashed-1.0.tar.gz' });
    await sleep(1500);
    expect(await a.claim(['dist:crashed'], 'Crashed-1.0.tar.gz')).to.deep.equal({ granted: true });
    expect(await a.claim(['dist:stored'], 'Stored-1.0.tar.gz')).to.deep.include({ granted: false, key: 'stored-1.0.tar.gz' });
    // A refused second name gives back the first one this call took.
    expect(await a.claim(['dist:fresh', 'dist:stored'], 'fresh-1.0.tar.gz')).to.deep.include({ granted: false, name: 'dist:stored' });
    expect(await a.claim(['dist:fresh'], 'other-1.0.tar.gz')).to.deep.equal({ granted: true });
  });

  it('keeps the yank list in the bucket: concurrent edits through two replicas both land, and B sees A\'s yank', async () => {
    const a = feed();
    const b = feed();
    await a.load();
    await b.load();
    const list = (f: S3Feed) => new S3TextObject({ client: s3, bucket: bucket(), prefix: 'pkgs/', name: 'yanks', announce: () => f.yanksChanged(), subscribe: (l) => f.onYanks(l) });
    const la = list(a);
    const lb = list(b);
    const changed: string[] = [];
    const yb = new YankStore(['s3://b/pkgs'], (root) => changed.push(root), log, new Map([['s3://b/pkgs', lb]]));
    await yb.load();
    yb.watch();
    b.subscribe(() => {});
    const parsed = parseFilename('demo-1.0.tar.gz')!;
    expect(yb.lookup('s3://b/pkgs', parsed.filename, parsed.project, parsed.version)).to.equal(null);
    const edits = await Promise.all([
      ...Array.from({ length: 4 }, (_, i) => editYankList(la, `demo==${i === 0 ? '1.0' : `0.${i}`}`, { yank: true, reason: `a${i}` })),
      ...Array.from({ length: 4 }, (_, i) => editYankList(lb, `other==${i}.0`, { yank: true, reason: `b${i}` })),
    ]);
    expect(edits).to.deep.equal(Array(8).fill(true));
    const text = await la.read();
    for (let i = 0; i < 4; i++) expect(text).to.include(`other==${i}.0 b${i}`);
    expect(text).to.include('demo==1.0 a0');
    await until('B re-read the list', () => (changed.length ? true : undefined));
    await until('B sees the yank', () => (yb.lookup('s3://b/pkgs', parsed.filename, parsed.project, parsed.version) ? true : undefined));
    expect(yb.lookup('s3://b/pkgs', parsed.filename, parsed.project, parsed.version)).to.deep.equal({ reason: 'a0' });
    yb.close();
  });
});
