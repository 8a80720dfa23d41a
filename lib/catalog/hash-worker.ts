// Worker thread: hashes files and reads their core metadata, off the main thread.
// Receives batches of HashTask, answers with batches of HashResult (same order).

import { Digester } from '../digests.js';
import { promises as fsp } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { extractMetadata, extractMetadataFromBuffer, type ArchiveKind } from '../metadata/extract.js';
import { summarizeMetadata } from '../metadata/summary.js';
import type { HashResult, HashTask } from './hash-pool.js';

const IN_MEMORY_LIMIT = 16 * 1024 * 1024;
const CHUNK = 1024 * 1024;

async function digestFile(task: HashTask): Promise<HashResult> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(task.path, 'r');
    const st = await fh.stat();
    if (!st.isFile()) return { id: task.id, ok: false, error: 'not a regular file' };
    const digester = await Digester.create({ md5: task.extraDigests, blake2b256: task.extraDigests });
    let whole: Buffer | null = null;
    if (st.size <= IN_MEMORY_LIMIT) {
      whole = Buffer.allocUnsafe(st.size);
      let off = 0;
      while (off < st.size) {
        const { bytesRead } = await fh.read(whole, off, st.size - off, off);
        if (bytesRead === 0) break;
        off += bytesRead;
      }
      if (off !== st.size) whole = whole.subarray(0, off);
      digester.update(whole);
    } else {
      const buf = Buffer.allocUnsafe(CHUNK);
      let pos = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
        if (bytesRead === 0) break;
        const chunk = buf.subarray(0, bytesRead);
        digester.update(chunk);
        pos += bytesRead;
      }
    }
    await fh.close();
    fh = undefined;
    const result: HashResult = { id: task.id, ok: true, size: st.size, mtimeMs: st.mtimeMs, ...digester.digest() };
    if (task.archive) {
      const kind: ArchiveKind = task.archive;
      const extracted = whole ? await extractMetadataFromBuffer(whole, kind) : await extractMetadata(task.path, kind);
      if (extracted.ok) {
        result.metadata = summarizeMetadata(extracted.bytes, kind);
      } else {
        result.metadata = null;
        result.metadataError = extracted.error;
      }
    }
    return result;
  } catch (err) {
    return { id: task.id, ok: false, error: err instanceof Error ? err.message : String(err) };
  } finally {
    await fh?.close().catch(() => {});
  }
}

parentPort?.on('message', (batch: HashTask[]) => {
  void Promise.all(batch.map(digestFile)).then((results) => parentPort?.postMessage(results));
});
