// The S3 engine the object-storage tests run against (test/helpers/rgw.ts): it starts, keeps
// objects while its gateway is stopped and started again (how the tests take the store down),
// and honours the conditional create that uploads rely on. Skips, saying why, where the
// engine is not installed (`npm run deps:system` installs it).

import { expect } from 'chai';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { startRgwOrSkip, type Rgw } from './helpers/rgw.js';


describe('S3 engine harness (Ceph RADOS Gateway)', function () {
  this.timeout(120_000);
  let rgw: Rgw;
  let s3: S3Client;

  before(async function () {
    rgw = await startRgwOrSkip(this);
    s3 = rgw.client();
    await rgw.createBucket('harness');
  });
  after(async () => {
    s3?.destroy();
    await rgw?.stop();
  });

  it('stores objects, and of two conditional creates of one key exactly one wins', async () => {
    const put = (body: string) => s3.send(new PutObjectCommand({ Bucket: 'harness', Key: 'a/b.txt', Body: body, IfNoneMatch: '*' })).then(
      () => 'created',
      (e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode,
    );
    const results = await Promise.all([put('one'), put('two'), put('three')]);
    expect(results.filter((r) => r === 'created')).to.have.length(1);
    expect(results.filter((r) => r === 412)).to.have.length(2);
  });

  it('keeps the objects while the gateway is down and back', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'harness', Key: 'kept.txt', Body: 'kept' }));
    await rgw.stopGateway();
    const down = await s3.send(new GetObjectCommand({ Bucket: 'harness', Key: 'kept.txt' })).then(
      () => 'answered',
      (e: { code?: string; name?: string }) => e.code ?? e.name,
    );
    expect(down).to.be.oneOf(['ECONNREFUSED', 'TimeoutError', 'ECONNRESET']);
    await rgw.startGateway();
    const back = await s3.send(new GetObjectCommand({ Bucket: 'harness', Key: 'kept.txt' }));
    expect(await back.Body?.transformToString()).to.equal('kept');
  });
});
