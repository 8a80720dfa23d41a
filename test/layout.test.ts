// The folders of lib/ depend on each other in one direction only: no import cycle between
// folders (type imports included: they are the design too). The top of lib/ is the composition
// root (cli, server, app, routes: each a node of its own) and nothing imports it; lib/core/ is
// the bottom (errors, config, log, digests, names, edit-file) and imports nothing of ours above
// it. docs/ARCHITECTURE.md draws the graph.

import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const LIB = fileURLToPath(new URL('../../lib/', import.meta.url));

/**
 * Folder-level edges that still close a cycle, each with who removes it. An entry that no
 * longer exists fails the test, so that the list only shrinks.
 */
const KNOWN_CYCLE_EDGES: ReadonlyArray<readonly [string, string, string]> = [];

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** The node of a file under lib/: its top folder, or the file itself at the top. */
function nodeOf(lib: string, file: string): string {
  const rel = path.relative(lib, file).split(path.sep);
  return rel.length > 1 ? rel[0] : rel[0].replace(/\.(ts|js)$/, '');
}

const SPECIFIERS = [
  /\bfrom\s*'([^']+)'/g, // import ... from, export ... from (type imports too)
  /\bimport\s*'([^']+)'/g, // side-effect imports
  /\bimport\s*\(\s*'([^']+)'\s*\)/g, // dynamic imports
  /\bnew URL\(\s*'(\.[^']+)'\s*,\s*import\.meta\.url\s*\)/g, // worker scripts
];

/** node -> the nodes it imports from (relative specifiers only; packages are not nodes). */
export function folderGraph(lib: string): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>();
  for (const file of sourceFiles(lib)) {
    const from = nodeOf(lib, file);
    const text = fs.readFileSync(file, 'utf8');
    for (const re of SPECIFIERS) {
      for (const m of text.matchAll(re)) {
        const spec = m[1];
        if (!spec.startsWith('.')) continue;
        const target = path.resolve(path.dirname(file), spec);
        if (path.relative(lib, target).startsWith('..')) continue;
        const to = nodeOf(lib, target);
        if (to === from) continue;
        if (!graph.has(from)) graph.set(from, new Map());
        const edges = graph.get(from)!;
        if (!edges.has(to)) edges.set(to, path.relative(lib, file));
      }
    }
  }
  return graph;
}

/** The strongly connected components with more than one node (Tarjan). */
export function cycles(graph: Map<string, Map<string, string>>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** Each cycle, with the edges inside it and a file that makes each edge. */
export function describeCycles(graph: Map<string, Map<string, string>>): string[] {
  return cycles(graph).map((component) => {
    const inside = new Set(component);
    const edges: string[] = [];
    for (const from of component) {
      for (const [to, file] of graph.get(from) ?? []) if (inside.has(to)) edges.push(`${from} -> ${to} (${file})`);
    }
    return `${component.join(' <-> ')}: ${edges.join(', ')}`;
  });
}

describe('source layout', function () {
  it('has no import cycle between the folders of lib/', function () {
    const graph = folderGraph(LIB);
    expect(graph.get('catalog')?.has('metadata'), 'the graph is read at all').to.equal(true);
    for (const [from, to, who] of KNOWN_CYCLE_EDGES) {
      expect(graph.get(from)?.has(to), `${from} -> ${to} is gone: remove it from KNOWN_CYCLE_EDGES (was for "${who}")`).to.equal(true);
      graph.get(from)?.delete(to);
    }
    expect(describeCycles(graph)).to.deep.equal([]);
  });

  it('keeps the composition root at the top of lib/ and lib/core/ at the bottom', function () {
    const graph = folderGraph(LIB);
    const top = fs.readdirSync(LIB).filter((n) => n.endsWith('.ts')).sort();
    expect(top).to.deep.equal(['app.ts', 'cli.ts', 'routes.ts', 'server.ts']);
    const root = new Set(['app', 'cli', 'routes', 'server']);
    for (const [from, edges] of graph) {
      if (root.has(from)) continue;
      for (const [to, file] of edges) expect(root.has(to), `${file} imports the composition root (${to})`).to.equal(false);
    }
    expect([...(graph.get('core')?.keys() ?? [])].filter((to) => to !== 'core'), 'lib/core/ imports only lib/core/').to.deep.equal([]);
  });

  it('finds a cycle when there is one', function () {
    const graph = new Map([
      ['a', new Map([['b', 'a/x.ts']])],
      ['b', new Map([['c', 'b/y.ts']])],
      ['c', new Map([['a', 'c/z.ts']])],
      ['d', new Map([['a', 'd/w.ts']])],
    ]);
    expect(describeCycles(graph)).to.deep.equal(['a <-> b <-> c: a -> b (a/x.ts), b -> c (b/y.ts), c -> a (c/z.ts)']);
  });
});
