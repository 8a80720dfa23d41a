// Builders for the benchmark's distributions: real (small) wheels with a .dist-info/METADATA,
// WHEEL and RECORD, and sdists with <name>-<ver>/PKG-INFO, named the many ways real projects
// are named (mixed case, '.', '_' and '-').

import { createHash } from 'node:crypto';
import { once } from 'node:events';
import zlib from 'node:zlib';
import tarStream from 'tar-stream';
import { zipBuffer, zipParts, type ZipInput } from './zip.js';

/** The display name of project number i (unique after PEP 503 normalization). */
export function projectName(i: number): string {
  const id = String(i).padStart(5, '0');
  switch (i % 4) {
    case 0:
      return `Proj.Name_${id}-x`;
    case 1:
      return `proj-name-${id}-lib`;
    case 2:
      return `PROJ_NAME.${id}.Core`;
    default:
      return `projname${id}`;
  }
}

/** Version number j of a project: releases, some release candidates and post releases. */
export function versionOf(j: number): string {
  const base = `${1 + Math.floor(j / 4)}.${j % 4}.0`;
  if (j % 5 === 4) return `${base}rc1`;
  if (j % 9 === 8) return `${base}.post1`;
  return base;
}

export function requiresPythonOf(i: number, j: number): string | null {
  if (i % 3 === 0) return '>=3.8';
  if (i % 3 === 1 && j >= 2) return '>=3.9,<4';
  return null;
}

/** The modern escaped form of a name, as in wheel file names and .dist-info directories. */
export function escapeName(name: string): string {
  return name.replace(/[-_.]+/g, '_').toLowerCase();
}

export interface Dist {
  filename: string;
  data: Buffer;
}

function metadataText(name: string, version: string, requiresPython: string | null, metadataVersion: string): string {
  return (
    `Metadata-Version: ${metadataVersion}\n` +
    `Name: ${name}\n` +
    `Version: ${version}\n` +
    `Summary: Benchmark project ${name}\n` +
    `Author-email: Bench <bench@example.invalid>\n` +
    `License: MIT\n` +
    (requiresPython ? `Requires-Python: ${requiresPython}\n` : '') +
    `Requires-Dist: requests>=2\n` +
    `Classifier: Programming Language :: Python :: 3\n` +
    `Description-Content-Type: text/markdown\n` +
    `\n# ${name}\n\nA project of the pypi-lite benchmark corpus.\n`
  );
}

function recordHash(data: Buffer): string {
  return `sha256=${createHash('sha256').update(data).digest('base64url')}`;
}

/**
 * A wheel. `payload` adds a stored (uncompressed) data file, e.g. 100 MB of random bytes, with
 * its CRC precomputed by the caller; returns the zip as parts so the payload is not copied.
 */
export function wheelParts(
  name: string,
  version: string,
  opts: { requiresPython?: string | null; keepCase?: boolean; payload?: { data: Buffer; crc: number; sha256: string } } = {},
): { filename: string; parts: Buffer[] } {
  const escaped = escapeName(name);
  const fileStem = opts.keepCase ? name.replace(/-/g, '_') : escaped;
  const mod = escaped;
  const distInfo = `${escaped}-${version}.dist-info`;
  const files: ZipInput[] = [];
  const init = Buffer.from(`"""${name}"""\n__version__ = "${version}"\n\ndef hello():\n    return ${JSON.stringify(name)}\n`);
  files.push({ name: `${mod}/__init__.py`, data: init });
  if (opts.payload) files.push({ name: `${mod}/data.bin`, data: opts.payload.data, store: true, crc: opts.payload.crc });
  const metadata = Buffer.from(metadataText(name, version, opts.requiresPython ?? null, '2.3'));
  const wheel = Buffer.from('Wheel-Version: 1.0\nGenerator: pypi-lite-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n');
  files.push({ name: `${distInfo}/METADATA`, data: metadata }, { name: `${distInfo}/WHEEL`, data: wheel });
  const record =
    files
      .map((f) => {
        const hash = f.data === opts.payload?.data ? `sha256=${Buffer.from(opts.payload.sha256, 'hex').toString('base64url')}` : recordHash(f.data);
        return `${f.name},${hash},${f.data.length}`;
      })
      .join('\n') + `\n${distInfo}/RECORD,,\n`;
  files.push({ name: `${distInfo}/RECORD`, data: Buffer.from(record) });
  return { filename: `${fileStem}-${version}-py3-none-any.whl`, parts: zipParts(files) };
}

export function wheel(name: string, version: string, opts: { requiresPython?: string | null; keepCase?: boolean } = {}): Dist {
  const { filename, parts } = wheelParts(name, version, opts);
  return { filename, data: Buffer.concat(parts) };
}

export async function sdist(name: string, version: string, opts: { requiresPython?: string | null; keepCase?: boolean } = {}): Promise<Dist> {
  const stem = `${opts.keepCase ? name : escapeName(name)}-${version}`;
  const mod = escapeName(name);
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const ended = once(pack, 'end');
  const mtime = new Date('2024-01-01T00:00:00Z');
  const add = (path: string, text: string) => pack.entry({ name: `${stem}/${path}`, size: Buffer.byteLength(text), mode: 0o644, mtime }, text);
  add('PKG-INFO', metadataText(name, version, opts.requiresPython ?? null, '2.2'));
  add(
    'pyproject.toml',
    `[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n[project]\nname = "${name}"\nversion = "${version}"\n`,
  );
  add(`src/${mod}/__init__.py`, `__version__ = "${version}"\n`);
  pack.finalize();
  await ended;
  return { filename: `${stem}.tar.gz`, data: zlib.gzipSync(Buffer.concat(chunks), { level: 6 }) };
}

/** The wheel + sdist of one release of project i. */
export async function release(i: number, j: number): Promise<Dist[]> {
  const name = projectName(i);
  const version = versionOf(j);
  const requiresPython = requiresPythonOf(i, j);
  // Independent of the name pattern (i % 4), so every pattern appears both ways.
  const keepCase = Math.floor(i / 4) % 2 === 1;
  return [wheel(name, version, { requiresPython, keepCase }), await sdist(name, version, { requiresPython, keepCase })];
}

export { zipBuffer };
