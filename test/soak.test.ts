// A short soak (bench/soak.ts, `npm run soak` runs the long one): the real server under
// concurrent uploads (some conflicting, some cut off mid-body), readers of project pages and
// files, and files copied into and deleted from the root behind its back.

import { expect } from 'chai';
import { runSoak } from '../bench/soak.js';

describe('soak (short)', function () {
  this.timeout(120_000);

  it('keeps every invariant under a mixed concurrent load for 8 seconds', async () => {
    const { counts, failures } = await runSoak({ seconds: 8, uploaders: 4, readers: 8 });
    expect(failures, `${failures.length} invariant violation(s)\n  ${failures.join('\n  ')}\ncounts: ${JSON.stringify(counts)}`).to.deep.equal([]);
    expect(counts.status5xx).to.equal(0);
    // The run must actually have exercised each kind of traffic.
    expect(counts.uploadsOk, 'acknowledged uploads').to.be.greaterThan(5);
    expect(counts.ackedChecked).to.equal(counts.uploadsOk);
    expect(counts.uploads409, 'conflicts').to.be.greaterThan(0);
    expect(counts.racesResolved, 'races between two uploads of one name').to.be.greaterThan(0);
    expect(counts.uploadsAborted, 'uploads cut off mid-body').to.be.greaterThan(0);
    expect(counts.downloadsVerified, 'verified downloads').to.be.greaterThan(20);
    expect(counts.copies, 'files copied in').to.be.greaterThan(5);
    expect(counts.deletes, 'files deleted').to.be.greaterThan(0);
  });
});
