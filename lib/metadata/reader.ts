// On-demand access to a distribution's core metadata bytes (for /packages/<file>.metadata and
// the JSON API). The index keeps only a summary; the bytes are re-read from the archive with
// the same bounded extractor and kept in a small LRU.

import type { DistFile } from '../catalog/catalog.js';
import { archiveKindOf } from '../catalog/indexer.js';
import { stillIndexed } from '../catalog/still-indexed.js';
import { extractMetadata } from './extract.js';

export class MetadataReader {
  private readonly lru = new Map<string, Buffer>();
  private bytes = 0;

  constructor(private readonly maxBytes = 32 * 1024 * 1024) {}

  private key(file: DistFile): string {
    return `${file.root}\0${file.relPath}\0${file.size}\0${file.mtimeMs}`;
  }

  /**
   * The metadata bytes of a distribution, or null if it has none that can be read (or its path
   * no longer leads to the indexed file: see stillIndexed).
   */
  async read(file: DistFile): Promise<Buffer | null> {
    const key = this.key(file);
    const hit = this.lru.get(key);
    if (hit) {
      this.lru.delete(key);
      this.lru.set(key, hit);
      return hit;
    }
    if (!(await stillIndexed(file))) return null;
    const local = await file.store.localFile(file.relPath);
    const r = await extractMetadata(local.path, archiveKindOf(file.parsed)).finally(() => local.release());
    if (!r.ok) return null;
    this.remember(key, r.bytes);
    return r.bytes;
  }

  /** Keep bytes we already have (an upload just extracted them). */
  remember(key: string | DistFile, bytes: Buffer): void {
    const k = typeof key === 'string' ? key : this.key(key);
    if (bytes.length > this.maxBytes / 4) return;
    const old = this.lru.get(k);
    if (old) this.bytes -= old.length;
    this.lru.set(k, bytes);
    this.bytes += bytes.length;
    for (const [oldKey, buf] of this.lru) {
      if (this.bytes <= this.maxBytes) break;
      this.lru.delete(oldKey);
      this.bytes -= buf.length;
    }
  }
}
