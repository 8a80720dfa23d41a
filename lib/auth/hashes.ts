// Password hashes of htpasswd entries: verifying a password against an entry (bcrypt in a
// worker thread, APR1-MD5, {SHA}; compared in constant time), hashing a new one (bcrypt), and
// a dummy entry that costs what a real one does (so unknown users take as long as known ones).

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { bcryptCompare } from './bcrypt-pool.js';
import { APR1_RE, APR1_SALT_RE, type HashKind, type HtpasswdEntry } from './htpasswd.js';

/** Passwords longer than this never verify (bounds the APR1 work per request). */
export const MAX_PASSWORD_LENGTH = 1024;

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function md5(...parts: Buffer[]): Buffer {
  const h = createHash('md5');
  for (const p of parts) h.update(p);
  return h.digest();
}

function to64(value: number, n: number): string {
  let out = '';
  let v = value;
  for (let i = 0; i < n; i++) {
    out += ITOA64[v & 0x3f];
    v >>>= 6;
  }
  return out;
}

/**
 * Apache's APR1-MD5 (`htpasswd -m`): MD5-crypt with the `$apr1$` magic.
 * The salt is truncated to 8 characters and must be printable ASCII without
 * '$' or ':'. Returns the full `$apr1$salt$hash` string.
 */
export function apr1(password: string, salt: string): string {
  const s = salt.slice(0, 8);
  if (!APR1_SALT_RE.test(s) || s.includes('$') || s.includes(':')) {
    throw new RangeError('apr1 salt must be printable ASCII without "$" or ":"');
  }
  const magic = '$apr1$';
  const pw = Buffer.from(password, 'utf8');
  const saltBuf = Buffer.from(s, 'latin1');

  const parts: Buffer[] = [pw, Buffer.from(magic, 'latin1'), saltBuf];
  const alt = md5(pw, saltBuf, pw);
  for (let left = pw.length; left > 0; left -= 16) parts.push(alt.subarray(0, Math.min(left, 16)));
  const zero = Buffer.alloc(1);
  const first = pw.subarray(0, 1);
  for (let i = pw.length; i > 0; i >>>= 1) parts.push(i & 1 ? zero : first);
  let fin = md5(...parts);

  for (let i = 0; i < 1000; i++) {
    const round: Buffer[] = [];
    round.push(i & 1 ? pw : fin);
    if (i % 3) round.push(saltBuf);
    if (i % 7) round.push(pw);
    round.push(i & 1 ? fin : pw);
    fin = md5(...round);
  }

  const f = fin;
  const encoded =
    to64((f[0] << 16) | (f[6] << 8) | f[12], 4) +
    to64((f[1] << 16) | (f[7] << 8) | f[13], 4) +
    to64((f[2] << 16) | (f[8] << 8) | f[14], 4) +
    to64((f[3] << 16) | (f[9] << 8) | f[15], 4) +
    to64((f[4] << 16) | (f[10] << 8) | f[5], 4) +
    to64(f[11], 2);
  return `${magic}${s}$${encoded}`;
}

function sha1Hash(password: string): string {
  return '{SHA}' + createHash('sha1').update(password, 'utf8').digest('base64');
}

/** Constant-time string comparison (both sides hashed to equal-length digests first). */
function safeEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a, 'utf8').digest();
  const db = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(da, db);
}

/** Check a password against a parsed entry. Passwords over MAX_PASSWORD_LENGTH never match. */
export async function verifyPassword(entry: HtpasswdEntry, password: string): Promise<boolean> {
  if (typeof password !== 'string' || password.length > MAX_PASSWORD_LENGTH) return false;
  switch (entry.kind) {
    case 'bcrypt':
      try {
        // In a worker thread: bcryptjs would otherwise hold the event loop for ~100 ms slices.
        return await bcryptCompare(password, entry.hash);
      } catch {
        return false;
      }
    case 'apr1': {
      const m = APR1_RE.exec(entry.hash);
      if (!m) return false;
      return safeEqual(apr1(password, m[1]), entry.hash);
    }
    case 'sha1':
      return safeEqual(sha1Hash(password), entry.hash);
    default:
      return false;
  }
}

/** Hash a password with bcrypt, returned with Apache's `$2y$` prefix. */
export async function hashPassword(password: string, rounds = 10): Promise<string> {
  if (!Number.isInteger(rounds) || rounds < 4 || rounds > 31) {
    throw new RangeError('bcrypt rounds must be an integer between 4 and 31');
  }
  if (password.length > MAX_PASSWORD_LENGTH) {
    throw new RangeError(`password longer than ${MAX_PASSWORD_LENGTH} characters`);
  }
  // bcryptjs loads here (`pypi-lite passwd`), not with the server: it verifies in its worker.
  const { default: bcrypt } = await import('bcryptjs');
  const hash = await bcrypt.hash(password, rounds);
  return hash.replace(/^\$2[ab]\$/, '$2y$');
}

const BCRYPT_CHARS = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomChars(n: number, alphabet: string): string {
  const bytes = randomBytes(n);
  let out = '';
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

/**
 * An entry that matches no password but costs about as much to check as the
 * file's typical entry, used for unknown users so that timing does not reveal
 * which user names exist.
 */
export function makeDummy(users: Map<string, HtpasswdEntry>): HtpasswdEntry {
  const kinds = new Map<HashKind, number>();
  const costs = new Map<string, number>();
  for (const e of users.values()) {
    kinds.set(e.kind, (kinds.get(e.kind) ?? 0) + 1);
    if (e.kind === 'bcrypt') {
      const c = e.hash.slice(4, 6);
      costs.set(c, (costs.get(c) ?? 0) + 1);
    }
  }
  const mostCommon = <K>(m: Map<K, number>, fallback: K): K => {
    let best = fallback;
    let n = 0;
    for (const [k, v] of m) if (v > n) [best, n] = [k, v];
    return best;
  };
  const kind = mostCommon<HashKind>(kinds, 'bcrypt');
  const secret = randomBytes(24).toString('base64');
  let hash: string;
  if (kind === 'apr1') hash = apr1(secret, randomChars(8, ITOA64));
  else if (kind === 'sha1') hash = sha1Hash(secret);
  else hash = `$2y$${mostCommon(costs, '10')}$${randomChars(53, BCRYPT_CHARS)}`;
  return { user: '', hash, kind, line: 0 };
}
