// Applying a store's change feed (StoreEvent) to the index: a file changed, appeared or went
// away; a directory appeared (list it) or went away (drop what it held); a change that named no
// file (list that directory again, batched); a part of the store the feed cannot watch. Also
// "look at this key again later" for the policy (a file still being written, a file that was
// swapped while it was hashed).

import type { Logger } from 'pino';
import type { PackageStore, StoreEntry, StoreEvent } from '../store/types.js';
import { scanStore, type IndexPolicy } from './scan.js';

export class StoreReconciler {
  private readonly rechecks = new Set<NodeJS.Timeout>();
  /** Directories to list again after an event that named no file. */
  private readonly relists = new Set<string>();
  private relistTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly log: Logger;

  constructor(
    private readonly store: PackageStore,
    private readonly policy: IndexPolicy,
    log: Logger,
  ) {
    this.log = log.child({ part: 'reconcile' });
  }

  handle(event: StoreEvent): void {
    if (this.closed || this.policy.closed) return;
    switch (event.type) {
      case 'file':
        this.reconcile(event.key, event.entry);
        return;
      case 'dir-added':
        void scanStore(this.store, this.policy, this.log, { prefix: event.dirKey }).catch((err: unknown) => this.log.warn({ err, dir: event.dirKey }, 'cannot list a new directory'));
        return;
      case 'dir-removed':
        for (const f of this.policy.catalog.filesUnder(this.store.id, event.dirKey)) this.policy.catalog.remove(this.store.id, f.relPath);
        return;
      case 'relist':
        this.relistSoon(event.dirKey);
        return;
      case 'unwatched':
        this.policy.unwatched(this.store, event.code, event.dirKey);
        return;
    }
  }

  /** Bring the index in line with what the store holds at key now (entry null: nothing). */
  reconcile(key: string, entry: StoreEntry | null): void {
    if (this.closed || this.policy.closed) return;
    const { catalog } = this.policy;
    const existing = catalog.fileAt(key);
    const ours = existing !== undefined && existing.root === this.store.id;
    if (!entry) {
      if (ours) {
        this.policy.drop(existing);
        this.log.info({ file: key }, 'file removed');
      }
      return;
    }
    if (ours && this.policy.unchanged(existing, entry)) return;
    const parsed = this.policy.consider(key);
    if (!parsed) return;
    const file = this.policy.add(this.store, entry, parsed);
    if (file) this.log.info({ file: key, project: file.project }, existing ? 'file changed' : 'file added');
  }

  /** Stat the key again after delayMs and reconcile. */
  recheckLater(key: string, delayMs: number): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.rechecks.delete(t);
      if (this.closed) return;
      this.store.stat(key).then(
        (entry) => this.reconcile(key, entry),
        () => this.reconcile(key, null),
      );
    }, delayMs);
    this.rechecks.add(t);
  }

  /** An event without a file name: list that directory again (batched, off the event). */
  private relistSoon(dirKey: string): void {
    this.relists.add(dirKey);
    this.relistTimer ??= setTimeout(() => {
      this.relistTimer = null;
      const dirs = [...this.relists];
      this.relists.clear();
      void (async () => {
        for (const d of dirs) if (!this.closed) await scanStore(this.store, this.policy, this.log, { prefix: d, reconcile: true }).catch(() => {});
      })();
    }, 200);
  }

  close(): void {
    this.closed = true;
    if (this.relistTimer) clearTimeout(this.relistTimer);
    for (const t of this.rechecks) clearTimeout(t);
    this.rechecks.clear();
  }
}
