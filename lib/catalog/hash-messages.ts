// The messages between the hash pool and its workers, in a compact form: a batch of a few
// hundred files as one string and typed arrays (copied as blocks by postMessage), where an
// array of objects would cost the structured clone a few microseconds per file on both sides.

import type { ArchiveKind } from '../metadata/types.js';
import type { HashTask } from './hash-pool.js';

/** A batch of tasks as the worker receives it. */
export interface TaskBatch {
  ids: Float64Array;
  /** The paths, joined by NUL (which no path contains). */
  paths: string;
  /** Per task: ARCHIVE_KINDS index + 1 (0: hash only) | EXTRA_DIGESTS | URGENT. */
  flags: Uint8Array;
}

const ARCHIVE_KINDS: readonly ArchiveKind[] = ['wheel', 'zip', 'tar.gz', 'tgz', 'tar.bz2', 'tar.xz', 'egg'];
const KIND_MASK = 0x0f;
const EXTRA_DIGESTS = 0x10;
const URGENT = 0x20;

export function encodeTasks(tasks: HashTask[]): TaskBatch {
  const ids = new Float64Array(tasks.length);
  const flags = new Uint8Array(tasks.length);
  for (let i = 0; i < tasks.length; i++) {
    const t = tasks[i];
    ids[i] = t.id;
    flags[i] = (t.archive ? ARCHIVE_KINDS.indexOf(t.archive) + 1 : 0) | (t.extraDigests ? EXTRA_DIGESTS : 0) | (t.urgent ? URGENT : 0);
  }
  return { ids, paths: tasks.map((t) => t.path).join('\0'), flags };
}

export function decodeTasks(batch: TaskBatch): HashTask[] {
  const paths = batch.paths.split('\0');
  const out: HashTask[] = [];
  for (let i = 0; i < batch.ids.length; i++) {
    const f = batch.flags[i];
    const t: HashTask = { id: batch.ids[i], path: paths[i] };
    const kind = ARCHIVE_KINDS[(f & KIND_MASK) - 1];
    if (kind) t.archive = kind;
    if (f & EXTRA_DIGESTS) t.extraDigests = true;
    if (f & URGENT) t.urgent = true;
    out.push(t);
  }
  return out;
}

