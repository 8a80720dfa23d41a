/**
 * Apache htpasswd files: parsing, verification, editing and a live-reloading
 * password file for the server.
 *
 * Supported hashes (the ones Apache's `htpasswd` produces and that can be
 * verified portably): bcrypt (`$2y$`, `$2a$`, `$2b$`), APR1-MD5 (`$apr1$`) and
 * unsalted SHA-1 (`{SHA}`). Everything else (crypt(3) DES, plaintext, `$1$`,
 * `$5$`, `$6$`, `{SSHA}`, ...) is rejected at load time with a message that
 * names the file, line and user but never the hash.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { type Stats, unwatchFile, watchFile } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import { bcryptCompare } from './bcrypt-pool.js';

export type HashKind = 'bcrypt' | 'apr1' | 'sha1';

export interface HtpasswdEntry {
  user: string;
  hash: string;
  kind: HashKind;
  /** 1-based line number in the file. */
  line: number;
}

export class HtpasswdError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly line: number,
  ) {
    super(message);
    this.name = 'HtpasswdError';
  }
}

const ADVICE = 'use bcrypt (htpasswd -B or pypi-lite passwd)';

/** Passwords longer than this never verify (bounds the APR1 work per request). */
export const MAX_PASSWORD_LENGTH = 1024;

const MAX_USERNAME_LENGTH = 255;

const BCRYPT_RE = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
const APR1_RE = /^\$apr1\$([^$:]{0,8})\$[./0-9A-Za-z]{22}$/;
const SHA1_RE = /^\{SHA\}[A-Za-z0-9+/]{27}=$/;
const APR1_SALT_RE = /^[\x21-\x7e]*$/;

/** A user name that can be stored in an htpasswd file and typed in Basic auth. */
export function isValidUsername(user: string): boolean {
  if (typeof user !== 'string' || user.length === 0) return false;
  // Lines starting with '#' are comments, so such a user could never be read back.
  if (user.startsWith('#')) return false;
  if (/[:\s\p{Cc}\p{Cs}]/u.test(user)) return false;
  return [...user].length <= MAX_USERNAME_LENGTH;
}

/** Classify a hash; returns the kind, or a description of why it is unusable (never containing the hash). */
function classifyHash(hash: string): { kind: HashKind } | { problem: string } {
  if (hash.length === 0) return { problem: `missing password hash; ${ADVICE}` };
  if (hash.startsWith('$2')) {
    const m = BCRYPT_RE.exec(hash);
    if (!m) return { problem: `malformed or unsupported bcrypt hash; ${ADVICE}` };
    const cost = Number(m[1]);
    if (cost < 4 || cost > 31) return { problem: `bcrypt cost ${cost} out of range (4-31); ${ADVICE}` };
    return { kind: 'bcrypt' };
  }
  if (hash.startsWith('$apr1$')) {
    return APR1_RE.test(hash) ? { kind: 'apr1' } : { problem: `malformed APR1-MD5 hash; ${ADVICE}` };
  }
  if (hash.startsWith('{SHA}')) {
    return SHA1_RE.test(hash) ? { kind: 'sha1' } : { problem: `malformed {SHA} hash; ${ADVICE}` };
  }
  if (hash.startsWith('{SSHA}')) return { problem: `unsupported password hash ({SSHA} salted SHA-1); ${ADVICE}` };
  if (hash.startsWith('$1$')) return { problem: `unsupported password hash (MD5-crypt $1$); ${ADVICE}` };
  if (hash.startsWith('$5$')) return { problem: `unsupported password hash (SHA-256 crypt $5$); ${ADVICE}` };
  if (hash.startsWith('$6$')) return { problem: `unsupported password hash (SHA-512 crypt $6$); ${ADVICE}` };
  if (/^\$[^$]+\$/.test(hash)) return { problem: `unsupported password hash (unknown crypt scheme); ${ADVICE}` };
  return { problem: `unsupported password hash (crypt(3) DES or plaintext); ${ADVICE}` };
}

/**
 * Split a raw line into its user and hash fields, or null for blank lines,
 * comments and lines without ':'. Like Apache, surrounding whitespace is
 * ignored and only the field after the user is the hash (extra ':' fields are
 * ignored).
 */
function splitLine(raw: string): { user: string; hash: string } | null | 'malformed' {
  const line = raw.trim();
  if (line === '' || line.startsWith('#')) return null;
  const colon = line.indexOf(':');
  if (colon < 0) return 'malformed';
  const rest = line.slice(colon + 1);
  const end = rest.indexOf(':');
  return { user: line.slice(0, colon), hash: end < 0 ? rest : rest.slice(0, end) };
}

/**
 * Parse an htpasswd file's text, collecting a problem per unusable line instead of stopping:
 * `users` holds only the entries that can be used. A user with a duplicate entry is left out
 * altogether (which of the two lines was meant is unknown).
 */
export function parseHtpasswdLines(text: string, file: string): { users: Map<string, HtpasswdEntry>; problems: HtpasswdError[] } {
  const users = new Map<string, HtpasswdEntry>();
  const problems: HtpasswdError[] = [];
  const duplicated = new Set<string>();
  // String.prototype.trim also removes a UTF-8 BOM (U+FEFF) at the start of the first line.
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const problem = (what: string): void => {
      problems.push(new HtpasswdError(`${file}:${lineNo}: ${what}`, file, lineNo));
    };
    const fields = splitLine(lines[i]);
    if (fields === null) continue;
    if (fields === 'malformed') {
      problem('malformed line (expected "user:hash")');
      continue;
    }
    const { user, hash } = fields;
    if (user === '') {
      problem('malformed line (empty user name)');
      continue;
    }
    if (!isValidUsername(user)) {
      problem(`invalid user name ${JSON.stringify(user)} (no whitespace, control characters or ':', at most ${MAX_USERNAME_LENGTH} characters)`);
      continue;
    }
    const who = `user ${JSON.stringify(user)}`;
    const previous = users.get(user);
    if (previous || duplicated.has(user)) {
      problem(`${who}: duplicate entry${previous ? ` (first defined on line ${previous.line})` : ''}`);
      users.delete(user);
      duplicated.add(user);
      continue;
    }
    const c = classifyHash(hash);
    if ('problem' in c) problem(`${who}: ${c.problem}`);
    else users.set(user, { user, hash, kind: c.kind, line: lineNo });
  }
  return { users, problems };
}

/**
 * Parse an htpasswd file's text. Throws HtpasswdError (with `file:line:` in the
 * message) on the first line that cannot be used.
 */
export function parseHtpasswd(text: string, file: string): Map<string, HtpasswdEntry> {
  const { users, problems } = parseHtpasswdLines(text, file);
  if (problems.length > 0) throw problems[0];
  return users;
}

// ---------------------------------------------------------------------------
// Hashing and verification

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
  const hash = await bcrypt.hash(password, rounds);
  return hash.replace(/^\$2[ab]\$/, '$2y$');
}

// ---------------------------------------------------------------------------
// Editing

function lineUser(raw: string): string | null {
  const f = splitLine(raw);
  return f === null || f === 'malformed' ? null : f.user;
}

/**
 * Set `user`'s hash: replaces the user's first line (dropping any duplicate
 * lines for that user) or appends a new line. Comments, other users, line
 * order and line endings are preserved.
 */
export function setUser(text: string, user: string, hash: string): string {
  if (!isValidUsername(user)) throw new Error(`invalid user name ${JSON.stringify(user)}`);
  if ('problem' in classifyHash(hash)) {
    throw new Error(`refusing to store an unsupported or malformed password hash for user ${JSON.stringify(user)}`);
  }
  const entry = `${user}:${hash}`;
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const lines = text.split('\n');
  let replaced = false;
  const out: string[] = [];
  for (const raw of lines) {
    if (lineUser(raw) === user) {
      if (replaced) continue;
      replaced = true;
      out.push(raw.endsWith('\r') ? entry + '\r' : entry);
    } else {
      out.push(raw);
    }
  }
  if (replaced) return out.join('\n');
  if (text === '') return entry + '\n';
  if (text.endsWith('\n')) return text + entry + eol;
  return text + eol + entry + eol;
}

/** Remove every line for `user`. */
export function deleteUser(text: string, user: string): { text: string; found: boolean } {
  const lines = text.split('\n');
  const kept = lines.filter((raw) => lineUser(raw) !== user);
  const found = kept.length !== lines.length;
  return { text: found ? kept.join('\n') : text, found };
}

// ---------------------------------------------------------------------------
// Live password file

const MEMO_TTL_MS = 5 * 60_000;
const MEMO_MAX = 1000;
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
function makeDummy(users: Map<string, HtpasswdEntry>): HtpasswdEntry {
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

interface FileId {
  ino: number;
  dev: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

function fileId(s: Stats): FileId {
  return { ino: s.ino, dev: s.dev, size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs };
}

function sameFile(a: FileId, b: FileId): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

/** One error for the unusable lines of a reload (the first few named, each with its line). */
function summarize(problems: HtpasswdError[]): HtpasswdError {
  const shown = problems.slice(0, 5).map((p) => p.message);
  const more = problems.length > shown.length ? `; and ${problems.length - shown.length} more` : '';
  const first = problems[0];
  return new HtpasswdError(`${problems.length} unusable line(s) ignored: ${shown.join('; ')}${more}`, first.file, first.line);
}

export interface PasswordFileOptions {
  onReload?: (users: number) => void;
  onError?: (err: Error) => void;
  /** Polling interval of watch(), default 500 ms. */
  pollIntervalMs?: number;
}

/**
 * An htpasswd file kept in memory, optionally re-read when it changes
 * (polling with fs.watchFile, which also notices editors that replace the file
 * by rename). load() (at startup) refuses a file with an unusable line. A reload never
 * keeps a user the new file no longer grants: the lines that can be used replace the
 * previous users and the others are reported through onError (then onReload follows);
 * a file that cannot be read lets nobody in until it can be read again (onError).
 */
export class PasswordFile {
  private users = new Map<string, HtpasswdEntry>();
  private dummy: HtpasswdEntry = makeDummy(this.users);
  private generation = 0;
  private readonly memoKey = randomBytes(32);
  /** HMAC(user NUL password) -> expiry time, for successful checks only. */
  private memo = new Map<string, number>();
  /** In-flight checks, so concurrent requests with the same credentials share one bcrypt. */
  private pending = new Map<string, Promise<boolean>>();
  private loadedId: FileId | null = null;
  private listener: ((curr: Stats, prev: Stats) => void) | null = null;
  private reloadChain: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    readonly path: string,
    private readonly opts: PasswordFileOptions = {},
  ) {}

  /** Read and parse the file; throws HtpasswdError (first unusable line) or the fs error. */
  async load(): Promise<void> {
    const { text, id } = await this.read();
    const users = parseHtpasswd(text, this.path);
    this.apply(users, id);
  }

  private async read(): Promise<{ text: string; id: FileId }> {
    const fh = await open(this.path, 'r');
    try {
      const id = fileId(await fh.stat());
      return { text: await fh.readFile('utf8'), id };
    } finally {
      await fh.close();
    }
  }

  private apply(users: Map<string, HtpasswdEntry>, id: FileId | null): void {
    if (this.closed) return;
    this.users = users;
    this.dummy = makeDummy(users);
    this.loadedId = id;
    this.generation++;
    this.memo.clear();
    this.pending.clear();
  }

  /**
   * Re-read after a change: apply the usable lines and return the problems of the others.
   * When the file cannot be read, nobody is let in (a deleted file revokes every user) and the
   * fs error is thrown.
   */
  private async reload(): Promise<HtpasswdError[]> {
    let read: { text: string; id: FileId };
    try {
      read = await this.read();
    } catch (err) {
      this.apply(new Map(), null);
      throw err;
    }
    const { users, problems } = parseHtpasswdLines(read.text, this.path);
    this.apply(users, read.id);
    return problems;
  }

  /** Start re-reading the file whenever it changes. */
  watch(): void {
    if (this.listener || this.closed) return;
    this.listener = () => this.scheduleReload();
    watchFile(this.path, { interval: this.opts.pollIntervalMs ?? 500, persistent: false }, this.listener);
    // Catch a change made between load() and watch().
    const loaded = this.loadedId;
    stat(this.path).then(
      (s) => {
        if (!loaded || !sameFile(loaded, fileId(s))) this.scheduleReload();
      },
      () => this.scheduleReload(),
    );
  }

  close(): void {
    this.closed = true;
    if (this.listener) {
      unwatchFile(this.path, this.listener);
      this.listener = null;
    }
    this.memo.clear();
    this.pending.clear();
  }

  get size(): number {
    return this.users.size;
  }

  private scheduleReload(): void {
    this.reloadChain = this.reloadChain.then(async () => {
      if (this.closed) return;
      try {
        const problems = await this.reload();
        if (this.closed) return;
        if (problems.length > 0) this.opts.onError?.(summarize(problems));
        this.opts.onReload?.(this.users.size);
      } catch (err) {
        if (!this.closed) this.opts.onError?.(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** True only for a known user with the right password. */
  async verify(user: string, password: string): Promise<boolean> {
    if (typeof user !== 'string' || typeof password !== 'string' || password.length > MAX_PASSWORD_LENGTH) {
      return false;
    }
    const entry = this.users.get(user);
    if (!entry) {
      await verifyPassword(this.dummy, password);
      return false;
    }
    const key = createHmac('sha256', this.memoKey).update(user).update('\0').update(password).digest('base64');
    const now = Date.now();
    const expires = this.memo.get(key);
    if (expires !== undefined) {
      if (expires > now) return true;
      this.memo.delete(key);
    }
    const inFlight = this.pending.get(key);
    if (inFlight) return inFlight;

    const generation = this.generation;
    const check = verifyPassword(entry, password).finally(() => {
      if (this.pending.get(key) === check) this.pending.delete(key);
    });
    this.pending.set(key, check);
    const ok = await check;
    if (ok && generation === this.generation && !this.closed) this.remember(key, Date.now() + MEMO_TTL_MS);
    return ok;
  }

  private remember(key: string, expires: number): void {
    this.memo.delete(key);
    while (this.memo.size >= MEMO_MAX) {
      const oldest = this.memo.keys().next();
      if (oldest.done) break;
      this.memo.delete(oldest.value);
    }
    this.memo.set(key, expires);
  }
}
