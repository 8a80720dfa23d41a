// What a Simple API project page says about each file, whatever the file's source: the local
// catalog (a DistFile) or an upstream index (lib/upstream/). The renderers (render.ts) take
// only this shape, so local and proxied pages are rendered, negotiated and cached alike.

import type { DistFile } from '../catalog/catalog.js';
import { fileUrl } from './render.js';

export interface ListedFile {
  filename: string;
  /** URL relative to the project page (/simple/<project>/), without a fragment. */
  url: string;
  /** Digests by hashlib name (sha256 first when known); may be empty. */
  hashes: Record<string, string>;
  requiresPython: string | null;
  /** null: not yanked; else the reason ('' for none). */
  yanked: string | null;
  /** PEP 658: sha256 of the core metadata served at <url>.metadata; null: none offered. */
  coreMetadataSha256: string | null;
  /** Bytes; null when the source did not say (only upstream HTML pages). */
  size: number | null;
  /** ISO 8601 (yyyy-mm-ddThh:mm:ss.ffffffZ); null when the source did not say. */
  uploadTime: string | null;
}

/** The files of one project as a source lists them. */
export interface SourceListing {
  name: string;
  displayName: string;
  files: ListedFile[];
  versions: string[];
  /** HTTP-date for Last-Modified. */
  lastModified: string;
}

/**
 * Where project pages come from besides the local catalog (today: the upstream index). The
 * page layer asks the local catalog first; a project the catalog has is never listed from a
 * source (see PageCache).
 */
export interface ProjectSource {
  /**
   * The listing if it can be served right now without waiting: a listing, null (known not to
   * exist), or undefined (call get()). A refreshed listing is a new object.
   */
  peek(name: string): SourceListing | null | undefined;
  /** The listing, fetched or revalidated if needed; null if the source has no such project. */
  get(name: string): Promise<SourceListing | null>;
  /** The local catalog serves this name: the source may check (in the background) whether it shadows one of its own. */
  shadowed(name: string): void;
}

/** The listed form of a local file. */
export function listLocal(f: DistFile): ListedFile {
  const sha256 = f.sha256;
  const md = f.metadata;
  return {
    filename: f.filename,
    url: fileUrl(f),
    hashes: sha256 ? { sha256 } : {},
    requiresPython: md?.requiresPython || null,
    yanked: f.yank ? f.yank.reason : null,
    coreMetadataSha256: md?.servable ? md.sha256 : null,
    size: f.size,
    uploadTime: new Date(f.mtimeMs).toISOString(),
  };
}
