// The two small package directories of the upstream-proxy rows: one for the upstream (a second
// pypi-lite) and one for the proxy's own local projects. Project k has the same name shape, the
// same versions and the same files on both sides (only its number differs), so a proxied page
// and a local page are of the same size. Each side also gets one big wheel of the same size (the
// cached-file download against a local one), and the upstream the files of the first-fetch
// measurement (each a distinct version of one project, so one page lists them all).

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { randomPayload, writeParts } from './corpus.js';
import { projectName, release, wheelParts } from './dists.js';

/** Project numbers of the two sides (beyond any corpus size the bench generates). */
const LOCAL_BASE = 80_000;
const UPSTREAM_BASE = 90_000;

export const UPSTREAM_BIG = 'bench-upstream-big';
export const LOCAL_BIG = 'bench-local-big';
export const UPSTREAM_FILES = 'bench-upstream-files';

export interface ProxyCorpus {
  upstreamRoot: string;
  localRoot: string;
  /** Normalized names of the proxied (upstream) and the local projects, in matching order. */
  upstreamProjects: string[];
  localProjects: string[];
  /** Versions of UPSTREAM_FILES, in order. */
  fileVersions: string[];
}

const normalize = (name: string): string => name.replace(/[-_.]+/g, '-').toLowerCase();

export async function makeProxyCorpus(o: { dir: string; projects: number; versions: number; bigBytes: number; files: number; fileBytes: number }): Promise<ProxyCorpus> {
  const upstreamRoot = path.join(o.dir, 'upstream-root');
  const localRoot = path.join(o.dir, 'proxy-root');
  await fsp.mkdir(upstreamRoot, { recursive: true });
  await fsp.mkdir(localRoot, { recursive: true });
  const jobs: [string, number, number][] = [];
  for (let k = 0; k < o.projects; k++) {
    for (let j = 0; j < o.versions; j++) jobs.push([upstreamRoot, UPSTREAM_BASE + k, j], [localRoot, LOCAL_BASE + k, j]);
  }
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < jobs.length) {
        const [root, i, j] = jobs[next++];
        for (const d of await release(i, j)) await fsp.writeFile(path.join(root, d.filename), d.data);
      }
    }),
  );
  const big = randomPayload(o.bigBytes);
  for (const [root, name] of [[upstreamRoot, UPSTREAM_BIG], [localRoot, LOCAL_BIG]]) {
    const w = wheelParts(name, '1.0', { payload: big });
    await writeParts(path.join(root, w.filename), w.parts);
  }
  const small = randomPayload(o.fileBytes);
  const fileVersions: string[] = [];
  for (let v = 0; v < o.files; v++) {
    const version = `1.${v}`;
    const w = wheelParts(UPSTREAM_FILES, version, { payload: small });
    await writeParts(path.join(upstreamRoot, w.filename), w.parts);
    fileVersions.push(version);
  }
  const names = (base: number) => Array.from({ length: o.projects }, (_, k) => normalize(projectName(base + k)));
  return { upstreamRoot, localRoot, upstreamProjects: names(UPSTREAM_BASE), localProjects: names(LOCAL_BASE), fileVersions };
}
