// Is a catalog entry's key still the file that was indexed? Opened through its store, which
// refuses other bytes than the indexed ones (FsStore: no link followed in the last component,
// and the same device and inode), so a directory swapped for a symbolic link (or a file renamed
// over the indexed one) is not read in its place. For readers that open the archive by path
// themselves (metadata, summaries); the download route does the same check on the object it
// serves from.

import type { DistFile } from './catalog.js';

export async function stillIndexed(file: DistFile): Promise<boolean> {
  if (file.etag) return true; // an object store's copy insists on the ETag itself (localFile)
  if (!file.identity) return true;
  const obj = await file.store.open(file.relPath, { expect: file.identity }).catch(() => null);
  if (!obj) return false;
  await obj.close();
  return true;
}

/** The indexed file's bytes as a local file to read (null: the key leads elsewhere now). */
export async function openIndexed(file: DistFile): Promise<{ path: string; release(): Promise<void> } | null> {
  if (!(await stillIndexed(file))) return null;
  return file.store.localFile(file.relPath, file.etag ? { etag: file.etag } : {});
}
