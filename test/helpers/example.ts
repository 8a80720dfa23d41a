// What packages-dir-example holds, written down independently of the code under test (from its
// README.md), so that the serving tests can compare the server's answers against it.

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { sha256 } from './http.js';

export interface ExampleFile {
  /** Path relative to the root, '/'-separated. */
  relPath: string;
  /** Normalized project name. */
  project: string;
  version: string;
  kind: 'wheel' | 'sdist';
  /** From the README; only documented for pypi-lite-demo. */
  requiresPython?: string;
}

export const EXAMPLE_FILES: readonly ExampleFile[] = [
  { relPath: 'pypi_lite_demo-1.0.0-py3-none-any.whl', project: 'pypi-lite-demo', version: '1.0.0', kind: 'wheel', requiresPython: '>=3.6' },
  { relPath: 'pypi_lite_demo-1.0.0.tar.gz', project: 'pypi-lite-demo', version: '1.0.0', kind: 'sdist', requiresPython: '>=3.6' },
  { relPath: 'pypi_lite_demo-1.1.0-py3-none-any.whl', project: 'pypi-lite-demo', version: '1.1.0', kind: 'wheel', requiresPython: '>=3.7' },
  { relPath: 'pypi_lite_demo-1.1.0.tar.gz', project: 'pypi-lite-demo', version: '1.1.0', kind: 'sdist', requiresPython: '>=3.7' },
  { relPath: 'pypi_lite_demo-2.0.0-py3-none-any.whl', project: 'pypi-lite-demo', version: '2.0.0', kind: 'wheel', requiresPython: '>=3.9' },
  { relPath: 'pypi_lite_demo-2.0.0.tar.gz', project: 'pypi-lite-demo', version: '2.0.0', kind: 'sdist', requiresPython: '>=3.9' },
  { relPath: 'fancy_mixed_name-0.3.1-py3-none-any.whl', project: 'fancy-mixed-name', version: '0.3.1', kind: 'wheel' },
  { relPath: 'fancy_mixed_name-0.3.1.tar.gz', project: 'fancy-mixed-name', version: '0.3.1', kind: 'sdist' },
  { relPath: 'sdist-only-tool-0.9.tar.gz', project: 'sdist-only-tool', version: '0.9', kind: 'sdist' },
  { relPath: 'pypi_lite_extras-0.1.0-py3-none-any.whl', project: 'pypi-lite-extras', version: '0.1.0', kind: 'wheel' },
  { relPath: 'legacy/pypi_lite_extras-0.1.0.tar.gz', project: 'pypi-lite-extras', version: '0.1.0', kind: 'sdist' },
];

/** Project names as their metadata writes them (the README: `Name: Fancy.Mixed_Name`). */
export const DISPLAY_NAMES: Readonly<Record<string, string>> = {
  'pypi-lite-demo': 'pypi-lite-demo',
  'fancy-mixed-name': 'Fancy.Mixed_Name',
  'sdist-only-tool': 'sdist-only-tool',
  'pypi-lite-extras': 'pypi-lite-extras',
};

export const EXAMPLE_PROJECTS: readonly string[] = [...new Set(EXAMPLE_FILES.map((f) => f.project))].sort();

export function filesOf(project: string): ExampleFile[] {
  return EXAMPLE_FILES.filter((f) => f.project === project);
}

export function basename(relPath: string): string {
  return relPath.split('/').pop()!;
}

/** Every non-hidden regular file with a distribution extension below a root ('/'-separated). */
export async function distFilesOnDisk(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(path.join(dir, e.name), r);
      else if (e.isFile() && /\.(whl|tar\.gz|zip)$/.test(e.name)) out.push(r);
    }
  };
  await walk(root, '');
  return out.sort();
}

/** sha256 of every example file, read from a root holding a copy of the example. */
export async function hashesIn(root: string): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (const f of EXAMPLE_FILES) m.set(f.relPath, sha256(await fsp.readFile(path.join(root, f.relPath))));
  return m;
}
