// On-demand access to a distribution's core metadata bytes (for /packages/<file>.metadata and
// the JSON API). The index keeps only a summary; the bytes are re-read from the archive with
// the same bounded extractor and kept in a small LRU.

import { extractMetadata } from './extract.js';
import { archiveKindOf } from './types.js';

/** What the reader needs of a distribution file (a catalog DistFile is one). */
export interface ArchiveFile {
  readonly absPath: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly parsed: { readonly extension: string };
  /** Device and inode when indexed (for the StillIndexed check). */
  readonly identity?: { readonly dev: number; readonly ino: number };
}

/**
 * Does the file's path still lead to the file that was indexed? (The catalog's stillIndexed;
 * injected so that this folder depends on nothing in the catalog.)
 */
export type StillIndexed = (file: ArchiveFile) => Promise<boolean>;

export class MetadataReader {
  private readonly lru = new Map<string, Buffer>();
  private bytes = 0;

  constructor(private readonly stillIndexed: StillIndexed, private readonly maxBytes = 32 * 1024 * 1024) {}

  private key(file: ArchiveFile): string {
    return `${file.absPath}\0${file.size}\0${file.mtimeMs}`;
  }

  /**
   * The metadata bytes of a distribution, or null if it has none that can be read (or its path
   * no longer leads to the indexed file: see stillIndexed).
   */
  async read(file: ArchiveFile): Promise<Buffer | null> {
    const key = this.key(file);
    const hit = this.lru.get(key);
    if (hit) {
      this.lru.delete(key);
      this.lru.set(key, hit);
      return hit;
    }
    if (!(await this.stillIndexed(file))) return null;
    const r = await extractMetadata(file.absPath, archiveKindOf(file.parsed));
    if (!r.ok) return null;
    this.remember(key, r.bytes);
    return r.bytes;
  }

  /** Keep bytes we already have (an upload just extracted them). */
  remember(key: string | ArchiveFile, bytes: Buffer): void {
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
