// The lstat calls of a large directory listing (FsStore.list), off the main thread: a warm start
// over 100,000 files spends ~0.7 s of the main thread's time in lstat alone. A request names the
// files of one directory in one string; the answer is one Float64Array, five numbers per name
// (no object per file crosses the threads). Imports next to nothing: starts in a few ms.

import { lstatSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { NOT_A_FILE, STAT_FAILED, STAT_FIELDS, type StatRequest } from './stat-messages.js';

parentPort?.on('message', (req: StatRequest) => {
  const names = req.names.split('\0');
  const out = new Float64Array(names.length * STAT_FIELDS);
  for (let i = 0, o = 0; i < names.length; i++, o += STAT_FIELDS) {
    try {
      const st = lstatSync(req.dir + names[i], { throwIfNoEntry: false });
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
  parentPort?.postMessage(out, [out.buffer]);
});
