import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { mkdtemp, rename, rm, writeFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { apr1, hashPassword, verifyPassword } from '../lib/auth/hashes.js';
import { deleteUser, setUser } from '../lib/auth/htpasswd-edit.js';
import { HtpasswdError, isValidUsername, parseHtpasswd, type HtpasswdEntry } from '../lib/auth/htpasswd.js';
import { PasswordFile } from '../lib/auth/password-file.js';

// Generated with `openssl passwd -apr1 -salt SALT PASSWORD` (OpenSSL 3.0.19).
const APR1_VECTORS: Array<{ salt: string; password: string; hash: string }> = [
  { salt: 'saltsalt', password: 'password', hash: '$apr1$saltsalt$yAAkm4libquA.ZWLHbSBq/' },
  { salt: '8ch/salt', password: 'correct horse', hash: '$apr1$8ch/salt$242D84EEzEL/Ye4/IWt12.' },
  { salt: 'ab', password: 'pw', hash: '$apr1$ab$RieuZkC7MNZo71UI4mVva0' },
  { salt: 'x.Y/z9', password: 'p@ss:w0rd é', hash: '$apr1$x.Y/z9$h7iCKMiUhfKZslqQp98B80' },
  { salt: 'abcdefgh', password: '', hash: '$apr1$abcdefgh$L.PT565ESX4Tp2bqNs7Ie.' },
  {
    salt: '12345678',
    password: 'averyveryveryveryverylongpasswordthatislongerthansixteenbytes',
    hash: '$apr1$12345678$HZR65vmAQyMI5cE9.L9he1',
  },
];
// openssl truncates the salt to 8 characters, like Apache.
const APR1_LONG_SALT = { salt: '123456789abc', password: 'pw', hash: '$apr1$12345678$A8zrX.CLhuutTWymwJp2a.' };

// `printf PASSWORD | openssl dgst -sha1 -binary | base64`
const SHA_SECRET = '{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=';
const SHA_HUNTER2 = '{SHA}87u9ZqY9S/F0eUBXjsPQEDUw4h0=';

// Openwall crypt_blowfish test vector ("U*U"), plus cost-4 hashes of "pw-2y", "pw-2a", "pw-2b".
const BCRYPT_OPENWALL = '$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW';
const BCRYPT_2Y = '$2y$04$GYRlWoO2GvnoMR3WsdV32eEEd6c/Srew7wpJnuCsvtVrKnLIwwaiS';
const BCRYPT_2A = '$2a$04$w7LNTzQhOyj2iAYqDbS.1.DbO5wn3Wi2c2zzwQzTv7zf95pl/XNkS';
// bcryptjs, cost 13, password "old".
const BCRYPT_OLD_COST13 = '$2y$13$.c4I5k4H3obO9P0tW5MnrOEazEFYgza6aYPuUCVPxJ6OXqEmNpPfm';
const BCRYPT_2B = '$2b$04$MnCe4KKtD/iCwogXLWwdjOcbVDrPqzUac5NCgU1r5Yop4oDM6NkCW';

// Unsupported hashes (openssl passwd -6/-5/-1 -salt saltsalt secret).
const SHA512_CRYPT = '$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1';
const SHA256_CRYPT = '$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA';
const MD5_CRYPT = '$1$saltsalt$9xy1btjgzLYfb7hivXtC//';
const DES_CRYPT = 'abJnggxhB/yWI';

const SAMPLE = [
  '# pypi-lite users',
  '',
  `alice:${BCRYPT_2Y}`,
  `bob:${BCRYPT_2A}`,
  '   # indented comment',
  `carol:${BCRYPT_2B}`,
  `dave:${APR1_VECTORS[1].hash}`,
  `erin:${SHA_SECRET}`,
  `frank:${BCRYPT_OPENWALL}`,
  '',
].join('\n');

function entry(hash: string, kind: HtpasswdEntry['kind']): HtpasswdEntry {
  return { user: 'u', hash, kind, line: 1 };
}

function parseError(text: string): HtpasswdError {
  try {
    parseHtpasswd(text, '/etc/pypi/htpasswd');
  } catch (err) {
    expect(err).to.be.instanceOf(HtpasswdError);
    return err as HtpasswdError;
  }
  expect.fail('parseHtpasswd did not throw');
}

describe('htpasswd', () => {
  describe('parseHtpasswd', () => {
    it('parses bcrypt ($2y$, $2a$, $2b$), apr1 and {SHA} entries, skipping comments and blank lines', () => {
      const users = parseHtpasswd(SAMPLE, 'users.htpasswd');
      expect([...users.keys()]).to.deep.equal(['alice', 'bob', 'carol', 'dave', 'erin', 'frank']);
      expect(users.get('alice')).to.deep.equal({ user: 'alice', hash: BCRYPT_2Y, kind: 'bcrypt', line: 3 });
      expect(users.get('bob')?.kind).to.equal('bcrypt');
      expect(users.get('carol')).to.include({ kind: 'bcrypt', line: 6 });
      expect(users.get('dave')).to.include({ kind: 'apr1', line: 7, hash: APR1_VECTORS[1].hash });
      expect(users.get('erin')).to.include({ kind: 'sha1', line: 8, hash: SHA_SECRET });
    });

    it('accepts CRLF line endings, trailing whitespace and a UTF-8 BOM', () => {
      const users = parseHtpasswd(`\ufeffalice:${BCRYPT_2Y}  \r\n#c\r\nerin:${SHA_SECRET}\r\n`, 'f');
      expect(users.get('alice')?.hash).to.equal(BCRYPT_2Y);
      expect(users.get('erin')).to.include({ hash: SHA_SECRET, line: 3 });
    });

    const unsupported: Array<[string, string, RegExp]> = [
      ['crypt(3) DES', DES_CRYPT, /unsupported password hash \(crypt\(3\) DES or plaintext\); use bcrypt \(htpasswd -B or pypi-lite passwd\)/],
      ['plaintext', 'hunter2', /unsupported password hash \(crypt\(3\) DES or plaintext\)/],
      ['SHA-512 crypt', SHA512_CRYPT, /SHA-512 crypt/],
      ['SHA-256 crypt', SHA256_CRYPT, /SHA-256 crypt/],
      ['MD5-crypt $1$', MD5_CRYPT, /MD5-crypt/],
      ['{SSHA}', '{SSHA}c2VjcmV0c2FsdHNhbHRzYWx0c2FsdA==', /SSHA/],
      ['malformed bcrypt', BCRYPT_2Y.slice(0, -3), /malformed or unsupported bcrypt/],
      ['$2x$ bcrypt', BCRYPT_2Y.replace('$2y$', '$2x$'), /bcrypt/],
      ['bcrypt cost out of range', BCRYPT_2Y.replace('$04$', '$03$'), /cost 3 out of range/],
      ['malformed apr1', APR1_VECTORS[0].hash.slice(0, -1), /malformed APR1-MD5/],
      ['malformed {SHA}', SHA_SECRET.slice(0, -2), /malformed \{SHA\}/],
      ['empty hash', '', /missing password hash/],
    ];
    for (const [name, hash, pattern] of unsupported) {
      it(`rejects ${name} with file, line and user but without the hash`, () => {
        const text = `# header\nalice:${BCRYPT_2Y}\n\nbob:${hash}\ncarol:${SHA_SECRET}\n`;
        const err = parseError(text);
        expect(err.file).to.equal('/etc/pypi/htpasswd');
        expect(err.line).to.equal(4);
        expect(err.message).to.match(/^\/etc\/pypi\/htpasswd:4: user "bob": /);
        expect(err.message).to.match(pattern);
        if (hash !== '') expect(err.message).to.not.include(hash);
        // Not even a fragment of the hash.
        if (hash.length > 8) expect(err.message).to.not.include(hash.slice(-8));
      });
    }

    it('rejects malformed lines without echoing them', () => {
      const noColon = parseError(`alice:${BCRYPT_2Y}\nmysecretpassword\n`);
      expect(noColon.line).to.equal(2);
      expect(noColon.message).to.equal('/etc/pypi/htpasswd:2: malformed line (expected "user:hash")');

      const emptyUser = parseError(`\n\n:${BCRYPT_2Y}\n`);
      expect(emptyUser.line).to.equal(3);
      expect(emptyUser.message).to.match(/^\/etc\/pypi\/htpasswd:3: malformed line \(empty user name\)$/);
      expect(emptyUser.message).to.not.include(BCRYPT_2Y);

      const badUser = parseError(`al ice:${BCRYPT_2Y}\n`);
      expect(badUser.message).to.match(/:1: invalid user name "al ice"/);
    });

    it('rejects duplicate users', () => {
      const err = parseError(`alice:${BCRYPT_2Y}\nbob:${SHA_SECRET}\nalice:${BCRYPT_2A}\n`);
      expect(err.line).to.equal(3);
      expect(err.message).to.match(/user "alice": duplicate entry \(first defined on line 1\)/);
      expect(err.message).to.not.include(BCRYPT_2A);
    });
  });

  describe('verifyPassword', () => {
    it('verifies bcrypt $2y$, $2a$ and $2b$ hashes', async () => {
      const users = parseHtpasswd(SAMPLE, 'f');
      expect(await verifyPassword(users.get('alice')!, 'pw-2y')).to.equal(true);
      expect(await verifyPassword(users.get('alice')!, 'pw-2a')).to.equal(false);
      expect(await verifyPassword(users.get('bob')!, 'pw-2a')).to.equal(true);
      expect(await verifyPassword(users.get('bob')!, 'pw-2A')).to.equal(false);
      expect(await verifyPassword(users.get('carol')!, 'pw-2b')).to.equal(true);
      expect(await verifyPassword(users.get('carol')!, '')).to.equal(false);
      expect(await verifyPassword(users.get('frank')!, 'U*U')).to.equal(true);
      expect(await verifyPassword(users.get('frank')!, 'U*V')).to.equal(false);
    });

    it('verifies apr1 hashes', async () => {
      for (const v of APR1_VECTORS) {
        expect(await verifyPassword(entry(v.hash, 'apr1'), v.password), v.hash).to.equal(true);
        expect(await verifyPassword(entry(v.hash, 'apr1'), v.password + 'x'), v.hash).to.equal(false);
      }
      expect(await verifyPassword(entry(APR1_VECTORS[0].hash, 'apr1'), 'Password')).to.equal(false);
    });

    it('verifies {SHA} hashes', async () => {
      expect(await verifyPassword(entry(SHA_SECRET, 'sha1'), 'secret')).to.equal(true);
      expect(await verifyPassword(entry(SHA_SECRET, 'sha1'), 'secret ')).to.equal(false);
      expect(await verifyPassword(entry(SHA_HUNTER2, 'sha1'), 'hunter2')).to.equal(true);
      expect(await verifyPassword(entry(SHA_HUNTER2, 'sha1'), 'secret')).to.equal(false);
    });

    it('never accepts over-long passwords', async () => {
      const long = 'a'.repeat(5000);
      expect(await verifyPassword(entry(await hashPassword(long.slice(0, 1000), 4), 'bcrypt'), long)).to.equal(false);
      const sha = '{SHA}' + createHash('sha1').update(long).digest('base64');
      expect(await verifyPassword(entry(sha, 'sha1'), long)).to.equal(false);
      expect(await verifyPassword(entry(apr1(long, 'saltsalt'), 'apr1'), long)).to.equal(false);
      // Just below the limit still works.
      const ok = 'b'.repeat(1024);
      expect(await verifyPassword(entry('{SHA}' + createHash('sha1').update(ok).digest('base64'), 'sha1'), ok)).to.equal(true);
    });
  });

  describe('apr1', () => {
    it('matches openssl passwd -apr1', () => {
      for (const v of APR1_VECTORS) expect(apr1(v.password, v.salt)).to.equal(v.hash);
    });

    it('truncates the salt to 8 characters like openssl and Apache', () => {
      expect(apr1(APR1_LONG_SALT.password, APR1_LONG_SALT.salt)).to.equal(APR1_LONG_SALT.hash);
    });

    it('rejects salts that cannot be stored', () => {
      expect(() => apr1('pw', 'a$b')).to.throw(RangeError);
      expect(() => apr1('pw', 'a:b')).to.throw(RangeError);
      expect(() => apr1('pw', 'sé')).to.throw(RangeError);
    });
  });

  describe('hashPassword', () => {
    it('produces verifiable $2y$ bcrypt hashes with the given cost', async () => {
      const hash = await hashPassword('s3cret', 4);
      expect(hash).to.match(/^\$2y\$04\$[./A-Za-z0-9]{53}$/);
      const e = parseHtpasswd(`u:${hash}\n`, 'f').get('u')!;
      expect(e.kind).to.equal('bcrypt');
      expect(await verifyPassword(e, 's3cret')).to.equal(true);
      expect(await verifyPassword(e, 's3creT')).to.equal(false);
    });

    it('defaults to cost 10 and validates the cost', async () => {
      expect(await hashPassword('x')).to.match(/^\$2y\$10\$/);
      let error: unknown;
      try {
        await hashPassword('x', 3);
      } catch (err) {
        error = err;
      }
      expect(error).to.be.instanceOf(RangeError);
    });
  });

  describe('isValidUsername', () => {
    it('accepts ordinary names', () => {
      for (const u of ['alice', 'ci-bot', 'deploy@example.com', 'Jürgen', 'a'.repeat(255)]) {
        expect(isValidUsername(u), u).to.equal(true);
      }
    });
    it('rejects empty, ":", whitespace, control characters, comment-like and over-long names', () => {
      for (const u of ['', 'a:b', 'a b', 'a\tb', 'a\nb', 'a\u0000b', 'a\u007fb', '\u00a0x', '#alice', 'a'.repeat(256)]) {
        expect(isValidUsername(u), JSON.stringify(u)).to.equal(false);
      }
    });
  });

  describe('setUser / deleteUser', () => {
    it('replaces an existing user in place, preserving comments and order', () => {
      const out = setUser(SAMPLE, 'bob', SHA_HUNTER2);
      const before = SAMPLE.split('\n');
      const after = out.split('\n');
      expect(after).to.have.length(before.length);
      expect(after[3]).to.equal(`bob:${SHA_HUNTER2}`);
      expect(after.filter((_, i) => i !== 3)).to.deep.equal(before.filter((_, i) => i !== 3));
      const users = parseHtpasswd(out, 'f');
      expect(users.get('bob')).to.include({ hash: SHA_HUNTER2, kind: 'sha1', line: 4 });
      expect(users.get('alice')?.hash).to.equal(BCRYPT_2Y);
    });

    it('appends new users, handling a missing final newline and CRLF files', () => {
      expect(setUser('', 'zed', SHA_SECRET)).to.equal(`zed:${SHA_SECRET}\n`);
      expect(setUser(SAMPLE, 'zed', SHA_SECRET)).to.equal(`${SAMPLE}zed:${SHA_SECRET}\n`);
      expect(setUser('# c\nalice:' + SHA_SECRET, 'zed', SHA_HUNTER2)).to.equal(`# c\nalice:${SHA_SECRET}\nzed:${SHA_HUNTER2}\n`);
      const crlf = `# c\r\nalice:${SHA_SECRET}\r\n`;
      expect(setUser(crlf, 'zed', SHA_HUNTER2)).to.equal(`${crlf}zed:${SHA_HUNTER2}\r\n`);
      expect(setUser(crlf, 'alice', SHA_HUNTER2)).to.equal(`# c\r\nalice:${SHA_HUNTER2}\r\n`);
    });

    it('does not treat comments or other users with a common prefix as the user', () => {
      const text = `#alice:${SHA_SECRET}\nalice2:${SHA_SECRET}\n`;
      const out = setUser(text, 'alice', SHA_HUNTER2);
      expect(out).to.equal(`${text}alice:${SHA_HUNTER2}\n`);
      expect(deleteUser(text, 'alice')).to.deep.equal({ text, found: false });
    });

    it('collapses duplicate lines for the user being set', () => {
      const text = `alice:${SHA_SECRET}\nbob:${SHA_SECRET}\nalice:hunter2\n`;
      expect(setUser(text, 'alice', SHA_HUNTER2)).to.equal(`alice:${SHA_HUNTER2}\nbob:${SHA_SECRET}\n`);
    });

    it('refuses invalid users and unsupported hashes', () => {
      expect(() => setUser('', 'a b', SHA_SECRET)).to.throw(/invalid user name/);
      expect(() => setUser('', 'alice', 'plaintext')).to.throw(/unsupported/);
      expect(() => setUser('', 'alice', `${SHA_SECRET}\nroot:${SHA_SECRET}`)).to.throw(/unsupported/);
    });

    it('round-trips: set then delete restores the original text', () => {
      const added = setUser(SAMPLE, 'zed', SHA_SECRET);
      const removed = deleteUser(added, 'zed');
      expect(removed).to.deep.equal({ text: SAMPLE, found: true });

      const withoutDave = deleteUser(SAMPLE, 'dave');
      expect(withoutDave.found).to.equal(true);
      expect(withoutDave.text).to.equal(SAMPLE.replace(`dave:${APR1_VECTORS[1].hash}\n`, ''));
      expect([...parseHtpasswd(withoutDave.text, 'f').keys()]).to.deep.equal(['alice', 'bob', 'carol', 'erin', 'frank']);
      expect(deleteUser(withoutDave.text, 'dave')).to.deep.equal({ text: withoutDave.text, found: false });
    });
  });

  describe('PasswordFile', () => {
    const UNUSABLE_LINES = 'password file reloaded WITHOUT its unusable lines: fix them (those users cannot log in)';
    const UNREADABLE = 'password file cannot be read: nobody can log in until it can be read again';
    let dir: string;
    let file: string;
    let pf: PasswordFile | undefined;
    /** What the password file logged: reloads (info) and problems (error, with their message). */
    let events: Array<{ type: 'reload'; users: number } | { type: 'error'; msg: string; err: string }>;
    let wake: (() => void) | undefined;

    function open(): PasswordFile {
      const log = pino({ level: 'info' }, {
        write: (line: string): void => {
          const rec = JSON.parse(line) as { level: number; msg: string; users?: number; err?: string };
          if (rec.level >= 50) events.push({ type: 'error', msg: rec.msg, err: String(rec.err) });
          else if (rec.msg === 'password file reloaded') events.push({ type: 'reload', users: Number(rec.users) });
          wake?.();
        },
      });
      pf = new PasswordFile(file, { log, pollIntervalMs: 20 });
      return pf;
    }

    async function nextEvent(timeoutMs = 5000): Promise<(typeof events)[number]> {
      const deadline = Date.now() + timeoutMs;
      while (events.length === 0) {
        if (Date.now() > deadline) throw new Error('timed out waiting for a PasswordFile event');
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 50);
        });
      }
      return events.shift()!;
    }

    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'pypi-lite-htpasswd-'));
      file = join(dir, 'htpasswd');
      events = [];
      pf = undefined;
    });

    afterEach(async () => {
      pf?.close();
      await rm(dir, { recursive: true, force: true });
    });

    it('loads users and verifies passwords of each kind', async () => {
      await writeFile(file, SAMPLE);
      const p = open();
      await p.load();
      expect(p.size).to.equal(6);
      expect(await p.verify('alice', 'pw-2y')).to.equal(true);
      expect(await p.verify('alice', 'pw-2b')).to.equal(false);
      expect(await p.verify('dave', 'correct horse')).to.equal(true);
      expect(await p.verify('dave', 'correct horsE')).to.equal(false);
      expect(await p.verify('erin', 'secret')).to.equal(true);
      expect(await p.verify('erin', 'Secret')).to.equal(false);
    });

    it('returns false for unknown users, even with another user\'s password', async () => {
      await writeFile(file, SAMPLE);
      const p = open();
      await p.load();
      expect(await p.verify('mallory', 'pw-2y')).to.equal(false);
      expect(await p.verify('Alice', 'pw-2y')).to.equal(false);
      expect(await p.verify('', '')).to.equal(false);
    });

    it('makes unknown users pay for a dummy hash check', async () => {
      await writeFile(file, `alice:${await hashPassword('pw', 10)}\n`);
      const p = open();
      await p.load();
      const start = performance.now();
      expect(await p.verify('nobody', 'pw')).to.equal(false);
      // A cost-10 bcrypt takes tens of milliseconds even on fast hardware; a plain map miss takes microseconds.
      expect(performance.now() - start).to.be.greaterThan(10);
    });

    it('remembers successful checks but never accepts a wrong password after a right one', async () => {
      await writeFile(file, `alice:${await hashPassword('right', 10)}\n`);
      const p = open();
      await p.load();
      let t = performance.now();
      expect(await p.verify('alice', 'right')).to.equal(true);
      const first = performance.now() - t;
      t = performance.now();
      expect(await p.verify('alice', 'right')).to.equal(true);
      const second = performance.now() - t;
      expect(second).to.be.lessThan(first / 4);
      expect(await p.verify('alice', 'wrong')).to.equal(false);
      expect(await p.verify('alice', 'right\0')).to.equal(false);
      expect(await p.verify('alice', 'righ')).to.equal(false);
      expect(await p.verify('alice', '')).to.equal(false);
    });

    it('throws HtpasswdError on an invalid file and the fs error on a missing one', async () => {
      await writeFile(file, `alice:${DES_CRYPT}\n`);
      let error: unknown;
      try {
        await open().load();
      } catch (err) {
        error = err;
      }
      expect(error).to.be.instanceOf(HtpasswdError);
      expect((error as Error).message).to.equal(
        `${file}:1: user "alice": unsupported password hash (crypt(3) DES or plaintext); use bcrypt (htpasswd -B or pypi-lite passwd)`,
      );
      error = undefined;
      try {
        await new PasswordFile(join(dir, 'missing'), { log: pino({ level: 'silent' }) }).load();
      } catch (err) {
        error = err;
      }
      expect((error as NodeJS.ErrnoException).code).to.equal('ENOENT');
    });

    it('reloads when the file is rewritten, and forgets remembered passwords', async () => {
      await writeFile(file, `alice:${BCRYPT_2Y}\nbob:${SHA_SECRET}\n`);
      const p = open();
      await p.load();
      p.watch();
      expect(await p.verify('alice', 'pw-2y')).to.equal(true); // now memoised
      await writeFile(file, `alice:${BCRYPT_2B}\ncarol:${SHA_HUNTER2}\n# bob removed\n`);
      expect(await nextEvent()).to.deep.equal({ type: 'reload', users: 2 });
      expect(p.size).to.equal(2);
      expect(await p.verify('alice', 'pw-2y')).to.equal(false);
      expect(await p.verify('alice', 'pw-2b')).to.equal(true);
      expect(await p.verify('bob', 'secret')).to.equal(false);
      expect(await p.verify('carol', 'hunter2')).to.equal(true);
    });

    it('does not remember a check that was in flight while the file was reloaded', async () => {
      // Cost 13 (precomputed): bcryptjs works in ~100 ms slices, so the check is still running after load().
      await writeFile(file, `alice:${BCRYPT_OLD_COST13}\n`);
      const p = open();
      await p.load();
      let settled = false;
      const inFlight = p.verify('alice', 'old').finally(() => {
        settled = true;
      });
      await writeFile(file, `alice:${BCRYPT_2Y}\n`);
      await p.load();
      expect(settled, 'the race was not exercised').to.equal(false);
      expect(await inFlight).to.equal(true); // answered against the file as it was when the request arrived
      expect(await p.verify('alice', 'old')).to.equal(false);
      expect(await p.verify('alice', 'pw-2y')).to.equal(true);
    });

    it('shares one hash check between concurrent requests with the same credentials', async () => {
      await writeFile(file, `alice:${await hashPassword('right', 10)}\n`);
      const p = open();
      await p.load();
      let t = performance.now();
      expect(await p.verify('alice', 'wrong-1')).to.equal(false);
      const single = performance.now() - t;
      t = performance.now();
      const results = await Promise.all([1, 2, 3, 4].map(() => p.verify('alice', 'wrong-2')));
      const four = performance.now() - t;
      expect(results).to.deep.equal([false, false, false, false]);
      expect(four).to.be.lessThan(single * 2.5);
      // Failures are not remembered: the next attempt is checked again (and still fails).
      expect(await p.verify('alice', 'wrong-2')).to.equal(false);
    });

    it('reloads when an editor replaces the file by rename', async () => {
      await writeFile(file, `alice:${BCRYPT_2Y}\n`);
      const p = open();
      await p.load();
      p.watch();
      const tmp = join(dir, '.htpasswd.tmp');
      await writeFile(tmp, `alice:${BCRYPT_2Y}\nbob:${SHA_SECRET}\n`);
      await rename(tmp, file);
      expect(await nextEvent()).to.deep.equal({ type: 'reload', users: 2 });
      expect(await p.verify('bob', 'secret')).to.equal(true);

      // And the watch survives the rename: a second replacement is seen too.
      await writeFile(tmp, `bob:${SHA_HUNTER2}\n`);
      await rename(tmp, file);
      expect(await nextEvent()).to.deep.equal({ type: 'reload', users: 1 });
      expect(await p.verify('bob', 'hunter2')).to.equal(true);
      expect(await p.verify('alice', 'pw-2y')).to.equal(false);
    });

    it('on a reload with unusable lines, applies the usable ones: a removed user is out, the bad line is reported', async () => {
      // Regression (issue 9 item 4): the previous users used to stay, so a removed user stayed valid.
      await writeFile(file, `alice:${BCRYPT_2Y}\nbob:${SHA_SECRET}\n`);
      const p = open();
      await p.load();
      p.watch();
      expect(await p.verify('bob', 'secret')).to.equal(true);
      await writeFile(file, `alice:${BCRYPT_2Y}\ncarol:${SHA512_CRYPT}\n`);
      const ev = await nextEvent();
      expect(ev).to.include({ type: 'error', msg: UNUSABLE_LINES });
      const err = (ev as { err: string }).err;
      expect(err).to.match(/:2: user "carol": unsupported password hash/);
      expect(err).to.not.include(SHA512_CRYPT);
      expect(await nextEvent()).to.deep.equal({ type: 'reload', users: 1 });
      expect(p.size).to.equal(1);
      expect(await p.verify('bob', 'secret'), 'bob was removed').to.equal(false);
      expect(await p.verify('alice', 'pw-2y')).to.equal(true);
    });

    it('on a reload, a user with a duplicate entry and malformed lines are left out, the rest applies', async () => {
      await writeFile(file, `alice:${BCRYPT_2Y}\nbob:${SHA_SECRET}\n`);
      const p = open();
      await p.load();
      p.watch();
      await writeFile(file, `bob:${SHA_SECRET}\nno colon here\nalice:${BCRYPT_2Y}\nbob:${SHA_SECRET}\n`);
      const ev = await nextEvent();
      expect(ev).to.include({ type: 'error', msg: UNUSABLE_LINES });
      const msg = (ev as { err: string }).err;
      expect(msg).to.match(/^2 unusable line\(s\) ignored: /);
      expect(msg).to.include(':2: malformed line').and.to.include(':4: user "bob": duplicate entry');
      expect(await nextEvent()).to.deep.equal({ type: 'reload', users: 1 });
      expect(await p.verify('bob', 'secret')).to.equal(false);
      expect(await p.verify('alice', 'pw-2y')).to.equal(true);
    });

    it('lets nobody in while the file cannot be read, and everyone in the file again once it is back', async () => {
      await writeFile(file, `alice:${BCRYPT_2Y}\n`);
      const p = open();
      await p.load();
      p.watch();
      await unlink(file);
      const gone = await nextEvent();
      expect(gone).to.include({ type: 'error', msg: UNREADABLE });
      expect((gone as { err: string }).err).to.match(/^ENOENT: /);
      expect(p.size).to.equal(0);
      expect(await p.verify('alice', 'pw-2y')).to.equal(false);

      // in place at once (writeFile would show the poll an empty file first, a reload to 0 users)
      await writeFile(`${file}.new`, `bob:${SHA_SECRET}\n`);
      await rename(`${file}.new`, file);
      // The deletion may be reported twice (watch()'s own first stat and the poll can both see
      // it on a busy machine); what matters is the reload that follows the new file.
      let next = await nextEvent();
      while (next.type === 'error' && next.err.startsWith('ENOENT: ')) next = await nextEvent();
      expect(next).to.deep.equal({ type: 'reload', users: 1 });
      expect(await p.verify('bob', 'secret')).to.equal(true);
      expect(await p.verify('alice', 'pw-2y')).to.equal(false);
    });

    it('notices a change made between load() and watch()', async () => {
      await writeFile(file, `alice:${BCRYPT_2Y}\n`);
      const p = open();
      await p.load();
      await writeFile(file, `bob:${SHA_SECRET}\nalice:${BCRYPT_2Y}\n`);
      p.watch();
      expect(await nextEvent()).to.deep.equal({ type: 'reload', users: 2 });
    });

    it('stops reloading after close()', async () => {
      await writeFile(file, `alice:${BCRYPT_2Y}\n`);
      const p = open();
      await p.load();
      p.watch();
      p.close();
      await writeFile(file, `bob:${SHA_SECRET}\n`);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(events).to.deep.equal([]);
      expect(p.size).to.equal(1);
    });
  });
});
