/**
 * The Apache htpasswd file format: lines of `user:hash`, which hashes are usable, and
 * parsing a file's text into users (collecting a problem per unusable line). Hashing and
 * verification are in hashes.ts, editing in htpasswd-edit.ts, the live file the server
 * checks passwords against in password-file.ts.
 *
 * Supported hashes (the ones Apache's `htpasswd` produces and that can be
 * verified portably): bcrypt (`$2y$`, `$2a$`, `$2b$`), APR1-MD5 (`$apr1$`) and
 * unsalted SHA-1 (`{SHA}`). Everything else (crypt(3) DES, plaintext, `$1$`,
 * `$5$`, `$6$`, `{SSHA}`, ...) is rejected at load time with a message that
 * names the file, line and user but never the hash.
 */

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

const MAX_USERNAME_LENGTH = 255;

const BCRYPT_RE = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
export const APR1_RE = /^\$apr1\$([^$:]{0,8})\$[./0-9A-Za-z]{22}$/;
const SHA1_RE = /^\{SHA\}[A-Za-z0-9+/]{27}=$/;
export const APR1_SALT_RE = /^[\x21-\x7e]*$/;

/** A user name that can be stored in an htpasswd file and typed in Basic auth. */
export function isValidUsername(user: string): boolean {
  if (typeof user !== 'string' || user.length === 0) return false;
  // Lines starting with '#' are comments, so such a user could never be read back.
  if (user.startsWith('#')) return false;
  if (/[:\s\p{Cc}\p{Cs}]/u.test(user)) return false;
  return [...user].length <= MAX_USERNAME_LENGTH;
}

/** Classify a hash; returns the kind, or a description of why it is unusable (never containing the hash). */
export function classifyHash(hash: string): { kind: HashKind } | { problem: string } {
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
export function splitLine(raw: string): { user: string; hash: string } | null | 'malformed' {
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
