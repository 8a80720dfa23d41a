// Read-modify-write of small text files that both the server and the CLI edit (yanked.txt,
// the htpasswd file). Edits of one file are serialized: within the process by a promise chain
// per path, across processes (`pypi-lite yank` next to a running server, two `pypi-lite passwd`
// at once) by a lock file created with O_EXCL next to the file. The new content goes to a
// uniquely named temporary file that is renamed over the old one, so readers see the old or
// the new file, never a half-written one, and concurrent writers never share a temp name.

import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';

/** A lock file older than this is taken to be left over by a crashed editor. */
const STALE_LOCK_MS = 30_000;
const LOCK_WAIT_MS = 15_000;

export class EditLockTimeout extends Error {}

const chains = new Map<string, Promise<unknown>>();

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove a lock file whose owner is gone (dead pid on this host, or older than STALE_LOCK_MS). */
async function removeIfStale(lock: string): Promise<void> {
  let text: string;
  let mtimeMs: number;
  try {
    text = await fsp.readFile(lock, 'utf8');
    mtimeMs = (await fsp.stat(lock)).mtimeMs;
  } catch {
    return; // gone already
  }
  const pid = Number(/^(\d+)/.exec(text)?.[1] ?? NaN);
  const dead = Number.isInteger(pid) && pid > 0 && !pidAlive(pid);
  if (dead || Date.now() - mtimeMs > STALE_LOCK_MS) await fsp.rm(lock, { force: true });
}

async function acquire(lock: string): Promise<() => Promise<void>> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  let delay = 5;
  for (;;) {
    try {
      const h = await fsp.open(lock, 'wx', 0o600);
      try {
        await h.writeFile(`${process.pid}\n`);
      } finally {
        await h.close();
      }
      return () => fsp.rm(lock, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    await removeIfStale(lock);
    if (Date.now() > deadline) throw new EditLockTimeout(`${lock} is held by another process: remove it if no pypi-lite command is running`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 100);
  }
}

/** Run `fn` with the in-process and cross-process lock of `file` held. */
export function withFileLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const key = path.resolve(file);
  const run = async (): Promise<T> => {
    const release = await acquire(`${key}.lock`);
    try {
      return await fn();
    } finally {
      await release();
    }
  };
  const prev = chains.get(key) ?? Promise.resolve();
  const next = prev.then(run, run);
  const tail = next.catch(() => {});
  chains.set(key, tail);
  void tail.then(() => {
    if (chains.get(key) === tail) chains.delete(key);
  });
  return next;
}

/** Write `text` to `file` through a uniquely named temporary file and a rename. */
export async function replaceFile(file: string, text: string, mode = 0o644): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await fsp.writeFile(tmp, text, { mode, flag: 'wx' });
    await fsp.chmod(tmp, mode); // exactly this mode, whatever the umask
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Read `file` ('' when missing), let `change` compute the new text (or null for "no change"),
 * and write it, all under the file's lock. Returns what `change` returned. An existing file
 * keeps its permissions; a new one gets `newFileMode`.
 */
export async function editFile<R>(
  file: string,
  change: (text: string, exists: boolean) => { text: string | null; result: R },
  newFileMode = 0o644,
): Promise<R> {
  return withFileLock(file, async () => {
    let text = '';
    let mode = newFileMode;
    let exists = true;
    try {
      text = await fsp.readFile(file, 'utf8');
      mode = (await fsp.stat(file)).mode & 0o777;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      exists = false;
    }
    const r = change(text, exists);
    if (r.text !== null) await replaceFile(file, r.text, mode);
    return r.result;
  });
}
