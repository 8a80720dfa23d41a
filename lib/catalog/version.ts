/**
 * A small, fast PEP 440 ("Version specifiers") implementation: parsing with the
 * spec's permissive normalization rules, canonical formatting, and ordering.
 *
 * Accepted syntax (case-insensitive, surrounding whitespace ignored):
 *
 *   [v] [N!] N(.N)* [pre] [post] [dev] [+local]
 *
 *   pre   = [sep] (a|alpha|b|beta|rc|c|pre|preview) [sep] [N]   (N defaults to 0)
 *   post  = -N  |  [sep] (post|rev|r) [sep] [N]                  (N defaults to 0)
 *   dev   = [sep] dev [sep] [N]                                  (N defaults to 0)
 *   local = + ALNUM+ ([sep] ALNUM+)*
 *   sep   = "." | "-" | "_"
 *
 * Integers are stored internally as digit strings with leading zeros removed,
 * so arbitrarily large numbers are formatted and compared exactly. The public
 * `Version` object exposes them as JS numbers (values above 2^53 lose
 * precision there, but never in normalizeVersion/compareVersions).
 */

export interface Version {
  epoch: number;
  release: number[];
  pre: { label: 'a' | 'b' | 'rc'; n: number } | null;
  post: number | null;
  dev: number | null;
  local: (string | number)[] | null;
}

type PreLabel = 'a' | 'b' | 'rc';

interface LocalSegment {
  numeric: boolean;
  /** digits without leading zeros when numeric, otherwise lower-case alphanumerics */
  value: string;
}

interface Parsed {
  epoch: string;
  release: string[];
  /** release length once trailing zero components are dropped (for ordering) */
  significant: number;
  pre: { label: PreLabel; n: string } | null;
  post: string | null;
  dev: string | null;
  local: LocalSegment[] | null;
  normalized: string;
}

// Longer spellings first wherever one spelling is a prefix of another.
const PRE_SPELLINGS: readonly (readonly [string, PreLabel])[] = [
  ['alpha', 'a'],
  ['a', 'a'],
  ['beta', 'b'],
  ['b', 'b'],
  ['preview', 'rc'],
  ['pre', 'rc'],
  ['rc', 'rc'],
  ['c', 'rc'],
];
const POST_SPELLINGS: readonly string[] = ['post', 'rev', 'r'];
const PRE_RANK: Readonly<Record<PreLabel, number>> = { a: 0, b: 1, rc: 2 };

const CH_0 = 48;
const CH_9 = 57;
const CH_A_LOWER = 97;
const CH_Z_LOWER = 122;
const CH_DOT = 46;
const CH_DASH = 45;
const CH_UNDERSCORE = 95;
const CH_BANG = 33;
const CH_PLUS = 43;
const CH_V = 118;

function isDigit(c: number): boolean {
  return c >= CH_0 && c <= CH_9;
}

function isAlnum(c: number): boolean {
  return isDigit(c) || (c >= CH_A_LOWER && c <= CH_Z_LOWER);
}

function isSep(c: number): boolean {
  return c === CH_DOT || c === CH_DASH || c === CH_UNDERSCORE;
}

function skipDigits(s: string, i: number): number {
  while (i < s.length && isDigit(s.charCodeAt(i))) i++;
  return i;
}

/** Remove leading zeros from a non-empty digit string ("007" -> "7", "00" -> "0"). */
function stripZeros(d: string): string {
  let i = 0;
  while (i < d.length - 1 && d.charCodeAt(i) === CH_0) i++;
  return i === 0 ? d : d.slice(i);
}

/** ASCII-only lower-casing: non-ASCII characters are left alone (and later rejected). */
function lowerAscii(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** Optional separator, keyword, optional separator, optional number. */
function scanLabelled(
  s: string,
  i: number,
  words: readonly string[],
): { word: string; n: string; end: number } | null {
  let j = i;
  if (j < s.length && isSep(s.charCodeAt(j))) j++;
  let word: string | null = null;
  for (const w of words) {
    if (s.startsWith(w, j)) {
      word = w;
      break;
    }
  }
  if (word === null) return null;
  j += word.length;
  if (j < s.length && isSep(s.charCodeAt(j))) j++;
  const start = j;
  j = skipDigits(s, j);
  return { word, n: j > start ? stripZeros(s.slice(start, j)) : '0', end: j };
}

const PRE_WORDS: readonly string[] = PRE_SPELLINGS.map(([w]) => w);

function preLabelOf(word: string): PreLabel {
  for (const [w, label] of PRE_SPELLINGS) if (w === word) return label;
  return 'rc'; // unreachable: word always comes from PRE_WORDS
}

function scan(input: string): Parsed | null {
  const s = lowerAscii(input.trim());
  const n = s.length;
  let i = 0;
  if (i < n && s.charCodeAt(i) === CH_V) i++;

  // Epoch and release.
  let start = i;
  i = skipDigits(s, i);
  if (i === start) return null;
  let epoch = '0';
  if (i < n && s.charCodeAt(i) === CH_BANG) {
    epoch = stripZeros(s.slice(start, i));
    start = ++i;
    i = skipDigits(s, i);
    if (i === start) return null;
  }
  const release: string[] = [stripZeros(s.slice(start, i))];
  while (i + 1 < n && s.charCodeAt(i) === CH_DOT && isDigit(s.charCodeAt(i + 1))) {
    start = i + 1;
    i = skipDigits(s, start);
    release.push(stripZeros(s.slice(start, i)));
  }

  // Pre-release.
  let pre: Parsed['pre'] = null;
  const preScan = scanLabelled(s, i, PRE_WORDS);
  if (preScan !== null) {
    pre = { label: preLabelOf(preScan.word), n: preScan.n };
    i = preScan.end;
  }

  // Post-release: implicit "-N" or an explicit spelling.
  let post: string | null = null;
  if (i + 1 < n && s.charCodeAt(i) === CH_DASH && isDigit(s.charCodeAt(i + 1))) {
    start = i + 1;
    i = skipDigits(s, start);
    post = stripZeros(s.slice(start, i));
  } else {
    const postScan = scanLabelled(s, i, POST_SPELLINGS);
    if (postScan !== null) {
      post = postScan.n;
      i = postScan.end;
    }
  }

  // Development release.
  let dev: string | null = null;
  const devScan = scanLabelled(s, i, ['dev']);
  if (devScan !== null) {
    dev = devScan.n;
    i = devScan.end;
  }

  // Local version label.
  let local: LocalSegment[] | null = null;
  if (i < n && s.charCodeAt(i) === CH_PLUS) {
    local = [];
    i++;
    for (;;) {
      start = i;
      let numeric = true;
      while (i < n && isAlnum(s.charCodeAt(i))) {
        if (!isDigit(s.charCodeAt(i))) numeric = false;
        i++;
      }
      if (i === start) return null;
      const raw = s.slice(start, i);
      local.push({ numeric, value: numeric ? stripZeros(raw) : raw });
      if (i < n && isSep(s.charCodeAt(i))) {
        i++;
        continue;
      }
      break;
    }
  }

  if (i !== n) return null;

  let significant = release.length;
  while (significant > 0 && release[significant - 1] === '0') significant--;

  let normalized = epoch === '0' ? '' : `${epoch}!`;
  normalized += release.join('.');
  if (pre !== null) normalized += `${pre.label}${pre.n}`;
  if (post !== null) normalized += `.post${post}`;
  if (dev !== null) normalized += `.dev${dev}`;
  if (local !== null) normalized += `+${local.map((seg) => seg.value).join('.')}`;

  return { epoch, release, significant, pre, post, dev, local, normalized };
}

// ---------------------------------------------------------------------------
// Bounded parse cache (compareVersions is used inside sort comparators).

const CACHE_LIMIT = 50_000;
/** Longer inputs are parsed every time rather than pinned in memory. */
const CACHE_MAX_KEY_LENGTH = 256;
const cache = new Map<string, Parsed | null>();

function lookup(s: string): Parsed | null {
  const hit = cache.get(s);
  if (hit !== undefined) return hit;
  const parsed = scan(s);
  if (s.length <= CACHE_MAX_KEY_LENGTH) {
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(s, parsed);
  }
  return parsed;
}

// ---------------------------------------------------------------------------
// Ordering.

function compareNumbers(a: string, b: string): number {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** -1: dev release of a final (sorts below every pre-release); 0: pre-release; 1: neither. */
function preClass(v: Parsed): number {
  if (v.pre !== null) return 0;
  return v.post === null && v.dev !== null ? -1 : 1;
}

function compareLocal(a: LocalSegment[] | null, b: LocalSegment[] | null): number {
  if (a === null || b === null) return a !== null ? 1 : b !== null ? -1 : 0;
  const len = Math.min(a.length, b.length);
  for (let k = 0; k < len; k++) {
    const x = a[k];
    const y = b[k];
    let c: number;
    if (x.numeric && y.numeric) c = compareNumbers(x.value, y.value);
    else if (x.numeric) c = 1;
    else if (y.numeric) c = -1;
    else c = compareStrings(x.value, y.value);
    if (c !== 0) return c;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

function compareParsed(a: Parsed, b: Parsed): number {
  let c = compareNumbers(a.epoch, b.epoch);
  if (c !== 0) return c;

  const len = Math.max(a.significant, b.significant);
  for (let k = 0; k < len; k++) {
    c = compareNumbers(k < a.significant ? a.release[k] : '0', k < b.significant ? b.release[k] : '0');
    if (c !== 0) return c;
  }

  const pa = preClass(a);
  const pb = preClass(b);
  if (pa !== pb) return pa < pb ? -1 : 1;
  if (a.pre !== null && b.pre !== null) {
    c = PRE_RANK[a.pre.label] - PRE_RANK[b.pre.label];
    if (c !== 0) return c < 0 ? -1 : 1;
    c = compareNumbers(a.pre.n, b.pre.n);
    if (c !== 0) return c;
  }

  // No post-release sorts before any post-release.
  if (a.post !== b.post) {
    if (a.post === null) return -1;
    if (b.post === null) return 1;
    c = compareNumbers(a.post, b.post);
    if (c !== 0) return c;
  }

  // No dev-release sorts after any dev-release.
  if (a.dev !== b.dev) {
    if (a.dev === null) return 1;
    if (b.dev === null) return -1;
    c = compareNumbers(a.dev, b.dev);
    if (c !== 0) return c;
  }

  return compareLocal(a.local, b.local);
}

// ---------------------------------------------------------------------------
// Public API.

function toNumber(d: string): number {
  return Number(d);
}

export function parseVersion(s: string): Version | null {
  if (typeof s !== 'string') return null;
  const p = lookup(s);
  if (p === null) return null;
  return {
    epoch: toNumber(p.epoch),
    release: p.release.map(toNumber),
    pre: p.pre === null ? null : { label: p.pre.label, n: toNumber(p.pre.n) },
    post: p.post === null ? null : toNumber(p.post),
    dev: p.dev === null ? null : toNumber(p.dev),
    local: p.local === null ? null : p.local.map((seg) => (seg.numeric ? toNumber(seg.value) : seg.value)),
  };
}

/** Canonical PEP 440 spelling, or null when `s` is not a valid version. Trailing zeros are kept. */
export function normalizeVersion(s: string): string | null {
  if (typeof s !== 'string') return null;
  const p = lookup(s);
  return p === null ? null : p.normalized;
}

/**
 * Total order on all strings: invalid versions first (ordered by plain string
 * comparison), then valid versions in PEP 440 order. Returns -1, 0 or 1; 0 for
 * two different strings only when both are valid and PEP 440-equal
 * (e.g. "1.0" and "1.0.0").
 */
export function compareVersions(a: string, b: string): number {
  if (a === b) return 0;
  const pa = lookup(a);
  const pb = lookup(b);
  if (pa === null) return pb === null ? compareStrings(a, b) : -1;
  if (pb === null) return 1;
  return compareParsed(pa, pb);
}

/** PEP 440 equality (local labels included); plain string equality for invalid input. */
export function versionsEqual(a: string, b: string): boolean {
  return compareVersions(a, b) === 0;
}

/** True for pre-releases and development releases. False for invalid input. */
export function isPrerelease(s: string): boolean {
  if (typeof s !== 'string') return false;
  const p = lookup(s);
  return p !== null && (p.pre !== null || p.dev !== null);
}

/**
 * A string that is the same for exactly the PEP 440-equal spellings of a version ("1.0",
 * "1.0.0", "v1.0", "1.0-0"...: trailing zeros of the release dropped), or null when `s` is not a
 * valid version. For keys, not for display.
 */
export function versionKey(s: string): string | null {
  if (typeof s !== 'string') return null;
  const p = lookup(s);
  if (p === null) return null;
  let key = `${p.epoch}!${p.release.slice(0, Math.max(p.significant, 1)).join('.')}`;
  if (p.pre !== null) key += `${p.pre.label}${p.pre.n}`;
  if (p.post !== null) key += `.post${p.post}`;
  if (p.dev !== null) key += `.dev${p.dev}`;
  if (p.local !== null) key += `+${p.local.map((seg) => seg.value).join('.')}`;
  return key;
}
