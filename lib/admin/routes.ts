// Authenticated administration over HTTP: yank / unyank (PEP 592). Same credentials as
// uploads (the route table, lib/routes.ts, requires `update` before the body is read). Body
// as JSON or a form: target = "project==version" or a file name, reason = text.
//
//   curl -u alice -d target=demo==1.0 -d reason='broken on Windows' http://box:8080/api/yank
//   curl -u alice -d target=demo==1.0 http://box:8080/api/unyank

import express, { type Request, type RequestHandler, type Response } from 'express';
import type { CatalogView } from '../catalog/catalog.js';
import { parseTarget, editYankFile, editYankList, normalizeReason } from '../catalog/yank.js';
import type { StoredTextFile } from '../store/types.js';
import { versionsEqual } from '../catalog/version.js';
import { httpError } from '../core/errors.js';

export interface AdminDeps {
  catalog: CatalogView;
  roots: string[];
  /** Re-read yank files now rather than at the next poll. */
  reloadYanks: () => Promise<void>;
  /** Roots whose store keeps the yank list (an S3 root: in the bucket), by root id. */
  yankLists?: ReadonlyMap<string, StoredTextFile>;
}

/** The roots holding files the target names (the first root when none does, for a release). */
export function rootsFor(catalog: CatalogView, roots: string[], target: string): string[] {
  const t = parseTarget(target);
  if (!t) return [];
  const found = new Set<string>();
  if (t.kind === 'release') {
    const p = catalog.project(t.project);
    for (const f of p?.files.values() ?? []) if (versionsEqual(f.version, t.version)) found.add(f.root);
  } else {
    for (const p of catalog.projects()) for (const f of p.files.values()) if (f.filename === t.filename) found.add(f.root);
  }
  return roots.filter((r) => found.has(r));
}

/** The handlers of POST /api/yank and /api/unyank (body parsers first; see lib/routes.ts). */
export function adminRoutes(deps: AdminDeps): { yank: RequestHandler[]; unyank: RequestHandler[] } {
  const parsers = [express.json({ limit: '16kb' }), express.urlencoded({ extended: false, limit: '16kb' })];
  const handler = (yank: boolean) => async (req: Request, res: Response): Promise<void> => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const target = typeof body.target === 'string' ? body.target.trim() : '';
    // Stored and shown as one line of text: the answer repeats the reason as pip will show it.
    const reason = typeof body.reason === 'string' ? normalizeReason(body.reason) : '';
    if (!parseTarget(target)) throw httpError('MISSING_FIELD', 'target (project==version or a file name)');
    const roots = rootsFor(deps.catalog, deps.roots, target);
    if (!roots.length) throw httpError('FILE_NOT_FOUND', target);
    let changed = false;
    for (const root of roots) {
      const change = yank ? { yank: true as const, reason } : { yank: false as const };
      const list = deps.yankLists?.get(root);
      changed = (await (list ? editYankList(list, target, change) : editYankFile(root, target, change))) || changed;
    }
    if (!yank && !changed) throw httpError('NOT_FOUND', `${target} is not yanked`);
    await deps.reloadYanks();
    res.type('text/plain').send(yank ? `Yanked ${target}${reason ? ` (reason: ${reason})` : ''}\n` : `Unyanked ${target}\n`);
  };
  return { yank: [...parsers, handler(true)], unyank: [...parsers, handler(false)] };
}
