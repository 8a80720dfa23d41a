// The live password file the server checks credentials against: loaded at startup (refusing
// an unusable line), re-read when it changes (polling, which also sees editors that replace
// the file by rename), failing closed: a reload keeps no user the new file no longer grants,
// and a file that cannot be read lets nobody in until it can be read again.

import { createHmac, randomBytes } from 'node:crypto';
import { type Stats, unwatchFile, watchFile } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Authenticator } from './authenticator.js';
import { makeDummy, MAX_PASSWORD_LENGTH, verifyPassword } from './hashes.js';
import { HtpasswdError, parseHtpasswd, parseHtpasswdLines, type HtpasswdEntry } from './htpasswd.js';

const MEMO_TTL_MS = 5 * 60_000;
const MEMO_MAX = 1000;

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
  /** Reloads (info) and problems (error) are logged here. */
  log: Logger;
  /** Polling interval of watch(), default 500 ms. */
  pollIntervalMs?: number;
}

/**
 * An htpasswd file kept in memory, optionally re-read when it changes
 * (polling with fs.watchFile, which also notices editors that replace the file
 * by rename). load() (at startup) refuses a file with an unusable line. A reload never
 * keeps a user the new file no longer grants: the lines that can be used replace the
 * previous users and the others are logged (an error, then the reload itself as info);
 * a file that cannot be read lets nobody in until it can be read again (an error).
 */
export class PasswordFile implements Authenticator {
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
    private readonly opts: PasswordFileOptions,
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
        if (problems.length > 0) {
          this.opts.log.error({ err: summarize(problems).message }, 'password file reloaded WITHOUT its unusable lines: fix them (those users cannot log in)');
        }
        this.opts.log.info({ users: this.users.size }, 'password file reloaded');
      } catch (err) {
        if (!this.closed) {
          this.opts.log.error({ err: err instanceof Error ? err.message : String(err) }, 'password file cannot be read: nobody can log in until it can be read again');
        }
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
