import { expect } from 'chai';
import {
  compareVersions,
  isPrerelease,
  normalizeVersion,
  parseVersion,
  versionsEqual,
} from '../lib/catalog/version.js';

/** Deterministic PRNG (mulberry32) so shuffles are reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = items.slice();
  const rand = rng(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Shuffle and make sure the shuffle actually moved things (otherwise the sort test proves nothing). */
function scrambled<T>(items: readonly T[], seed: number): T[] {
  const out = shuffled(items, seed);
  expect(out).to.not.deep.equal(items);
  return out;
}

const NORMALIZATION: readonly (readonly [string, string])[] = [
  ['1.0', '1.0'],
  ['1.0.0', '1.0.0'],
  ['1', '1'],
  ['01.02', '1.2'],
  ['2023.10.01', '2023.10.1'],
  ['1.0.0.0.0', '1.0.0.0.0'],
  ['v1.0', '1.0'],
  ['V2.3', '2.3'],
  ['  1.0\n', '1.0'],
  ['\t v1.2.3 ', '1.2.3'],
  ['1.0-dev', '1.0.dev0'],
  ['1.0dev', '1.0.dev0'],
  ['1.0_dev_3', '1.0.dev3'],
  ['1.0.DEV4', '1.0.dev4'],
  ['v1.0RC1', '1.0rc1'],
  ['1.0alpha1', '1.0a1'],
  ['1.0-alpha.2', '1.0a2'],
  ['1.0a', '1.0a0'],
  ['1.0beta', '1.0b0'],
  ['1.0.b2', '1.0b2'],
  ['1.0_B_7', '1.0b7'],
  ['1.0c3', '1.0rc3'],
  ['1.0pre4', '1.0rc4'],
  ['1.0preview', '1.0rc0'],
  ['1.0-rc_5', '1.0rc5'],
  ['1.0rc01', '1.0rc1'],
  ['1.0-1', '1.0.post1'],
  ['1.0post', '1.0.post0'],
  ['1.0.rev2', '1.0.post2'],
  ['1.0r3', '1.0.post3'],
  ['1.0-post-4', '1.0.post4'],
  ['1.0POST_05', '1.0.post5'],
  ['1.0a1-1', '1.0a1.post1'],
  ['1.0rc1.dev2', '1.0rc1.dev2'],
  ['1.0.post1.dev1', '1.0.post1.dev1'],
  ['1.0-r1-dev2', '1.0.post1.dev2'],
  ['1!2.0.post3.dev4+ABC.5', '1!2.0.post3.dev4+abc.5'],
  ['0!1.0', '1.0'],
  ['007!1.0', '7!1.0'],
  ['1.0+ubuntu-1', '1.0+ubuntu.1'],
  ['1.0+Ubuntu_1.01', '1.0+ubuntu.1.1'],
  ['1.0+abc.007', '1.0+abc.7'],
  ['2.1.0+cpu', '2.1.0+cpu'],
  ['12345678901234567890.1', '12345678901234567890.1'],
];

const INVALID: readonly string[] = [
  '',
  '   ',
  'latest',
  '2fast',
  '1.0-dev-x',
  'v',
  'vv1.0',
  '1.',
  '.1',
  '1..0',
  '1.0-',
  '1.0_1',
  '1.0.x',
  'a1.0',
  '1.0 beta',
  '1!',
  '!1.0',
  '1!!1.0',
  '1.0+',
  '1.0+abc..1',
  '1.0+-abc',
  '1.0+abc-',
  '1.0+ab c',
  '1.0-1-1',
  '1.0.post1.post2',
  '1.0a1b1',
  '1.0.dev1.a1',
  '1.0.dev1.post1',
  '1.0+\u212a', // KELVIN SIGN lower-cases to ASCII "k" but is not an ASCII letter
  '\uff11.0', // FULLWIDTH DIGIT ONE
  '1.0/2',
];

describe('version: parsing and normalization', () => {
  for (const [input, canonical] of NORMALIZATION) {
    it(`normalizes ${JSON.stringify(input)} to ${canonical}`, () => {
      expect(normalizeVersion(input)).to.equal(canonical);
      expect(parseVersion(input)).to.not.equal(null);
    });
  }

  it('normalization is idempotent', () => {
    for (const [, canonical] of NORMALIZATION) {
      expect(normalizeVersion(canonical), canonical).to.equal(canonical);
    }
  });

  for (const input of INVALID) {
    it(`rejects ${JSON.stringify(input)}`, () => {
      expect(parseVersion(input)).to.equal(null);
      expect(normalizeVersion(input)).to.equal(null);
    });
  }

  it('exposes the parsed components', () => {
    expect(parseVersion('1!2.3.4rc5.post6.dev7+abc.08')).to.deep.equal({
      epoch: 1,
      release: [2, 3, 4],
      pre: { label: 'rc', n: 5 },
      post: 6,
      dev: 7,
      local: ['abc', 8],
    });
    expect(parseVersion('v1.0')).to.deep.equal({
      epoch: 0,
      release: [1, 0],
      pre: null,
      post: null,
      dev: null,
      local: null,
    });
    expect(parseVersion('1.0-1')?.post).to.equal(1);
    expect(parseVersion('1.0a')?.pre).to.deep.equal({ label: 'a', n: 0 });
    expect(parseVersion('1.0-preview.3')?.pre).to.deep.equal({ label: 'rc', n: 3 });
    expect(parseVersion('1.0.dev')?.dev).to.equal(0);
  });

  it('returns a fresh object each time (cache cannot be corrupted by callers)', () => {
    const first = parseVersion('3.1.4');
    expect(first).to.not.equal(null);
    first?.release.push(99);
    expect(parseVersion('3.1.4')?.release).to.deep.equal([3, 1, 4]);
  });
});

describe('version: ordering', () => {
  // "Summary of permitted suffixes and relative ordering" from the Version specifiers spec.
  const PEP440_EXAMPLE: readonly string[] = [
    '1.dev0',
    '1.0.dev456',
    '1.0a1',
    '1.0a2.dev456',
    '1.0a12.dev456',
    '1.0a12',
    '1.0b1.dev456',
    '1.0b2',
    '1.0b2.post345.dev456',
    '1.0b2.post345',
    '1.0rc1.dev456',
    '1.0rc1',
    '1.0',
    '1.0+abc.5',
    '1.0+abc.7',
    '1.0+5',
    '1.0.post456.dev34',
    '1.0.post456',
    '1.0.15',
    '1.1.dev1',
  ];

  const EXTENDED: readonly string[] = [
    '0.9',
    '1.0b2-346',
    '1.0c3.dev1',
    '1.0c3',
    '1.0rc4',
    '1.0.post457',
    '1.2+123abc',
    '1.2+123abc456',
    '1.2+abc',
    '1.2+abc123',
    '1.2+abc123def',
    '1.2+1234.abc',
    '1.2+123456',
    '1.2.r32+123456',
    '1.2.rev33+123456',
    '1!0.1.dev1',
    '1!0.1',
    '1!1.0a1',
    '2!0.0.1',
  ];

  it('sorts a shuffled copy of the PEP 440 example list back into order', () => {
    for (const seed of [1, 2, 3, 42, 1234]) {
      const sorted = scrambled(PEP440_EXAMPLE, seed).sort(compareVersions);
      expect(sorted).to.deep.equal(PEP440_EXAMPLE);
    }
  });

  it('sorts an extended list (rc/c spellings, implicit post, local labels, epochs)', () => {
    const expected = [
      '0.9',
      '1.0a12',
      '1.0b2.post345',
      '1.0b2-346',
      '1.0rc1',
      '1.0c3.dev1',
      '1.0c3',
      '1.0rc4',
      '1.0',
      '1.0.post456',
      '1.0.post457',
      '1.1.dev1',
      '1.2+123abc',
      '1.2+123abc456',
      '1.2+abc',
      '1.2+abc123',
      '1.2+abc123def',
      '1.2+1234.abc',
      '1.2+123456',
      '1.2.r32+123456',
      '1.2.rev33+123456',
      '1!0.1.dev1',
      '1!0.1',
      '1!1.0a1',
      '2!0.0.1',
    ];
    const input = [...new Set([...EXTENDED, ...expected])];
    expect(input).to.have.members(expected);
    for (const seed of [7, 8, 9]) {
      expect(scrambled(input, seed).sort(compareVersions)).to.deep.equal(expected);
    }
  });

  const LESS: readonly (readonly [string, string])[] = [
    ['1.0.dev1', '1.0a1'],
    ['1.0a1.dev1', '1.0a1'],
    ['1.0a1', '1.0a1.post1.dev1'],
    ['1.0a1.post1.dev1', '1.0a1.post1'],
    ['1.0.post1.dev1', '1.0.post1'],
    ['1.0', '1.0.post1.dev1'],
    ['1.0a9', '1.0b1'],
    ['1.0b9', '1.0rc1'],
    ['1.0rc9', '1.0'],
    ['1.0.dev9', '1.0.dev10'],
    ['1.9', '1.10'],
    ['1.0', '1.0.1'],
    ['1.0.0.1', '1.0.1'],
    ['99.0', '1!0.0'],
    ['12345678901234567889', '12345678901234567890'],
    ['1.0.post9', '1.1.dev0'],
    // local labels
    ['1.0', '1.0+abc'],
    ['1.0+abc', '1.0+abc.1'],
    ['1.0+abc.1', '1.0+abc.2'],
    ['1.0+abc.9', '1.0+abc.10'],
    ['1.0+abc.z', '1.0+abc.1'],
    ['1.0+zzz', '1.0+0'],
    ['1.0+a', '1.0+b'],
    ['1.0+abc', '1.0+abd'],
    ['1.0+1234.abc', '1.0+123456'],
    ['1.0+abc.7', '1.0+5'],
    ['1.0+999', '1.0.post0'],
    ['1.0a1+local', '1.0a2'],
  ];

  for (const [a, b] of LESS) {
    it(`${a} < ${b}`, () => {
      expect(compareVersions(a, b)).to.equal(-1);
      expect(compareVersions(b, a)).to.equal(1);
    });
  }

  it('ignores trailing zeros, spelling and case when comparing', () => {
    const same: readonly (readonly [string, string])[] = [
      ['1.0', '1.0.0'],
      ['1', '1.0.0.0'],
      ['v1.0', '1.0'],
      ['1.0RC1', '1.0c1'],
      ['1.0-1', '1.0.post1'],
      ['0!1.0', '1.0'],
      ['1.0+ABC', '1.0+abc'],
      ['1.0+abc.05', '1.0.0+abc.5'],
      ['1.0+ubuntu-1', '1.0+ubuntu.1'],
    ];
    for (const [a, b] of same) {
      expect(compareVersions(a, b), `${a} vs ${b}`).to.equal(0);
      expect(compareVersions(b, a), `${b} vs ${a}`).to.equal(0);
    }
  });

  it('sorts invalid strings before every valid version, by plain string comparison', () => {
    expect(compareVersions('latest', '0.0.0.dev0')).to.equal(-1);
    expect(compareVersions('0', 'zzz')).to.equal(1);
    expect(compareVersions('', '0')).to.equal(-1);
    expect(compareVersions('abc', 'abd')).to.equal(-1);
    expect(compareVersions('b', 'a')).to.equal(1);
    expect(compareVersions('2fast', '1fast')).to.equal(1);
    expect(compareVersions('latest', 'latest')).to.equal(0);
    expect(['1.0', 'latest', '0.1', 'HEAD', '2fast'].sort(compareVersions)).to.deep.equal([
      '2fast',
      'HEAD',
      'latest',
      '0.1',
      '1.0',
    ]);
  });

  it('keeps working after the parse cache overflows', () => {
    for (let i = 0; i < 60_000; i++) compareVersions(`9.${i}`, `9.${i}.post1`);
    expect(compareVersions('1.2', '1.10')).to.equal(-1);
    expect(compareVersions('9.59999', '9.60000')).to.equal(-1);
    expect(normalizeVersion('9.059999')).to.equal('9.59999');
  });
});

describe('version: equality and pre-releases', () => {
  it('versionsEqual follows PEP 440 equality', () => {
    expect(versionsEqual('1.0', '1.0.0')).to.equal(true);
    expect(versionsEqual('1.0.0', '1')).to.equal(true);
    expect(versionsEqual('1.0', 'v1.0')).to.equal(true);
    expect(versionsEqual('1.0a1', '1.0.alpha.1')).to.equal(true);
    expect(versionsEqual('1.0+local', '1.0+LOCAL')).to.equal(true);
    expect(versionsEqual('1.0+local', '1.0')).to.equal(false);
    expect(versionsEqual('1.0', '1.0.1')).to.equal(false);
    expect(versionsEqual('1.0', '1.0.post0')).to.equal(false);
    expect(versionsEqual('1.0', '1!1.0')).to.equal(false);
  });

  it('versionsEqual uses plain string equality for invalid strings', () => {
    expect(versionsEqual('latest', 'latest')).to.equal(true);
    expect(versionsEqual('latest', 'Latest')).to.equal(false);
    expect(versionsEqual('latest', '1.0')).to.equal(false);
    expect(versionsEqual('1.0', 'latest')).to.equal(false);
    expect(versionsEqual('', '')).to.equal(true);
  });

  it('isPrerelease is true for pre and dev releases only', () => {
    for (const v of ['1.0a1', '1.0b2', '1.0rc1', '1.0c1', '1.0.dev0', '1.0.post1.dev1', '1.0a1.post1']) {
      expect(isPrerelease(v), v).to.equal(true);
    }
    for (const v of ['1.0', '1.0.post1', '1.0+dev', '1!2.0', 'latest', '']) {
      expect(isPrerelease(v), v).to.equal(false);
    }
  });
});

describe('version: compareVersions is a total order on all strings', () => {
  const MIXED: readonly string[] = [
    '1.0',
    '1.0.0',
    'v1.0',
    '1.0+abc',
    '1.0.post1',
    '1.0-1',
    '1.0.dev0',
    '1.0a1',
    '1.0rc1',
    '0.9',
    '2!0.1',
    '10.0',
    '1.0+5',
    '1.0+abc.2',
    'latest',
    'Latest',
    '',
    '2fast',
    '1.0-dev-x',
    'foo',
    '..',
    'v',
    '1.0+',
    '\u00e9',
    '0.0.0.0',
    '0',
    '1.0.15',
    '1.1.dev1',
  ];

  function sign(n: number): number {
    return n < 0 ? -1 : n > 0 ? 1 : 0;
  }

  it('is antisymmetric and reflexive', () => {
    for (const a of MIXED) {
      expect(compareVersions(a, a), JSON.stringify(a)).to.equal(0);
      for (const b of MIXED) {
        const ab = sign(compareVersions(a, b));
        const ba = sign(compareVersions(b, a));
        expect(ab, `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).to.equal(-ba || 0);
      }
    }
  });

  it('is transitive', () => {
    for (const a of MIXED) {
      for (const b of MIXED) {
        if (compareVersions(a, b) > 0) continue;
        for (const c of MIXED) {
          if (compareVersions(b, c) > 0) continue;
          expect(compareVersions(a, c), `${a} <= ${b} <= ${c}`).to.be.at.most(0);
        }
      }
    }
  });

  it('returns 0 for distinct strings only when both are equal valid versions', () => {
    for (const a of MIXED) {
      for (const b of MIXED) {
        if (a === b || compareVersions(a, b) !== 0) continue;
        expect(normalizeVersion(a), `${a} vs ${b}`).to.not.equal(null);
        expect(normalizeVersion(b), `${a} vs ${b}`).to.not.equal(null);
      }
    }
    expect(compareVersions('Latest', 'latest')).to.not.equal(0);
  });

  it('sorting from different shuffles gives the same order', () => {
    const first = scrambled(MIXED, 11).sort(compareVersions);
    const second = scrambled(MIXED, 97).sort(compareVersions);
    expect(first).to.have.lengthOf(MIXED.length);
    for (let i = 0; i < first.length; i++) {
      // Equivalent spellings ("1.0", "1.0.0", "v1.0") may swap places; nothing else may.
      expect(compareVersions(first[i], second[i]), `position ${i}: ${first[i]} / ${second[i]}`).to.equal(0);
    }
    // Without equivalent spellings the result must be identical.
    const distinct = MIXED.filter((v) => v !== '1.0.0' && v !== 'v1.0' && v !== '1.0-1' && v !== '0.0.0.0');
    const d1 = scrambled(distinct, 5).sort(compareVersions);
    const d2 = scrambled(distinct, 6).sort(compareVersions);
    expect(d1).to.deep.equal(d2);
    expect(d1.slice(0, 10)).to.deep.equal(['', '..', '1.0+', '1.0-dev-x', '2fast', 'Latest', 'foo', 'latest', 'v', '\u00e9']);
    expect(d1.slice(10)).to.deep.equal([
      '0',
      '0.9',
      '1.0.dev0',
      '1.0a1',
      '1.0rc1',
      '1.0',
      '1.0+abc',
      '1.0+abc.2',
      '1.0+5',
      '1.0.post1',
      '1.0.15',
      '1.1.dev1',
      '10.0',
      '2!0.1',
    ]);
  });
});
