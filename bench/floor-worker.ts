// A worker of bench/floor.ts: its share of the files, each read and hashed once, and its
// metadata's bytes obtained the cheapest way Node offers (zlib's one-shot calls; a pure-JS
// inflate measured slower here: ~13 us a call for fflate and ~30 for pako against ~9 for
// zlib.inflateRawSync on a 1.5 KB METADATA). Malformed archives are the product's business,
// not this reference's: a file whose metadata is not found this way just counts no metadata.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { createHash, hash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { gunzipSync, inflateRawSync } from 'node:zlib';

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;

/** The METADATA member of a wheel's bytes (through the central directory), or null. */
function wheelMetadata(b: Buffer): Buffer | null {
  let e = b.length - 22;
  while (e >= 0 && b.readUInt32LE(e) !== EOCD) e--;
  if (e < 0) return null;
  const count = b.readUInt16LE(e + 10);
  let p = b.readUInt32LE(e + 16);
  for (let i = 0; i < count && p + 46 <= b.length && b.readUInt32LE(p) === CENTRAL; i++) {
    const method = b.readUInt16LE(p + 10);
    const compressed = b.readUInt32LE(p + 20);
    const nameLen = b.readUInt16LE(p + 28);
    const local = b.readUInt32LE(p + 42);
    if (b.toString('latin1', p + 46, p + 46 + nameLen).endsWith('.dist-info/METADATA')) {
      const start = local + 30 + b.readUInt16LE(local + 26) + b.readUInt16LE(local + 28);
      const raw = b.subarray(start, start + compressed);
      return method === 8 ? inflateRawSync(raw) : raw;
    }
    p += 46 + nameLen + b.readUInt16LE(p + 30) + b.readUInt16LE(p + 32);
  }
  return null;
}

function metadataOf(name: string, b: Buffer): Buffer | null {
  try {
    if (name.endsWith('.whl')) return wheelMetadata(b);
    if (name.endsWith('.tar.gz') || name.endsWith('.tgz')) return gunzipSync(b);
  } catch {
    // (not this reference's business)
  }
  return null;
}

const BIG = 1 << 20;
const buf = Buffer.allocUnsafe(BIG);
let files = 0;
let metadata = 0;
let sink = 0;
for (const file of workerData as string[]) {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size <= BIG) {
      let off = 0;
      while (off < size) {
        const n = readSync(fd, buf, off, size - off, off);
        if (n === 0) break;
        off += n;
      }
      const bytes = buf.subarray(0, off);
      sink ^= hash('sha256', bytes, 'hex').charCodeAt(0);
      if (metadataOf(file, bytes)) metadata++;
    } else {
      // (A big file is hashed in chunks; its metadata is left out: one file of the corpus.)
      const h = createHash('sha256');
      for (let pos = 0; ; ) {
        const n = readSync(fd, buf, 0, BIG, pos);
        if (n === 0) break;
        h.update(buf.subarray(0, n));
        pos += n;
      }
      sink ^= h.digest('hex').charCodeAt(0);
    }
    files++;
  } finally {
    closeSync(fd);
  }
}
// (The digests' checksum goes back too, so that no work is optimized away.)
parentPort?.postMessage({ files, metadata, sink });
