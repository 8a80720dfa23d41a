// The listing of a large directory (FsStore.list), off the main thread: the worker reads the
// directory and lstats its files, and sends them a slice at a time (one string of names and one
// Float64Array of numbers: no object per file crosses the threads). It runs ahead of the main
// thread by at most `window` slices, so a warm start over 100,000 files spends no main-thread
// time reading the directory or in lstat (~0.8 s), and what waits in between stays bounded.
// Imports next to nothing: starts in a few ms.

import { lstatSync, opendirSync, type Dir } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { ACK, entryKind, NOT_A_FILE, STAT_FAILED, STAT_FIELDS, type ListRequest, type ListSlice } from './stat-messages.js';

/**
 * Test hook: PYPI_LITE_TEST_LIST_WORKER_EXIT=<n> makes the worker exit after sending n slices,
 * as an out-of-memory worker would (the listing then falls back to the main thread). Unset in
 * normal use.
 */
const TEST_EXIT_AFTER = process.env.PYPI_LITE_TEST_LIST_WORKER_EXIT ? Number(process.env.PYPI_LITE_TEST_LIST_WORKER_EXIT) : Infinity;

let taken = 0;
let wake: (() => void) | null = null;

function statAll(dir: string, names: string[]): Float64Array<ArrayBuffer> {
  const out = new Float64Array(names.length * STAT_FIELDS);
  for (let i = 0, o = 0; i < names.length; i++, o += STAT_FIELDS) {
    try {
      const st = lstatSync(dir + names[i], { throwIfNoEntry: false });
      if (!st?.isFile()) {
        out[o] = NOT_A_FILE;
        continue;
      }
      out[o] = st.size;
      out[o + 1] = st.mtimeMs;
      out[o + 2] = st.dev;
      out[o + 3] = st.ino;
      out[o + 4] = st.ctimeMs;
    } catch {
      out[o] = STAT_FAILED;
    }
  }
  return out;
}

function send(s: ListSlice): void {
  parentPort?.postMessage(s, [s.stats.buffer]);
}

async function list(req: ListRequest): Promise<void> {
  if (TEST_EXIT_AFTER === 0) process.exit(1);
  let handle: Dir;
  try {
    handle = opendirSync(req.dir, { bufferSize: 1024 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    send({ files: '', stats: new Float64Array(0), dirs: [], links: [], done: true, error: { ...(e.code ? { code: e.code } : {}), message: e.message } });
    return;
  }
  try {
    for (let sent = 1; ; sent++) {
      const files: string[] = [];
      const dirs: string[] = [];
      const links: string[] = [];
      let done = false;
      let error: ListSlice['error'];
      try {
        while (files.length < req.slice) {
          const e = handle.readSync();
          if (e === null) {
            done = true;
            break;
          }
          const kind = entryKind(e);
          if (kind === 'dir') dirs.push(e.name);
          else if (kind === 'file') files.push(e.name);
          else if (kind === 'link') links.push(e.name);
        }
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        done = true;
        error = { ...(e.code ? { code: e.code } : {}), message: e.message };
      }
      send({ files: files.join('\0'), stats: statAll(req.dir, files), dirs, links, done, ...(error ? { error } : {}) });
      if (done) return;
      if (sent >= TEST_EXIT_AFTER) process.exit(1);
      while (sent - taken >= req.window) await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    try {
      handle.closeSync();
    } catch {
      // closed already
    }
  }
}

parentPort?.on('message', (m: ListRequest | typeof ACK) => {
  if (m === ACK) {
    taken++;
    wake?.();
    wake = null;
    return;
  }
  void list(m);
});
