import { expect } from 'chai';
import { FailureThrottle } from '../lib/auth/throttle.js';

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void; set: (t: number) => void } {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
    set: (v) => {
      t = v;
    },
  };
}

describe('FailureThrottle', () => {
  it('does not delay the first 5 failures', () => {
    const c = clock();
    const th = new FailureThrottle({ now: c.now });
    for (let i = 0; i < 5; i++) {
      expect(th.delayFor('10.0.0.1'), `before failure ${i + 1}`).to.equal(0);
      th.fail('10.0.0.1');
      c.advance(100);
    }
    expect(th.delayFor('10.0.0.1')).to.equal(250);
  });

  it('doubles the delay with every further failure, capped at maxDelayMs', () => {
    const c = clock();
    const th = new FailureThrottle({ now: c.now });
    for (let i = 0; i < 5; i++) th.fail('a');
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      delays.push(th.delayFor('a'));
      th.fail('a');
      c.advance(10);
    }
    expect(delays).to.deep.equal([250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
  });

  it('honours custom freeFailures and maxDelayMs', () => {
    const th = new FailureThrottle({ freeFailures: 2, maxDelayMs: 700, now: clock().now });
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      delays.push(th.delayFor('a'));
      th.fail('a');
    }
    delays.push(th.delayFor('a'));
    expect(delays).to.deep.equal([0, 0, 250, 500, 700, 700, 700]);

    const strict = new FailureThrottle({ freeFailures: 0, now: clock().now });
    expect(strict.delayFor('b')).to.equal(0);
    strict.fail('b');
    expect(strict.delayFor('b')).to.equal(250);
    strict.fail('b');
    expect(strict.delayFor('b')).to.equal(500);
  });

  it('tracks clients independently', () => {
    const th = new FailureThrottle({ now: clock().now });
    for (let i = 0; i < 7; i++) th.fail('attacker');
    th.fail('user');
    expect(th.delayFor('attacker')).to.equal(1000);
    expect(th.delayFor('user')).to.equal(0);
    expect(th.delayFor('stranger')).to.equal(0);
  });

  it('resets a client on success', () => {
    const th = new FailureThrottle({ now: clock().now });
    for (let i = 0; i < 9; i++) th.fail('a');
    th.fail('b');
    expect(th.delayFor('a')).to.be.greaterThan(0);
    th.succeed('a');
    expect(th.delayFor('a')).to.equal(0);
    for (let i = 0; i < 5; i++) th.fail('a');
    expect(th.delayFor('a')).to.equal(250); // counting starts again from zero
    th.succeed('never-failed');
    expect(th.size).to.equal(2);
  });

  it('forgets failures once they leave the window', () => {
    const c = clock(0);
    const th = new FailureThrottle({ now: c.now });
    for (let i = 0; i < 6; i++) th.fail('a'); // all at t=0
    expect(th.delayFor('a')).to.equal(500);
    c.set(59_999);
    expect(th.delayFor('a')).to.equal(500);
    c.set(60_000);
    expect(th.delayFor('a')).to.equal(0);
    expect(th.size).to.equal(0); // expired clients are dropped
  });

  it('uses a sliding window: failures expire one by one', () => {
    const c = clock(0);
    const th = new FailureThrottle({ windowMs: 60_000, now: c.now });
    for (let i = 0; i < 6; i++) {
      c.set(i * 10_000);
      th.fail('a');
    }
    expect(th.delayFor('a')).to.equal(500); // 6 failures in the window
    c.set(60_000);
    expect(th.delayFor('a')).to.equal(250); // the t=0 failure expired
    c.set(70_000);
    expect(th.delayFor('a')).to.equal(0); // only 4 left
    th.fail('a');
    expect(th.delayFor('a')).to.equal(250); // 5 again
  });

  it('keeps escalating while an attacker keeps failing within the window', () => {
    const c = clock(0);
    const th = new FailureThrottle({ now: c.now });
    for (let i = 0; i < 100; i++) {
      c.advance(th.delayFor('a'));
      th.fail('a');
    }
    expect(th.delayFor('a')).to.equal(5000);
  });

  it('bounds the number of tracked clients, evicting the least recently failed', () => {
    const th = new FailureThrottle({ freeFailures: 0, maxClients: 3, now: clock().now });
    th.fail('a');
    th.fail('b');
    th.fail('c');
    th.fail('a'); // a is now the most recent
    th.fail('d'); // evicts b
    expect(th.size).to.equal(3);
    expect(th.delayFor('b')).to.equal(0);
    expect(th.delayFor('a')).to.equal(500);
    expect(th.delayFor('c')).to.equal(250);
    expect(th.delayFor('d')).to.equal(250);

    // A repeated failure moves the client to the back of the eviction queue and evicts nobody.
    const lru = new FailureThrottle({ freeFailures: 0, maxClients: 3, now: clock().now });
    lru.fail('a');
    lru.fail('b');
    lru.fail('c');
    lru.fail('b');
    expect(lru.size).to.equal(3);
    expect(lru.delayFor('a')).to.equal(250);
    lru.fail('d'); // evicts a, the least recently failed
    lru.fail('e'); // evicts c
    expect(lru.delayFor('b')).to.equal(500);
    expect(lru.delayFor('a')).to.equal(0);
    expect(lru.delayFor('c')).to.equal(0);

    const many = new FailureThrottle({ maxClients: 100, now: clock().now });
    for (let i = 0; i < 10_000; i++) many.fail(`10.0.${i >> 8}.${i & 255}`);
    expect(many.size).to.equal(100);
  });

  it('defaults to 10 000 clients', () => {
    const th = new FailureThrottle({ now: clock().now });
    for (let i = 0; i < 10_050; i++) th.fail(`client-${i}`);
    expect(th.size).to.equal(10_000);
  });

  it('works with the default clock', () => {
    const th = new FailureThrottle();
    for (let i = 0; i < 5; i++) th.fail('a');
    expect(th.delayFor('a')).to.equal(250);
  });

  it('rejects nonsensical options', () => {
    expect(() => new FailureThrottle({ freeFailures: -1 })).to.throw(RangeError);
    expect(() => new FailureThrottle({ windowMs: Number.NaN })).to.throw(RangeError);
    expect(() => new FailureThrottle({ maxClients: 0 })).to.throw(RangeError);
  });
});
