// PEP 592 yank state. It lives with the packages, in a plain text file at the top of each
// root (`yanked.txt`), so it survives restarts, can be edited by hand and versioned with the
// directory. One entry per line:
//
//   # comments and blank lines are ignored
//   demo==1.0            reason text (optional)
//   demo-1.1-py3-none-any.whl   only this file
//
// `project==version` yanks every file of that release (names compared PEP 503-normalized,
// versions PEP 440-equal); a file name yanks that file wherever it sits under the root.
//
// The yank file stays on the file system, beside (not inside) the PackageStore: it is the
// operator's file, edited by hand and by the HTTP yank route (atomic rewrite, watched with
// fs.watchFile), not a package (the indexer lists distribution file names only). A store that
// keeps the list itself (PackageStore.yankList: an S3 root keeps it in the bucket, so a yank
// through one replica shows on all) is read and edited through that instead, same format.

import { pino, type Logger } from 'pino';
import { promises as fsp, watchFile, unwatchFile } from 'node:fs';
import { editFile } from '../core/edit-file.js';
import path from 'node:path';
import type { Yank } from './catalog.js';
import type { StoredTextFile, TextEdit } from '../store/types.js';
import { normalizeName } from '../core/names.js';
import { versionsEqual } from './version.js';

export const YANK_FILE = 'yanked.txt';

export interface YankEntry {
  /** Either a file name or `project==version`. */
  target: string;
  reason: string;
}

export type YankTarget = { kind: 'file'; filename: string } | { kind: 'release'; project: string; version: string };

export function parseTarget(target: string): YankTarget | null {
  const t = target.trim();
  const m = /^([A-Za-z0-9._-]+)\s*==\s*(\S+)$/.exec(t);
  if (m) return { kind: 'release', project: normalizeName(m[1]), version: m[2] };
  if (/^[^\s/\\\p{C}\p{Z}]+$/u.test(t)) return { kind: 'file', filename: t };
  return null;
}

/** Longest reason kept (in characters); PyPI has no documented limit, pip prints it on one line. */
export const MAX_REASON_LENGTH = 500;

/**
 * A yank reason as it is stored and shown: one line of text. Line and paragraph separators
 * (CR, LF, U+2028, U+2029, NEL), every other control character (NUL, tab, ESC), lone
 * surrogates, bidi controls and the BOM become a space, runs of spaces one space; trimmed and cut to
 * MAX_REASON_LENGTH characters. The HTTP API and the CLI report the normalized reason, so what
 * they acknowledge is exactly what the pages and pip show.
 */
export function normalizeReason(reason: string): string {
  const oneLine = reason
    .replace(/[\p{Cc}\p{Cs}\p{Zl}\p{Zp}\p{Zs}\s\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]+/gu, ' ')
    .trim();
  const chars = Array.from(oneLine);
  return chars.length > MAX_REASON_LENGTH ? chars.slice(0, MAX_REASON_LENGTH).join('').trimEnd() : oneLine;
}

/** The entry one line of a yank file holds, or null for blank lines, comments and junk. */
function lineEntry(raw: string): YankEntry | null {
  const line = raw.trim();
  if (line === '' || line.startsWith('#')) return null;
  // `s`: a reason may hold U+2028/U+2029 (a hand edit), which `.` does not match otherwise.
  const m = /^(\S+(?:\s*==\s*\S+)?)(?:\s+(.*))?$/s.exec(line);
  if (!m) return null;
  const target = m[1].replace(/\s+/g, '');
  return parseTarget(target) ? { target, reason: normalizeReason(m[2] ?? '') } : null;
}

export function parseYankFile(text: string): YankEntry[] {
  const out: YankEntry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const e = lineEntry(raw);
    if (e) out.push(e);
  }
  return out;
}

const HEADER = `# pypi-lite yank list (PEP 592). One entry per line: <file name or project==version> [reason]
# Edit by hand or with \`pypi-lite yank\` / \`pypi-lite unyank\`; changes are picked up live.
`;

export function sameTarget(a: string, b: string): boolean {
  const ta = parseTarget(a);
  const tb = parseTarget(b);
  if (!ta || !tb || ta.kind !== tb.kind) return false;
  if (ta.kind === 'file' && tb.kind === 'file') return ta.filename === tb.filename;
  if (ta.kind === 'release' && tb.kind === 'release') return ta.project === tb.project && versionsEqual(ta.version, tb.version);
  return false;
}

/** The yank state of every root, kept in memory and in sync with the yanked.txt files. */
const SILENT = pino({ level: 'silent' });

export class YankStore {
  /** Per root: file name -> reason, and project -> yanked releases (matched by PEP 440 equality). */
  private readonly byRoot = new Map<string, { files: Map<string, string>; releases: Map<string, { version: string; reason: string }[]> }>();
  private readonly watching: string[] = [];
  private readonly unsubscribe: (() => void)[] = [];
  /** Per root: number of the latest read started, and of the read whose result is applied. */
  private readonly started = new Map<string, number>();
  private readonly applied = new Map<string, number>();

  constructor(
    private readonly roots: string[],
    private readonly onChange: (root: string) => void = () => {},
    private readonly log: Logger = SILENT,
    /** Roots whose store keeps the yank list (by root id); the others use yanked.txt. */
    private readonly lists: ReadonlyMap<string, StoredTextFile> = new Map(),
  ) {}

  static fileOf(root: string): string {
    return path.join(root, YANK_FILE);
  }

  async load(): Promise<void> {
    for (const root of this.roots) await this.loadRoot(root);
  }

  private async loadRoot(root: string): Promise<void> {
    // Reads may overlap (an HTTP yank's reload next to the poller's): a read that started
    // earlier but finishes later must not overwrite the newer state.
    const seq = (this.started.get(root) ?? 0) + 1;
    this.started.set(root, seq);
    let text = '';
    const list = this.lists.get(root);
    if (list) {
      try {
        text = await list.read();
      } catch (err) {
        // The store is down: keep the state we have (never unyank everything for an outage).
        this.log.warn({ err, root }, 'cannot read the yank list; keeping the last one read');
        return;
      }
    } else {
      try {
        text = await fsp.readFile(YankStore.fileOf(root), 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ err }, `cannot read ${YankStore.fileOf(root)}`);
      }
    }
    const files = new Map<string, string>();
    const releases = new Map<string, { version: string; reason: string }[]>();
    for (const e of parseYankFile(text)) {
      const t = parseTarget(e.target);
      if (t?.kind === 'file') files.set(t.filename, e.reason);
      else if (t?.kind === 'release') {
        // `demo==2.0` must yank the files of 2.0.0 too: compare versions by PEP 440 equality,
        // not by their canonical spelling (which keeps trailing zeros). A later line wins.
        const list = releases.get(t.project) ?? [];
        const i = list.findIndex((r) => versionsEqual(r.version, t.version));
        if (i >= 0) list[i] = { version: t.version, reason: e.reason };
        else list.push({ version: t.version, reason: e.reason });
        releases.set(t.project, list);
      }
    }
    if (seq < (this.applied.get(root) ?? 0)) return;
    this.applied.set(root, seq);
    this.byRoot.set(root, { files, releases });
  }

  /** Re-read a root's yank file when it changes (polling: robust to editors and git checkouts). */
  watch(intervalMs = 500): void {
    for (const root of this.roots) {
      const list = this.lists.get(root);
      if (list) {
        // Another replica's edit is announced on the store's change feed.
        this.unsubscribe.push(list.onChange(() => void this.loadRoot(root).then(() => this.onChange(root))));
        continue;
      }
      const file = YankStore.fileOf(root);
      watchFile(file, { interval: intervalMs, persistent: false }, () => {
        void this.loadRoot(root).then(() => this.onChange(root));
      });
      this.watching.push(file);
    }
  }

  close(): void {
    for (const f of this.watching.splice(0)) unwatchFile(f);
    for (const u of this.unsubscribe.splice(0)) u();
  }

  /**
   * The yank of a file of root (by its key, whose last segment is its name), or of its release
   * (project, version). (The key, not the name: a start looks up every file, and most roots
   * yank nothing, so the name is cut out only when there is something to look for.)
   */
  lookup(root: string, key: string, project: string, version: string): Yank | null {
    const state = this.byRoot.get(root);
    if (!state || (state.files.size === 0 && state.releases.size === 0)) return null;
    const byFile = state.files.get(key.slice(key.lastIndexOf('/') + 1));
    if (byFile !== undefined) return { reason: byFile };
    const byRelease = state.releases.get(project)?.find((r) => versionsEqual(r.version, version));
    return byRelease !== undefined ? { reason: byRelease.reason } : null;
  }
}

/**
 * Add or replace (yank) or remove (unyank) an entry in a root's yank file. Only the lines of
 * that target change: comments, blank lines, other entries and line endings stay as written.
 * Edits are serialized per file, also against other processes (lib/edit-file.ts), and the file
 * is replaced atomically. Returns false for an unyank of a target that was not yanked.
 */
export async function editYankFile(root: string, target: string, change: YankChange): Promise<boolean> {
  return editFile(YankStore.fileOf(root), yankEdit(target, change));
}

/** The same edit of a yank list a store keeps (PackageStore.yankList). */
export async function editYankList(list: StoredTextFile, target: string, change: YankChange): Promise<boolean> {
  return list.edit(yankEdit(target, change));
}

export type YankChange = { yank: true; reason: string } | { yank: false };

function yankEdit(target: string, change: YankChange): TextEdit<boolean> {
  if (!parseTarget(target)) throw new Error(`invalid yank target "${target}": use a file name or project==version`);
  const clean = target.replace(/\s+/g, '');
  const reason = change.yank ? normalizeReason(change.reason) : '';
  const entry = change.yank ? (reason ? `${clean} ${reason}` : clean) : null;
  return (text, exists) => {
    const eol = text.includes('\r\n') ? '\r\n' : '\n';
    const out: string[] = [];
    let found = false;
    for (const raw of text === '' ? [] : text.split('\n')) {
      const e = lineEntry(raw);
      if (e && sameTarget(e.target, clean)) {
        // the first line for the target is replaced in place, later duplicates dropped
        if (!found && entry !== null) out.push(raw.endsWith('\r') ? `${entry}\r` : entry);
        found = true;
      } else out.push(raw);
    }
    if (!found && entry === null) return { text: null, result: false };
    let next = out.join('\n');
    if (!found && entry !== null) {
      if (!exists) next = HEADER;
      else if (next !== '' && !next.endsWith('\n')) next += eol;
      next += entry + eol;
    }
    return { text: next, result: true };
  };
}
