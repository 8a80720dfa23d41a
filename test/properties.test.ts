// Property tests: thousands of generated inputs against the parsers that see untrusted data
// (file names, versions, project names, Accept headers) and a few hundred malformed multipart
// bodies against the real upload endpoint.

import { expect } from 'chai';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseFilename } from '../lib/catalog/filename.js';
import { isValidProjectName, normalizeName } from '../lib/core/names.js';
import { compareVersions, isPrerelease, normalizeVersion, parseVersion, versionsEqual } from '../lib/catalog/version.js';
import { HTML_V1, JSON_V1, TEXT_HTML, negotiate, negotiateRequest } from '../lib/simple/negotiate.js';
import { buildWheel, parseProjectPage, sha256, send, TEMP_PREFIX } from '../bench/soak.js';
import { REPO, spawnServer, waitHealthy, type Spawned } from './helpers/server.js';

const RUNS = 2000;
const run = <T>(p: fc.IProperty<T>, numRuns = RUNS) => fc.assert(p, { numRuns });

/** Strings of every kind: binary (lone surrogates, NUL, controls) and printable ASCII. */
const anyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ unit: 'binary-ascii', maxLength: 80 }),
);

const SEPS = ['', '.', '-', '_'] as const;

/** A valid project name (core metadata rule): alnum at both ends, `._-` allowed between. */
const projectName = fc.stringMatching(/^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,24}[A-Za-z0-9])?$/);

// ---------------------------------------------------------------------------------------------
// A model of PEP 440 versions: generated as structure, rendered in any permitted spelling, and
// ordered/normalized by a reference implementation written from the spec (packaging's _cmpkey).

interface VModel {
  epoch: bigint;
  release: bigint[];
  pre: { label: 'a' | 'b' | 'rc'; n: bigint } | null;
  post: bigint | null;
  dev: bigint | null;
  local: string[] | null;
}

const smallNum = fc.oneof(
  { weight: 8, arbitrary: fc.bigInt(0n, 12n) },
  { weight: 2, arbitrary: fc.bigInt(0n, 99_999n) },
  { weight: 1, arbitrary: fc.bigInt(0n, 10n ** 30n) },
);
const localSegment = fc.oneof(fc.stringMatching(/^[a-z0-9]{1,6}$/), fc.stringMatching(/^[0-9]{1,4}$/));

const vModel: fc.Arbitrary<VModel> = fc.record({
  epoch: fc.oneof({ weight: 5, arbitrary: fc.constant(0n) }, { weight: 1, arbitrary: smallNum }),
  release: fc.array(smallNum, { minLength: 1, maxLength: 5 }),
  pre: fc.option(fc.record({ label: fc.constantFrom('a' as const, 'b' as const, 'rc' as const), n: smallNum }), { freq: 3 }),
  post: fc.option(smallNum, { freq: 3 }),
  dev: fc.option(smallNum, { freq: 3 }),
  local: fc.option(fc.array(localSegment, { minLength: 1, maxLength: 3 }), { freq: 4 }),
});

const PRE_SPELLINGS = { a: ['a', 'alpha'], b: ['b', 'beta'], rc: ['rc', 'c', 'pre', 'preview'] } as const;

/** Random choices for rendering one model in one of its many spellings. */
const spelling = fc.record({
  v: fc.boolean(),
  zeros: fc.array(fc.nat(2), { minLength: 12, maxLength: 12 }),
  preWord: fc.nat(3),
  preSep1: fc.constantFrom(...SEPS),
  preSep2: fc.constantFrom(...SEPS),
  preImplicit: fc.boolean(),
  postForm: fc.constantFrom('dash', 'post', 'rev', 'r'),
  postSep1: fc.constantFrom(...SEPS),
  postSep2: fc.constantFrom(...SEPS),
  postImplicit: fc.boolean(),
  devSep1: fc.constantFrom(...SEPS),
  devSep2: fc.constantFrom(...SEPS),
  devImplicit: fc.boolean(),
  localSeps: fc.array(fc.constantFrom('.', '-', '_'), { minLength: 3, maxLength: 3 }),
  upper: fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }),
});

type Spelling = typeof spelling extends fc.Arbitrary<infer S> ? S : never;

function renderVersion(m: VModel, s: Spelling): string {
  let z = 0;
  const num = (n: bigint) => '0'.repeat(s.zeros[z++ % s.zeros.length]) + n.toString();
  let out = s.v ? 'v' : '';
  if (m.epoch !== 0n) out += `${num(m.epoch)}!`;
  out += m.release.map(num).join('.');
  let preImplicit = false;
  if (m.pre) {
    const words = PRE_SPELLINGS[m.pre.label];
    out += s.preSep1 + words[s.preWord % words.length];
    // "1a" means a0; a separator with no number is also allowed ("1a." would be odd but legal).
    if (m.pre.n === 0n && s.preImplicit) preImplicit = true;
    else out += s.preSep2 + num(m.pre.n);
  }
  if (m.post !== null) {
    // "-N" right after an implicit pre number would read as the pre number ("1a-2" is 1a2).
    if (s.postForm === 'dash' && !preImplicit) out += `-${num(m.post)}`;
    else {
      out += (s.postForm === 'dash' ? '.' : s.postSep1) + (s.postForm === 'dash' ? 'post' : s.postForm);
      if (!(m.post === 0n && s.postImplicit)) out += s.postSep2 + num(m.post);
    }
  }
  if (m.dev !== null) {
    out += `${s.devSep1}dev`;
    if (!(m.dev === 0n && s.devImplicit)) out += s.devSep2 + num(m.dev);
  }
  if (m.local) out += `+${m.local.map((seg, i) => (i ? s.localSeps[(i - 1) % 3] : '') + seg).join('')}`;
  // ASCII case does not matter anywhere.
  return [...out].map((c, i) => (s.upper[i % s.upper.length] ? c.toUpperCase() : c)).join('');
}

function modelNormalized(m: VModel): string {
  let out = m.epoch !== 0n ? `${m.epoch}!` : '';
  out += m.release.join('.');
  if (m.pre) out += `${m.pre.label}${m.pre.n}`;
  if (m.post !== null) out += `.post${m.post}`;
  if (m.dev !== null) out += `.dev${m.dev}`;
  if (m.local) out += `+${m.local.map((seg) => (/^[0-9]+$/.test(seg) ? BigInt(seg).toString() : seg)).join('.')}`;
  return out;
}

const cmpBig = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

/** packaging's _cmpkey, with -inf/+inf as explicit ranks. */
function modelCompare(a: VModel, b: VModel): number {
  let c = cmpBig(a.epoch, b.epoch);
  if (c) return c;
  const strip = (r: bigint[]) => {
    const x = [...r];
    while (x.length && x[x.length - 1] === 0n) x.pop();
    return x;
  };
  const ra = strip(a.release);
  const rb = strip(b.release);
  for (let i = 0; i < Math.max(ra.length, rb.length); i++) {
    if (i >= ra.length) return -1;
    if (i >= rb.length) return 1;
    c = cmpBig(ra[i], rb[i]);
    if (c) return c;
  }
  // pre: dev-only releases sort before any pre-release; no pre-release sorts after them all.
  const preKey = (v: VModel): [number, number, bigint] =>
    v.pre ? [1, { a: 0, b: 1, rc: 2 }[v.pre.label], v.pre.n] : v.post === null && v.dev !== null ? [0, 0, 0n] : [2, 0, 0n];
  const pa = preKey(a);
  const pb = preKey(b);
  c = pa[0] - pb[0] || pa[1] - pb[1] || cmpBig(pa[2], pb[2]);
  if (c) return Math.sign(c);
  // post: none sorts first
  if (a.post === null || b.post === null) c = (a.post === null ? 0 : 1) - (b.post === null ? 0 : 1);
  else c = cmpBig(a.post, b.post);
  if (c) return c;
  // dev: none sorts last
  if (a.dev === null || b.dev === null) c = (a.dev === null ? 1 : 0) - (b.dev === null ? 1 : 0);
  else c = cmpBig(a.dev, b.dev);
  if (c) return c;
  // local: none sorts first; numeric segments above alphanumeric ones; shorter prefix first
  if (a.local === null || b.local === null) return (a.local === null ? 0 : 1) - (b.local === null ? 0 : 1);
  for (let i = 0; i < Math.max(a.local.length, b.local.length); i++) {
    if (i >= a.local.length) return -1;
    if (i >= b.local.length) return 1;
    const x = a.local[i];
    const y = b.local[i];
    const xn = /^[0-9]+$/.test(x);
    const yn = /^[0-9]+$/.test(y);
    if (xn && yn) c = cmpBig(BigInt(x), BigInt(y));
    else if (xn !== yn) c = xn ? 1 : -1;
    else c = x < y ? -1 : x > y ? 1 : 0;
    if (c) return c;
  }
  return 0;
}

const genVersion = fc.tuple(vModel, spelling).map(([m, s]) => ({ m, s: renderVersion(m, s) }));

/** Two versions that differ in one place only (random pairs rarely get past the release). */
const nearPair = fc
  .tuple(vModel, vModel, fc.constantFrom('epoch', 'release', 'zeros', 'pre', 'post', 'dev', 'local', 'localSeg', 'same'), fc.nat(5), localSegment, spelling, spelling)
  .map(([a, fresh, what, k, seg, sa, sb]) => {
    const b: VModel = { ...a, release: [...a.release], local: a.local && [...a.local] };
    if (what === 'zeros') b.release.push(...Array<bigint>(k + 1).fill(0n));
    else if (what === 'localSeg') {
      b.local = [...(a.local ?? [])];
      b.local[Math.min(k, b.local.length)] = seg;
    } else if (what !== 'same') Object.assign(b, { [what]: fresh[what] });
    return [
      { m: a, s: renderVersion(a, sa) },
      { m: b, s: renderVersion(b, sb) },
    ] as const;
  });

/** Version-looking token soup: mostly invalid, often valid, many PEP 440-equal collisions. */
const versionSoup = fc
  .array(fc.constantFrom('1', '0', '00', '2', '10', '.', '-', '_', '+', '!', 'v', 'a', 'b', 'c', 'rc', 'alpha', 'pre', 'post', 'r', 'rev', 'dev', 'x', ' '), {
    maxLength: 10,
  })
  .map((ts) => ts.join(''));

/** Any string at all, biased toward things that are, or nearly are, versions. */
const versionish = fc.oneof(anyString, versionSoup, genVersion.map((g) => g.s));

// ---------------------------------------------------------------------------------------------

describe('property tests', function () {
  this.timeout(60_000);

  describe('parseFilename', () => {
    it('never throws on arbitrary strings, and returns null or a parse of exactly that name', () => {
      const soup = fc
        .array(fc.constantFrom('foo', 'Foo_Bar', '-', '_', '.', '1.0', 'py3', 'none', 'any', '.whl', '.tar.gz', '.zip', '.egg', '.tgz', '..', '/', '\\', '\u0000', 'é'), { maxLength: 12 })
        .map((ts) => ts.join(''));
      const long = fc.tuple(fc.nat(2000), fc.constantFrom('.whl', '.tar.gz')).map(([n, ext]) => `${'a-'.repeat(n)}1.0${ext}`);
      run(
        fc.property(fc.oneof(anyString, soup, long), (s) => {
          const p = parseFilename(s);
          if (p !== null) {
            expect(p.filename).to.equal(s);
            expect(p.project).to.equal(normalizeName(p.name));
            expect(s).not.to.match(/[/\\\u0000-\u001f]/);
          }
        }),
      );
    });

    it('returns the parts of generated wheel names', () => {
      const tag = fc.stringMatching(/^[A-Za-z0-9_]{1,8}(?:\.[A-Za-z0-9_]{1,8}){0,2}$/);
      const build = fc.option(fc.stringMatching(/^[0-9][A-Za-z0-9_]{0,5}$/), { freq: 3 });
      const escape = fc.constantFrom('pep427', 'dash-only');
      run(
        fc.property(projectName, genVersion, build, tag, tag, tag, escape, (name, ver, buildTag, py, abi, plat, how) => {
          // A wheel name has no '-': PEP 427 escapes runs of -_. to '_'; older tools only replaced '-'.
          const escaped = how === 'pep427' ? name.replace(/[-_.]+/g, '_') : name.replace(/-/g, '_');
          const version = normalizeVersion(ver.s)!; // canonical: never contains '-'
          const filename = [escaped, version, ...(buildTag === null ? [] : [buildTag]), py, abi, plat].join('-') + '.whl';
          const p = parseFilename(filename);
          expect(p, filename).to.deep.include({
            filename,
            kind: 'wheel',
            packagetype: 'bdist_wheel',
            name: escaped,
            version,
            buildTag,
            pythonTag: py,
            abiTag: abi,
            platformTag: plat,
            extension: '.whl',
          });
          expect(p!.project).to.equal(normalizeName(name));
        }),
      );
    });

    it('returns the parts of generated sdist names (any extension case)', () => {
      const ext = fc.tuple(fc.constantFrom('.tar.gz', '.zip', '.tar.bz2', '.tgz', '.tar.xz'), fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }));
      const version = fc.oneof(genVersion.map((g) => g.s), genVersion.map((g) => normalizeVersion(g.s)!));
      run(
        fc.property(projectName, version, ext, (name, ver, [extension, up]) => {
          const written = [...extension].map((c, i) => (up[i] ? c.toUpperCase() : c)).join('');
          const filename = `${name}-${ver}${written}`;
          const p = parseFilename(filename);
          expect(p, filename).not.to.equal(null);
          expect(p!.kind).to.equal('sdist');
          expect(p!.extension).to.equal(extension);
          expect(p!.pythonTag).to.equal('source');
          // Always some split of "<name>-<version>" into a valid name and a valid version...
          expect(`${p!.name}-${p!.version}`).to.equal(`${name}-${ver}`);
          expect(p!.project).to.equal(normalizeName(p!.name));
          // ...and exactly the generated one unless the name itself has a '-' followed by
          // something version-like (the documented ambiguity: "foo-2-1.0.tar.gz").
          if (!/-[0-9vV]/.test(name)) {
            expect(p!.name, filename).to.equal(name);
            expect(p!.version).to.equal(ver);
            expect(p!.project).to.equal(normalizeName(name));
          } else {
            expect(parseVersion(p!.version), filename).not.to.equal(null);
          }
        }),
      );
    });
  });

  describe('version parsing and ordering', () => {
    it('never throws on arbitrary strings; parse, normalize and isPrerelease agree', () => {
      run(
        fc.property(versionish, (s) => {
          const parsed = parseVersion(s);
          const norm = normalizeVersion(s);
          expect(parsed === null).to.equal(norm === null);
          const pre = isPrerelease(s);
          if (parsed === null) expect(pre).to.equal(false);
          else expect(pre).to.equal(parsed.pre !== null || parsed.dev !== null);
          expect(compareVersions(s, s)).to.equal(0);
        }),
      );
    });

    it('normalizeVersion is idempotent and PEP 440-equal to its input', () => {
      run(
        fc.property(versionish, (s) => {
          const n = normalizeVersion(s);
          if (n === null) return;
          expect(normalizeVersion(n)).to.equal(n);
          expect(compareVersions(s, n)).to.equal(0);
          expect(compareVersions(n, s)).to.equal(0);
        }),
      );
    });

    it('normalizes every spelling of a generated version to the canonical form', () => {
      run(
        fc.property(genVersion, ({ m, s }) => {
          expect(normalizeVersion(s), s).to.equal(modelNormalized(m));
        }),
      );
    });

    it('orders generated versions exactly as the PEP 440 reference ordering does', () => {
      run(
        fc.property(fc.oneof(fc.tuple(genVersion, genVersion), nearPair), ([a, b]) => {
          expect(compareVersions(a.s, b.s), `${a.s} vs ${b.s}`).to.equal(modelCompare(a.m, b.m));
          expect(compareVersions(b.s, a.s), `${b.s} vs ${a.s}`).to.equal(modelCompare(b.m, a.m));
        }),
        4000,
      );
    });

    // The same algebraic laws on valid versions and on arbitrary (mostly invalid) strings.
    for (const [label, gen] of [
      ['generated valid versions', genVersion.map((g) => g.s)],
      ['arbitrary strings', versionish],
    ] as const) {
      it(`compareVersions is antisymmetric and consistent with equality on ${label}`, () => {
        run(
          fc.property(gen, gen, (a, b) => {
            const ab = compareVersions(a, b);
            const ba = compareVersions(b, a);
            expect([-1, 0, 1]).to.include(ab);
            expect(ab).to.equal(-ba || 0);
            expect(versionsEqual(a, b)).to.equal(ab === 0);
            const na = normalizeVersion(a);
            const nb = normalizeVersion(b);
            if (na === null || nb === null) {
              // Invalid strings are equal only to themselves.
              if (a !== b) expect(ab, `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).not.to.equal(0);
            } else if (na === nb) expect(ab).to.equal(0);
          }),
        );
      });

      it(`compareVersions is transitive (and equality substitutive) on ${label}`, () => {
        run(
          fc.property(gen, gen, gen, (a, b, c) => {
            const [x, y, z] = [a, b, c].sort(compareVersions);
            expect(compareVersions(x, y)).to.be.at.most(0);
            expect(compareVersions(y, z)).to.be.at.most(0);
            expect(compareVersions(x, z), `${x} ${y} ${z}`).to.be.at.most(0);
            if (compareVersions(a, b) === 0) expect(compareVersions(a, c)).to.equal(compareVersions(b, c));
            if (compareVersions(a, b) < 0 && compareVersions(b, c) < 0) expect(compareVersions(a, c)).to.equal(-1);
          }),
        );
      });
    }

    it('sorting is deterministic: any input order gives the same order', () => {
      const lists = fc.array(versionish, { maxLength: 25 }).chain((xs) =>
        fc.tuple(fc.constant(xs), fc.shuffledSubarray(xs, { minLength: xs.length, maxLength: xs.length })),
      );
      run(
        fc.property(lists, ([xs, shuffled]) => {
          const s1 = [...xs].sort(compareVersions);
          const s2 = [...shuffled].sort(compareVersions);
          expect(s2.length).to.equal(s1.length);
          // Same sequence up to PEP 440-equal spellings ("1.0" / "1.0.0")...
          for (let i = 0; i < s1.length; i++) expect(compareVersions(s1[i], s2[i]), `${s1[i]} / ${s2[i]}`).to.equal(0);
          for (let i = 1; i < s1.length; i++) expect(compareVersions(s1[i - 1], s1[i])).to.be.at.most(0);
          // ...and exactly the same sequence once ties are broken by the string.
          const tie = (a: string, b: string) => compareVersions(a, b) || (a < b ? -1 : a > b ? 1 : 0);
          expect([...shuffled].sort(tie)).to.deep.equal([...xs].sort(tie));
          expect([...s1].sort(compareVersions)).to.deep.equal(s1);
        }),
      );
    });
  });

  describe('normalizeName', () => {
    it('is idempotent on arbitrary strings', () => {
      run(
        fc.property(fc.oneof(anyString, projectName), (s) => {
          const n = normalizeName(s);
          expect(normalizeName(n)).to.equal(n);
        }),
      );
    });

    it('maps valid names to [a-z0-9-], without leading, trailing or doubled dashes', () => {
      run(
        fc.property(projectName, (name) => {
          expect(isValidProjectName(name), name).to.equal(true);
          const n = normalizeName(name);
          expect(n).to.match(/^[a-z0-9-]*$/);
          expect(n).to.match(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/);
          expect(n).not.to.include('--');
        }),
      );
    });

    it('gives every spelling of a name (case, -_. runs) the same normalized form', () => {
      const respelled = projectName.chain((name) =>
        fc.tuple(
          fc.constant(name),
          fc.array(fc.stringMatching(/^[-_.]{1,3}$/), { minLength: 30, maxLength: 30 }),
          fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }),
        ),
      );
      run(
        fc.property(respelled, ([name, seps, up]) => {
          let k = 0;
          const other = name
            .replace(/[-_.]+/g, () => seps[k++ % seps.length])
            .split('')
            .map((c, i) => (up[i % up.length] ? c.toUpperCase() : c.toLowerCase()))
            .join('');
          expect(normalizeName(other), `${name} / ${other}`).to.equal(normalizeName(name));
        }),
      );
    });
  });

  describe('content negotiation', () => {
    const OFFERED = [TEXT_HTML, JSON_V1, HTML_V1, 'application/vnd.pypi.simple.latest+json', 'application/vnd.pypi.simple.latest+html'];
    const RESULTS = [TEXT_HTML, JSON_V1, HTML_V1, null];
    const OTHER_TYPES = ['*/*', 'text/*', 'application/*', 'application/json', 'text/plain', 'image/png', 'application/vnd.pypi.simple.v2+json', 'foo/bar'];
    const media = (pool: string[]) =>
      fc.tuple(fc.constantFrom(...pool), fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }), fc.constantFrom('', ' ', '  ')).map(
        ([m, up, pad]) => pad + [...m].map((c, i) => (up[i] ? c.toUpperCase() : c)).join('') + pad,
      );
    const param = fc.constantFrom('', ';level=1', ';charset=utf-8', '; x="y"', ';foo', ';version=1.0');
    const qText = fc.integer({ min: 0, max: 1000 }).map((k) => (k / 1000).toFixed(3).replace(/\.?0+$/, '') || '0');
    const range = (pool: string[], q: fc.Arbitrary<string | null>) => fc.tuple(media(pool), param, q).map(([m, p, qq]) => m + p + (qq === null ? '' : `;q=${qq}`));
    const header = (xs: string[]) => xs.join(',');

    it('never throws on arbitrary Accept headers and ?format= values, and answers one of three types or null', () => {
      const weird = fc.array(
        fc.oneof(range([...OFFERED, ...OTHER_TYPES], fc.option(fc.oneof(qText, anyString))), anyString),
        { maxLength: 6 },
      );
      run(
        fc.property(fc.oneof(anyString, weird.map(header)), fc.option(fc.oneof(anyString, weird.map(header))), (accept, format) => {
          expect(RESULTS).to.include(negotiate(accept));
          expect(RESULTS).to.include(negotiateRequest(accept, format ?? undefined));
          if (format) expect(negotiateRequest(accept, format)).to.equal(negotiate(format));
        }),
      );
    });

    it('answers null (406) when every range of the header has q=0', () => {
      const ranges = fc.array(range([...OFFERED, ...OTHER_TYPES], fc.constant('0')), { minLength: 1, maxLength: 8 });
      run(
        fc.property(ranges, (rs) => {
          expect(negotiate(header(rs)), header(rs)).to.equal(null);
        }),
      );
    });

    it('answers null when q=0 is added for all served types, whatever wildcards and other types say', () => {
      const others = fc.array(range(OTHER_TYPES, fc.option(qText)), { maxLength: 6 });
      const zeros = fc.tuple(...OFFERED.map((t) => range([t], fc.constant('0'))));
      const all = fc.tuple(others, zeros).chain(([o, z]) => {
        const xs = [...o, ...z];
        return fc.shuffledSubarray(xs, { minLength: xs.length, maxLength: xs.length });
      });
      run(
        fc.property(all, (rs) => {
          expect(negotiate(header(rs)), header(rs)).to.equal(null);
        }),
      );
    });

    it('does not depend on the order of ranges with distinct q-values', () => {
      const ranges = fc
        .uniqueArray(fc.integer({ min: 0, max: 1000 }), { maxLength: 8 })
        .chain((qs) => fc.tuple(...qs.map((q) => range([...OFFERED, ...OTHER_TYPES], fc.constant((q / 1000).toString())))))
        .chain((rs) => fc.tuple(fc.constant(rs), fc.shuffledSubarray(rs, { minLength: rs.length, maxLength: rs.length })));
      run(
        fc.property(ranges, ([rs, shuffled]) => {
          expect(negotiate(header(shuffled)), `${header(rs)} / ${header(shuffled)}`).to.equal(negotiate(header(rs)));
        }),
      );
    });

    it('picks the served type with the highest q when the header names only served types', () => {
      const three = fc.uniqueArray(fc.integer({ min: 0, max: 1000 }), { minLength: 3, maxLength: 3 }).chain((qs) =>
        fc.shuffledSubarray(
          [TEXT_HTML, JSON_V1, HTML_V1].map((t, i) => ({ t, q: qs[i] / 1000 })),
          { minLength: 1, maxLength: 3 },
        ),
      );
      run(
        fc.property(three, (rs) => {
          const best = rs.reduce((a, b) => (b.q > a.q ? b : a));
          const expected = best.q > 0 ? best.t : null;
          const h = rs.map((r) => `${r.t};q=${r.q}`).join(', ');
          expect(negotiate(h), h).to.equal(expected);
        }),
      );
    });
  });
});

// ---------------------------------------------------------------------------------------------
// The multipart upload handler against a real server.

interface PartSpec {
  name: string | null;
  filename: string | null;
  disposition: 'quoted' | 'unquoted' | 'star' | 'missing' | 'garbage';
  contentType: string | null;
  garbageHeaders: string[];
  body: Buffer;
}

interface RequestSpec {
  path: string;
  contentType: string | null;
  boundary: string;
  boundaryInHeader: 'same' | 'other' | 'quoted' | 'none';
  preamble: string;
  parts: PartSpec[];
  ending: 'proper' | 'none' | 'truncated' | 'lf' | 'garbage';
  cut: number;
  chunked: boolean;
  extraHeaders: [string, string][];
  /** kind of request, for the report */
  kind: string;
}

const MARK = `fz${randomBytes(3).toString('hex')}`; // the project every generated upload claims

function fuzzSpecs(): fc.Arbitrary<RequestSpec> {
  const latin1 = (max: number) => fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: max });
  const fieldNames = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(':action', 'name', 'version', 'content', 'filetype', 'pyversion', 'sha256_digest', 'md5_digest', 'blake2_256_digest', 'protocol_version', 'gpg_signature', 'metadata_version', 'classifiers') },
    { weight: 2, arbitrary: fc.constantFrom('__proto__', '__proto__[polluted]', 'constructor[prototype][polluted]', 'name[]', 'name[0]', 'content[]', 'a[999999999]', ':action[x]', '', ' ', 'NAME') },
    { weight: 1, arbitrary: fc.integer({ min: 150, max: 20_000 }).map((n) => 'n'.repeat(n)) },
    { weight: 2, arbitrary: latin1(30) },
  );
  const values = fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom('file_upload', 'remove_pkg', 'doc_upload', MARK, `${MARK}-x`, '1.0.0', '1.0.1', 'not a version', 'bdist_wheel', 'sdist', '1', '2', '', 'UNKNOWN', 'py3', '0'.repeat(64)) },
    { weight: 2, arbitrary: latin1(50) },
    { weight: 1, arbitrary: fc.integer({ min: 1000, max: 200_000 }).map((n) => 'v'.repeat(n)) },
  );
  const filenames = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.constantFrom(
        `${MARK}-1.0.0-py3-none-any.whl`,
        `${MARK}-1.0.1-py3-none-any.whl`,
        `../${MARK}-1.0.0-py3-none-any.whl`,
        `../../${MARK}-1.0.2-py3-none-any.whl`,
        `/tmp/${MARK}-1.0.0.tar.gz`,
        `..\\..\\${MARK}-1.0.0.tar.gz`,
        `${MARK}-1.0.0.tar.gz`,
        `${MARK}-1.0.0.zip`,
        `.${MARK}-1.0.0.tar.gz`,
        `${MARK}-1.0.0-py3-none-any.whl/../../x`,
        `${MARK}\u0000-1.0.0-py3-none-any.whl`,
        `${MARK}\u00fc-1.0.0-py3-none-any.whl`,
        `${MARK}-1.0.0-py3-none-any.WHL`,
        `${MARK}-1.0.0.exe`,
        `${TEMP_PREFIX}${MARK}.tmp`,
        `..`,
        `.`,
        '',
      ),
    },
    { weight: 2, arbitrary: latin1(40) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  );
  const content = fc.oneof(
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: 4096 }).map((u) => Buffer.from(u)) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 200_000 }).map((n) => randomBytes(n)) },
    { weight: 3, arbitrary: fc.constantFrom('1.0.0', '1.0.1', '1.0.2').map((v) => Buffer.concat(buildWheel(MARK, v, randomBytes(64)).parts)) },
    { weight: 1, arbitrary: values.map((v) => Buffer.from(v, 'latin1')) },
  );
  const part: fc.Arbitrary<PartSpec> = fc.record({
    name: fc.option(fieldNames, { freq: 12 }),
    filename: fc.option(filenames, { freq: 2 }),
    disposition: fc.constantFrom('quoted', 'quoted', 'quoted', 'unquoted', 'star', 'missing', 'garbage'),
    contentType: fc.option(fc.constantFrom('application/octet-stream', 'text/plain; charset=utf-8', 'multipart/mixed; boundary=x', 'garbage'), { freq: 2 }),
    garbageHeaders: fc.array(fc.oneof(latin1(60), fc.constantFrom('Content-Transfer-Encoding: base64', 'Content-Disposition: attachment', 'X: ' + 'y'.repeat(20_000), ':', 'NoColon')), { maxLength: 2 }),
    body: fc.oneof(values.map((v) => Buffer.from(v, 'latin1')), content),
  });
  // twine's fields in twine's order, for one wheel of MARK.
  const field = (name: string, value: string): PartSpec => ({ name, filename: null, disposition: 'quoted', contentType: null, garbageHeaders: [], body: Buffer.from(value) });
  const twineParts = (version: string, action: string, digest: 'right' | 'wrong' | 'none', filenameFor: (wheel: string) => string): PartSpec[] => {
    const w = buildWheel(MARK, version, randomBytes(32));
    const parts: PartSpec[] = [field(':action', action), field('protocol_version', '1'), field('name', MARK), field('version', version), field('filetype', 'bdist_wheel')];
    if (digest !== 'none') parts.push(field('sha256_digest', digest === 'right' ? w.sha256 : '0'.repeat(64)));
    parts.push({ name: 'content', filename: filenameFor(w.filename), disposition: 'quoted', contentType: 'application/octet-stream', garbageHeaders: [], body: Buffer.concat(w.parts) });
    return parts;
  };
  // A version no other upload of the run is likely to take (fast-check's bias towards small
  // values and bounds is off, or the same few versions would come back and meet a 409).
  const freshVersion = fc.noBias(fc.integer({ min: 3, max: 999_999 })).map((n) => `1.0.${n}`);
  // A plausible upload (twine's field order) that the mutations then damage in places.
  const plausible = fc
    .record({
      version: fc.oneof({ weight: 3, arbitrary: freshVersion }, { weight: 1, arbitrary: fc.constantFrom('1.0.0', '1.0.1', '1.0.2') }),
      filename: fc.option(filenames, { freq: 3 }), // mostly (null) the right name, with a path prefix at times
      prefix: fc.constantFrom('', '', '', '../', '../../', 'C:\\Users\\x\\', '/etc/'),
      extra: fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(part, { maxLength: 3 }) }),
      dup: fc.boolean(),
      digest: fc.constantFrom<'right' | 'wrong' | 'none'>('right', 'right', 'wrong', 'none'),
      action: fc.constantFrom('file_upload', 'file_upload', 'file_upload', 'remove_pkg', 'FILE_UPLOAD', ''),
    })
    .map(({ version, filename: name, prefix, extra, dup, digest, action }) => {
      const parts = twineParts(version, action, digest, (wheel) => name ?? prefix + wheel);
      const content = parts.pop()!;
      if (dup) parts.push(field('name', `${MARK}-other`), field(':action', 'remove_pkg'));
      return [...parts, content, ...extra];
    });
  const boundary = fc.oneof(
    { weight: 4, arbitrary: fc.stringMatching(/^[A-Za-z0-9'()+_,./:=?-]{1,70}$/) },
    { weight: 1, arbitrary: latin1(80).filter((s) => !s.includes('"')) },
    { weight: 1, arbitrary: fc.constantFrom('', ' ', '-', '--', 'x'.repeat(300), 'a b') },
  );
  const extraHeaders = fc.array(fc.constantFrom<[string, string]>(['Expect', '100-continue'], ['Content-Encoding', 'gzip'], ['X-Junk', '\u00ff\u0080'], ['Accept', '*/*']), { maxLength: 2 });
  // Anything goes...
  const wild = fc.record({
    path: fc.constantFrom('/', '/legacy/', '/legacy', '/upload/', '/?:action=file_upload', '/legacy/?:action=remove_pkg&name=x'),
    contentType: fc.constantFrom('multipart/form-data', 'multipart/form-data', 'multipart/form-data', 'multipart/form-data', 'MULTIPART/FORM-DATA', 'multipart/mixed', 'application/x-www-form-urlencoded', 'text/plain', null),
    boundary,
    boundaryInHeader: fc.constantFrom('same', 'same', 'same', 'quoted', 'other', 'none'),
    preamble: fc.constantFrom('', '', 'preamble text\r\n', '\r\n\r\n'),
    parts: fc.oneof({ weight: 2, arbitrary: plausible }, { weight: 2, arbitrary: fc.array(part, { maxLength: 8 }) }, { weight: 1, arbitrary: fc.array(part, { minLength: 200, maxLength: 230 }) }),
    ending: fc.constantFrom('proper', 'proper', 'proper', 'none', 'truncated', 'lf', 'garbage'),
    cut: fc.double({ min: 0, max: 1, noNaN: true }),
    chunked: fc.boolean(),
    extraHeaders,
    kind: fc.constant('wild'),
  });
  // ...and well-formed envelopes around plausible (often valid) uploads, damaged in places.
  const framed = fc.record({
    path: fc.constantFrom('/', '/legacy/', '/?:action=file_upload'),
    contentType: fc.constant('multipart/form-data'),
    boundary: fc.stringMatching(/^[A-Za-z0-9'+_.-]{1,70}$/), // token characters: valid unquoted too
    boundaryInHeader: fc.constantFrom('same', 'quoted'),
    preamble: fc.constantFrom('', '\r\n'),
    parts: plausible,
    ending: fc.constantFrom('proper', 'proper', 'proper', 'proper', 'proper', 'proper', 'none', 'truncated', 'garbage'),
    cut: fc.double({ min: 0, max: 1, noNaN: true }),
    chunked: fc.boolean(),
    extraHeaders,
    kind: fc.constant('framed'),
  });
  // ...and undamaged uploads of new versions between them, which must keep being accepted.
  const clean = fc.record({
    path: fc.constantFrom('/', '/legacy/'),
    contentType: fc.constant('multipart/form-data'),
    boundary: fc.stringMatching(/^[A-Za-z0-9'+_.-]{1,70}$/),
    boundaryInHeader: fc.constantFrom<'same' | 'quoted'>('same', 'quoted'),
    preamble: fc.constantFrom('', '\r\n'),
    parts: freshVersion.map((v) => twineParts(v, 'file_upload', 'right', (wheel) => wheel)),
    ending: fc.constant<'proper'>('proper'),
    cut: fc.constant(0),
    chunked: fc.boolean(),
    extraHeaders: fc.constant<[string, string][]>([]),
    kind: fc.constant('clean'),
  });
  return fc.oneof({ weight: 6, arbitrary: wild }, { weight: 4, arbitrary: framed }, { weight: 1, arbitrary: clean }).map((spec) => Object.assign(spec, { [fc.toStringMethod]: () => describeSpec(spec) }));
}

function quoteParam(v: string): string {
  return `"${v.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A')}"`;
}

function renderSpec(s: RequestSpec): { headers: Record<string, string>; body: Buffer } {
  const nl = s.ending === 'lf' ? '\n' : '\r\n';
  const b = Buffer.from(s.boundary, 'latin1');
  const chunks: Buffer[] = [Buffer.from(s.preamble)];
  for (const p of s.parts) {
    const disp: string[] = ['form-data'];
    if (p.disposition === 'garbage') disp.splice(0, 1, '\u00ff;;=;"');
    if (p.name !== null && p.disposition !== 'missing') disp.push(p.disposition === 'unquoted' ? `name=${p.name}` : `name=${quoteParam(p.name)}`);
    if (p.filename !== null) {
      if (p.disposition === 'star') disp.push(`filename*=UTF-8''${encodeURIComponent(p.filename)}`);
      else disp.push(`filename=${quoteParam(p.filename)}`);
    }
    const lines = [`Content-Disposition: ${disp.join('; ')}`];
    if (p.contentType) lines.push(`Content-Type: ${p.contentType}`);
    lines.push(...p.garbageHeaders);
    const head = lines.join(nl);
    // Header bytes: latin-1 when possible, UTF-8 for names beyond it (as browsers send them).
    chunks.push(Buffer.from('--'), b, Buffer.from(nl), Buffer.from(head, /[^\u0000-\u00ff]/.test(head) ? 'utf8' : 'latin1'), Buffer.from(nl + nl), p.body, Buffer.from(nl));
  }
  if (s.ending === 'proper' || s.ending === 'lf') chunks.push(Buffer.from('--'), b, Buffer.from(`--${nl}`));
  else if (s.ending === 'garbage') chunks.push(Buffer.from('--'), b, Buffer.from('xx garbage after the last boundary'));
  let body = Buffer.concat(chunks);
  if (s.ending === 'truncated') body = body.subarray(0, Math.floor(body.length * s.cut));
  const headers: Record<string, string> = {};
  if (s.contentType !== null) {
    const other = `${s.boundary}x`;
    const param = s.boundaryInHeader === 'same' ? `; boundary=${s.boundary}` : s.boundaryInHeader === 'quoted' ? `; boundary="${s.boundary}"` : s.boundaryInHeader === 'other' ? `; boundary=${other}` : '';
    headers['Content-Type'] = s.contentType + param;
  }
  for (const [k, v] of s.extraHeaders) headers[k] = v;
  return { headers, body };
}

function describeSpec(s: RequestSpec): string {
  const parts = s.parts.map((p) => `${JSON.stringify(p.name?.slice(0, 40) ?? null)}${p.filename !== null ? ` file=${JSON.stringify(p.filename.slice(0, 60))}` : ''} (${p.body.length} B, ${p.disposition})`);
  return `[${s.kind}] POST ${s.path} ct=${JSON.stringify(s.contentType)} boundary=${JSON.stringify(s.boundary.slice(0, 40))}/${s.boundaryInHeader} ending=${s.ending} chunked=${s.chunked} parts[${s.parts.length}]=${parts.slice(0, 12).join(', ')}`;
}

/** POST the raw body; resolves with the status or with an Error describing the failure. */
function postRaw(url: string, s: RequestSpec): Promise<{ status: number; reason: string } | Error> {
  const { headers, body } = renderSpec(s);
  const u = new URL(url);
  return new Promise((resolve) => {
    let done = false;
    const finish = (v: { status: number; reason: string } | Error) => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        resolve(v);
      }
    };
    const timer = setTimeout(() => {
      finish(new Error('no response within 15 s'));
      req.destroy();
    }, 15_000);
    let req: http.ClientRequest;
    try {
      const h: Record<string, string | number> = { ...headers };
      if (s.chunked) h['Transfer-Encoding'] = 'chunked';
      else h['Content-Length'] = body.length;
      req = http.request({ host: u.hostname, port: Number(u.port), path: s.path, method: 'POST', headers: h, agent: false });
    } catch (err) {
      // node:http refused to send it (an invalid header): not a request the server ever saw.
      clearTimeout(timer);
      resolve({ status: -1, reason: (err as Error).message });
      return;
    }
    req.on('response', (res) => {
      // The answer is what counts: our side may still fail to send the rest of a refused body.
      finish({ status: res.statusCode ?? 0, reason: res.statusMessage ?? '' });
      res.resume();
      res.on('error', () => {});
    });
    req.on('error', (err) => finish(err));
    if (s.chunked) {
      for (let off = 0; off < body.length; off += 7919) req.write(body.subarray(off, off + 7919));
      req.end();
    } else req.end(body);
  });
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...(await walk(p)));
  }
  return out;
}

describe('property tests: the multipart upload handler', function () {
  this.timeout(120_000);
  let server: Spawned | null = null;
  let work = '';
  let root = '';

  before(async () => {
    work = await fsp.mkdtemp(path.join(os.tmpdir(), 'pypi-lite-fuzz-'));
    root = path.join(work, 'root');
    await fsp.mkdir(path.join(work, 'sibling'), { recursive: true });
    await fsp.mkdir(root);
    server = await spawnServer([root, '-a', '.', '-P', '.', '--disable-fallback', '--log-level', 'warn']);
    await waitHealthy(server.url);
  });

  after(async () => {
    await server?.stop();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  it('answers every malformed or odd multipart body with 200 or a 4xx, leaves no temp file and writes nothing outside the root', async () => {
    const url = server!.url;
    const statuses = new Map<number, number>();
    const clean = { sent: 0, accepted: 0 };
    await fc.assert(
      fc.asyncProperty(fuzzSpecs(), async (spec) => {
        const r = await postRaw(url, spec);
        if (r instanceof Error) {
          await new Promise((res) => setTimeout(res, 200));
          const tail = server!.output().split('\n').slice(-15).join('\n');
          expect.fail(`no response (${r.message}) to ${describeSpec(spec)}\nserver exit code: ${server!.proc.exitCode} signal: ${server!.proc.signalCode}\nserver output (tail):\n${tail}`);
        }
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (r.status === -1) return; // node:http would not send it
        expect(r.status === 200 || (r.status >= 400 && r.status < 500), `${r.status} "${r.reason}" for ${describeSpec(spec)}`).to.equal(true);
        if (spec.kind === 'clean') {
          clean.sent++;
          // 409 only in the rare run where two uploads draw the same version.
          expect([200, 409], `${r.status} "${r.reason}" for an undamaged upload: ${describeSpec(spec)}`).to.include(r.status);
          if (r.status === 200) clean.accepted++;
        }
        const temps = (await fsp.readdir(root)).filter((n) => n.startsWith(TEMP_PREFIX));
        expect(temps, `temp files after ${r.status} "${r.reason}" for ${describeSpec(spec)}`).to.deep.equal([]);
        expect(server!.proc.exitCode, 'the server exited').to.equal(null);
      }),
      { numRuns: 500, endOnFailure: true },
    );
    // The generator must reach both sides: accepted uploads and refusals.
    // About one request in eleven is an undamaged upload; nearly all of them get in.
    expect(clean.sent, JSON.stringify(clean)).to.be.at.least(20);
    expect(clean.accepted, JSON.stringify(clean)).to.be.at.least(clean.sent - 2);
    // Some damaged ones get in too (no digest, extra fields, a chunked body): about eight a run.
    expect(statuses.get(200) ?? 0, JSON.stringify([...statuses])).to.be.greaterThan(clean.accepted);
    const refusals = [...statuses].filter(([s]) => s >= 400);
    expect(refusals.reduce((n, [, c]) => n + c, 0), JSON.stringify([...statuses])).to.be.greaterThan(50);
    expect(refusals.length, `distinct refusal codes: ${JSON.stringify([...statuses])}`).to.be.at.least(2);

    // Nothing was written outside the root: not next to it, not in the temp dir, not in the repo.
    const outside = [...(await walk(work)).filter((p) => !p.startsWith(root + path.sep) && p !== root), ...(await fsp.readdir(os.tmpdir())).map((n) => path.join(os.tmpdir(), n)), ...(await fsp.readdir(REPO)).map((n) => path.join(REPO, n))];
    expect(outside.filter((p) => path.basename(p).includes(MARK))).to.deep.equal([]);
    expect((await walk(work)).filter((p) => !p.startsWith(root + path.sep) && p !== root)).to.deep.equal([path.join(work, 'sibling')]);

    // Inside the root: only regular distribution files (and our own dotfiles), no directories,
    // each listed on its project page with the sha256 of its bytes.
    await waitHealthy(url, { idle: true });
    for (const p of await walk(root)) {
      const name = path.basename(p);
      const st = await fsp.lstat(p);
      expect(st.isFile(), `${p} is not a regular file`).to.equal(true);
      if (name.startsWith('.')) {
        expect(name.startsWith(TEMP_PREFIX), `temp file ${name} left`).to.equal(false);
        continue;
      }
      const parsed = parseFilename(name);
      expect(parsed, `unparseable file ${JSON.stringify(name)} in the root`).not.to.equal(null);
      const page = await send(url, `/simple/${parsed!.project}/`, { headers: { Accept: JSON_V1 } });
      expect(page?.status).to.equal(200);
      const listed = parseProjectPage(`${url}/simple/${parsed!.project}/`, page!).find((f) => f.filename === name);
      expect(listed?.sha256, `${name} on /simple/${parsed!.project}/`).to.equal(sha256(await fsp.readFile(p)));
    }

    // Prototype pollution through field names would show up everywhere; the server still serves.
    const health = await send(url, '/health');
    expect(health?.status).to.equal(200);
    expect((JSON.parse(health!.body.toString()) as { status: string }).status).to.equal('ok');
  });
});
