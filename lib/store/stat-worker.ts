// The listing of a large directory (FsStore.list), off the main thread: the worker reads the
// directory and lstats its files, and sends them a slice at a time (one string of names and one
// Float64Array of numbers: no object per file crosses the threads). It runs ahead of the main
// thread by at most `window` slices, so a warm start over 100,000 files spends no main-thread
// time reading the directory or in lstat (~0.8 s), and what waits in between stays bounded.
// When asked (ListOptions.describe), it also describes each name with the caller's module
// (the scan: describeName, a file name's project and version), each distinct string sent once.
// Imports next to nothing else: starts in a few ms.

import { lstatSync, opendirSync, type Dir } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { ACK, entryKind, NOT_A_FILE, STAT_FAILED, STAT_FIELDS, type Descriptions, type ListRequest, type ListSlice } from './stat-messages.js';

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

type Describe = (name: string) => readonly string[] | null;

/** The module's describeName, or null (none asked for, or it cannot be loaded: the names go undescribed). */
async function describer(url: string | undefined): Promise<Describe | null> {
  if (!url) return null;
  try {
    const mod = (await import(url)) as { describeName?: unknown };
    return typeof mod.describeName === 'function' ? (mod.describeName as Describe) : null;
  } catch {
    return null;
  }
}

/**
 * The listing's strings table: each string is sent once, then named by its index. Emptied
 * (on both sides) at a slice's start once it holds this many: a root of a million projects
 * must not grow it past the worker's small heap. (Test hook: PYPI_LITE_TEST_LIST_STRINGS=<n>
 * makes it n, so that a test's few thousand names empty it too. Unset in normal use.)
 */
const MAX_STRINGS = Number(process.env.PYPI_LITE_TEST_LIST_STRINGS ?? 65_536);

class Describer {
  private readonly ids = new Map<string, number>();

  constructor(private readonly describe: Describe) {}

  slice(names: string[]): Descriptions {
    const reset = this.ids.size >= MAX_STRINGS;
    if (reset) this.ids.clear();
    const counts = new Int8Array(names.length);
    let ids = new Int32Array(names.length * 3);
    let n = 0;
    const strings: string[] = [];
    for (let i = 0; i < names.length; i++) {
      let d: readonly string[] | null = null;
      try {
        d = this.describe(names[i]);
      } catch {
        // undescribed: the main thread looks at it itself
      }
      if (d === null || d.length > 127) {
        counts[i] = -1;
        continue;
      }
      counts[i] = d.length;
      if (n + d.length > ids.length) {
        const more = new Int32Array(Math.max(ids.length * 2, n + d.length));
        more.set(ids);
        ids = more;
      }
      for (let k = 0; k < d.length; k++) {
        const str = d[k];
        // (A string the description repeats, e.g. a name shown as it is normalized, is looked up once.)
        let id = k > 0 && str === d[k - 1] ? ids[n - 1] : k > 1 && str === d[0] ? ids[n - k] : this.ids.get(str);
        if (id === undefined) {
          id = this.ids.size;
          this.ids.set(str, id);
          strings.push(str);
        }
        ids[n++] = id;
      }
    }
    return { counts, ids: ids.slice(0, n), strings, reset };
  }
}

function send(s: ListSlice): void {
  const d = s.described;
  parentPort?.postMessage(s, d ? [s.stats.buffer, d.counts.buffer, d.ids.buffer] : [s.stats.buffer]);
}

async function list(req: ListRequest): Promise<void> {
  if (TEST_EXIT_AFTER === 0) process.exit(1);
  const describe = await describer(req.describe);
  const described = describe ? new Describer(describe) : null;
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
      send({ files: files.join('\0'), stats: statAll(req.dir, files), dirs, links, ...(described ? { described: described.slice(files) } : {}), done, ...(error ? { error } : {}) });
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
