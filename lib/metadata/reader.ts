// On-demand access to a distribution's core metadata bytes (for /packages/<file>.metadata and
// the JSON API). The index keeps only a summary; the bytes are re-read from the archive with
// the same bounded extractor and kept in a small LRU.

import { extractMetadata } from './extract.js';
import { archiveKindOf } from './types.js';

/** What the reader needs of a distribution file (a catalog DistFile is one). */
export interface ArchiveFile {
  /** Which root (store) the file is in, and its key there: with size and mtime, the LRU key. */
  readonly root: string;
  readonly relPath: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly parsed: { readonly extension: string };
}

/** A local copy (or the file itself) to read the archive from; release it after reading. */
export interface LocalArchive {
  readonly path: string;
  release(): Promise<void>;
}

/**
 * Opens the indexed file for reading, or null when its key no longer leads to the bytes that
 * were indexed (the catalog's openIndexed; injected so that this folder depends on nothing in
 * the catalog or the stores).
 */
export type OpenArchive<F extends ArchiveFile> = (file: F) => Promise<LocalArchive | null>;

/** Core metadata bytes on demand (MetadataReader is the implementation). */
export interface MetadataSource<F extends ArchiveFile = ArchiveFile> {
  /** The metadata bytes of a distribution, or null if it has none that can be read. */
  read(file: F): Promise<Buffer | null>;
  /** Keep bytes already at hand (an upload just extracted them). */
  remember(key: string | ArchiveFile, bytes: Buffer): void;
}

export class MetadataReader<F extends ArchiveFile = ArchiveFile> implements MetadataSource<F> {
  private readonly lru = new Map<string, Buffer>();
  private bytes = 0;

  constructor(private readonly openArchive: OpenArchive<F>, private readonly maxBytes = 32 * 1024 * 1024) {}

  private key(file: ArchiveFile): string {
    return `${file.root}\0${file.relPath}\0${file.size}\0${file.mtimeMs}`;
  }

  /**
   * The metadata bytes of a distribution, or null if it has none that can be read (or its path
   * no longer leads to the indexed file: see stillIndexed).
   */
  async read(file: F): Promise<Buffer | null> {
    const key = this.key(file);
    const hit = this.lru.get(key);
    if (hit) {
      this.lru.delete(key);
      this.lru.set(key, hit);
      return hit;
    }
    const local = await this.openArchive(file);
    if (!local) return null;
    const r = await extractMetadata(local.path, archiveKindOf(file.parsed)).finally(() => local.release());
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
