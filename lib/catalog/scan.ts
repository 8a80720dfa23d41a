// Scanning a store: list it (or one directory of it) and bring the index in line with the
// listing. The initial scan adds every distribution file; a rescan (`reconcile`) skips
// unchanged files, indexes new and changed ones, and drops the indexed files that the listing
// no longer shows. What "add", "unchanged" and "drop" mean is the policy's (the Indexer).

import type { Logger } from 'pino';
import type { Catalog, DistFile } from './catalog.js';
import { asNameFacts, isDistFilename, type NameFacts } from './filename.js';
import type { PackageStore, StoreEntry } from '../store/types.js';

/** What scanning and event reconciling need from the policy that owns the index. */
export interface IndexPolicy {
  readonly catalog: Catalog;
  readonly closed: boolean;
  /** Is this a distribution file name we serve: its facts (describeName's)? (Logs unparseable names once.) */
  consider(key: string): NameFacts | null;
  /** Is the stored entry still the indexed file (size, mtime, identity)? */
  unchanged(file: DistFile, entry: StoreEntry): boolean;
  /** Index (or re-index) the file at entry (`name`: its name's facts). */
  add(store: PackageStore, entry: StoreEntry, name: NameFacts): DistFile | undefined;
  /** An indexed file a rescan found unchanged (hashing it may be due again). */
  seenUnchanged(file: DistFile): void;
  /** The file is gone from its store. */
  drop(file: DistFile): void;
  /** The store's change feed cannot report changes below dirKey (code: why, e.g. ENOSPC). */
  unwatched(store: PackageStore, code: string, dirKey: string): void;
}

export interface ScanOptions {
  /** Only below this directory key ('' = the whole store). */
  prefix?: string;
  /** A rescan: skip unchanged files, drop what is gone (else: the initial scan, add everything). */
  reconcile?: boolean;
  /**
   * Index nothing before this resolves (e.g. the digest caches are loaded); the listing starts
   * at once (a worker reads and stats the store meanwhile).
   */
  after?: Promise<void>;
}

/**
 * The module whose describeName a listing runs where it reads the names (ListOptions.describe):
 * at a warm start over a large directory the file names are parsed by FsStore's listing worker,
 * not the main thread, and their projects and versions arrive as shared strings.
 */
const DESCRIBE_NAMES = new URL('./filename.js', import.meta.url).href;

export async function scanStore(store: PackageStore, policy: IndexPolicy, log: Logger, opts: ScanOptions = {}): Promise<void> {
  const prefix = opts.prefix ?? '';
  const reconcile = opts.reconcile ?? false;
  const catalog = policy.catalog;
  // Files indexed before the listing started: only those can be dropped for not being seen
  // (a file added meanwhile, by an upload or the watcher, is a new object).
  const before = reconcile ? catalog.filesUnder(store.id, prefix) : [];
  const seen = new Set<string>();
  /** Directories that could not be read (not gone): their files are kept, not dropped. */
  const unreadable: string[] = [];
  /** Index one batch of the listing; false once the policy is closed. */
  const indexBatch = (batch: StoreEntry[]): boolean => {
    for (const entry of batch) {
      if (policy.closed) return false;
      // (A name the listing described is a distribution file's: facts from describeName.)
      const name = asNameFacts(entry.described) ?? policy.consider(entry.key);
      if (!name) continue;
      if (!reconcile) {
        policy.add(store, entry, name);
        continue;
      }
      seen.add(entry.key);
      const existing = catalog.fileAt(entry.key);
      if (existing && existing.root !== store.id) continue; // an earlier root serves this path
      if (existing && policy.unchanged(existing, entry)) {
        policy.seenUnchanged(existing);
        continue;
      }
      const file = policy.add(store, entry, name);
      if (file) log.info({ file: entry.key, project: file.project }, existing ? 'file changed (found by rescan)' : 'file added (found by rescan)');
    }
    return true;
  };
  const listing = store.list({ ...(prefix ? { prefix } : {}), accept: isDistFilename, describe: DESCRIBE_NAMES, unreadable: (dirKey) => unreadable.push(`${dirKey}/`) })[Symbol.asyncIterator]();
  try {
    // The listing starts now; what it finds is indexed once `after` allows.
    const first = listing.next();
    first.catch(() => {}); // (awaited below: not an unhandled rejection while we wait)
    if (opts.after) await opts.after;
    for (let step = await first; !step.done; step = await listing.next()) if (!indexBatch(step.value)) return;
  } finally {
    await listing.return?.();
  }
  if (!reconcile || policy.closed) return;
  for (const f of before) {
    if (seen.has(f.relPath) || catalog.fileAt(f.relPath) !== f) continue;
    if (unreadable.some((p) => f.relPath.startsWith(p))) continue;
    policy.drop(f);
    log.info({ file: f.relPath }, 'file removed (found by rescan)');
  }
}
