// Is a catalog entry's path still the file that was indexed? Opened without following a link
// in the last component and compared by device and inode with what the indexer recorded, so a
// directory swapped for a symbolic link (or a file renamed over the indexed one) is not read in
// its place. For readers that open the archive by path themselves (metadata, summaries); the
// download route does the same check on the descriptor it serves from.

import { constants, promises as fsp } from 'node:fs';
import type { FileIdentity } from './catalog.js';

export async function stillIndexed(file: { absPath: string; identity?: Pick<FileIdentity, 'dev' | 'ino'> }): Promise<boolean> {
  if (!file.identity) return true;
  const fh = await fsp.open(file.absPath, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => null);
  if (!fh) return false;
  try {
    const st = await fh.stat();
    return st.ino === file.identity.ino && st.dev === file.identity.dev;
  } finally {
    await fh.close().catch(() => {});
  }
}
