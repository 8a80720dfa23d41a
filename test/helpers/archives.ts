// Test-only builders and readers of Python distributions, independent of the code under test:
// archives are written and read with Python's own zipfile / tarfile / email modules (Debian's
// /usr/bin/python3), so what the tests expect is what the Python tools see.

import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { cleanEnv, run } from './server.js';

export const PYTHON = '/usr/bin/python3';

/** Run a Python script (given as text) with a JSON document on stdin; returns stdout. Throws on failure. */
export async function python(script: string, input: unknown = null): Promise<string> {
  const r = await run(PYTHON, ['-c', script], { env: cleanEnv(), input: JSON.stringify(input) });
  if (r.code !== 0) throw new Error(`python failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

const b64 = (s: string | Buffer): string => (Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8')).toString('base64');

/** Write a zip (deflated entries, in the given order) with Python's zipfile. */
export async function writeZip(file: string, entries: [string, string | Buffer][]): Promise<void> {
  await python(
    `import sys, json, base64, zipfile
doc = json.load(sys.stdin)
with zipfile.ZipFile(doc['path'], 'w', zipfile.ZIP_DEFLATED) as z:
    for name, data in doc['entries']:
        z.writestr(zipfile.ZipInfo(name, (2023, 11, 14, 22, 13, 20)), base64.b64decode(data), zipfile.ZIP_DEFLATED)
`,
    { path: file, entries: entries.map(([n, d]) => [n, b64(d)]) },
  );
}

/** Write a .tar.gz (regular files, in the given order) with Python's tarfile. */
export async function writeTarGz(file: string, entries: [string, string | Buffer][]): Promise<void> {
  await python(
    `import sys, json, base64, tarfile, io
doc = json.load(sys.stdin)
with tarfile.open(doc['path'], 'w:gz', format=tarfile.PAX_FORMAT) as t:
    for name, data in doc['entries']:
        raw = base64.b64decode(data)
        info = tarfile.TarInfo(name)
        info.size = len(raw)
        info.mtime = 1700000000
        info.mode = 0o644
        t.addfile(info, io.BytesIO(raw))
`,
    { path: file, entries: entries.map(([n, d]) => [n, b64(d)]) },
  );
}

/** A core metadata file: header lines in order, then an optional body (the description). */
export function metadataText(fields: [string, string][], body?: string): string {
  const head = fields.map(([k, v]) => `${k}: ${v}\n`).join('');
  return body === undefined ? head : `${head}\n${body}`;
}

/** The wheel-escaped form of a project name (`Foo.Bar-baz` -> `foo_bar_baz`). */
export function wheelName(name: string): string {
  return name.replace(/[-_.]+/g, '_').toLowerCase();
}

function recordHash(data: Buffer): string {
  return `sha256=${createHash('sha256').update(data).digest('base64url')}`;
}

/**
 * A small, valid, pure-Python wheel `<name>-<version>-py3-none-any.whl` in `dir`, whose
 * METADATA is exactly `metadata`. Returns its path.
 */
export async function writeWheel(dir: string, name: string, version: string, metadata: string, opts: { filename?: string } = {}): Promise<string> {
  const dist = wheelName(name);
  const info = `${dist}-${version}.dist-info`;
  const files: [string, Buffer][] = [
    [`${dist}/__init__.py`, Buffer.from(`__version__ = "${version}"\n`)],
    [`${info}/METADATA`, Buffer.from(metadata, 'utf8')],
    [`${info}/WHEEL`, Buffer.from('Wheel-Version: 1.0\nGenerator: pypi-lite-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n')],
  ];
  const record = files.map(([n, d]) => `${n},${recordHash(d)},${d.length}\n`).join('') + `${info}/RECORD,,\n`;
  const file = path.join(dir, opts.filename ?? `${dist}-${version}-py3-none-any.whl`);
  await writeZip(file, [...files, [`${info}/RECORD`, Buffer.from(record)]]);
  return file;
}

/** Bytes of every `*.dist-info/METADATA` member of a wheel, read with Python's zipfile. */
export async function wheelMetadataMembers(file: string): Promise<{ name: string; bytes: Buffer }[]> {
  const out = await python(
    `import sys, json, base64, zipfile
doc = json.load(sys.stdin)
with zipfile.ZipFile(doc['path']) as z:
    res = [[n, base64.b64encode(z.read(n)).decode()] for n in z.namelist()
           if n.count('/') == 1 and n.split('/')[0].endswith('.dist-info') and n.endswith('/METADATA')]
print(json.dumps(res))
`,
    { path: file },
  );
  return (JSON.parse(out) as [string, string][]).map(([name, data]) => ({ name, bytes: Buffer.from(data, 'base64') }));
}

/** The single METADATA of a wheel (throws unless there is exactly one). */
export async function wheelMetadata(file: string): Promise<Buffer> {
  const members = await wheelMetadataMembers(file);
  if (members.length !== 1) throw new Error(`${file}: expected one .dist-info/METADATA, found ${members.length}`);
  return members[0].bytes;
}

/** The top-level `<dir>/PKG-INFO` of an sdist, read with Python's tarfile (null if none). */
export async function sdistPkgInfo(file: string): Promise<Buffer | null> {
  const out = await python(
    `import sys, json, base64, tarfile
doc = json.load(sys.stdin)
res = None
with tarfile.open(doc['path'], 'r:gz') as t:
    for m in t.getmembers():
        parts = m.name.split('/')
        if m.isfile() and len(parts) == 2 and parts[1] == 'PKG-INFO':
            res = base64.b64encode(t.extractfile(m).read()).decode()
            break
print(json.dumps(res))
`,
    { path: file },
  );
  const v = JSON.parse(out) as string | null;
  return v === null ? null : Buffer.from(v, 'base64');
}

/** A core metadata file as Python's email parser (compat32, what pip and twine use) reads it. */
export interface PyMetadata {
  /** Lower-cased field name -> every value, in order. */
  fields: Record<string, string[]>;
  /** The message body (the long description), or null. */
  body: string | null;
}

export async function parseMetadataPy(bytes: Buffer): Promise<PyMetadata> {
  const out = await python(
    `import sys, json, base64, email.parser, email.policy
doc = json.load(sys.stdin)
# as importlib.metadata and packaging read it: UTF-8 text, then the email parser
msg = email.parser.Parser(policy=email.policy.compat32).parsestr(base64.b64decode(doc['data']).decode('utf-8'))
fields = {}
for k, v in msg.items():
    fields.setdefault(k.lower(), []).append(str(v))
body = msg.get_payload()
print(json.dumps({'fields': fields, 'body': body if body else None}))
`,
    { data: bytes.toString('base64') },
  );
  return JSON.parse(out) as PyMetadata;
}

/** hashlib.blake2b(digest_size=32) of each file, by Python. */
export async function blake2b256(files: string[]): Promise<string[]> {
  const out = await python(
    `import sys, json, hashlib
doc = json.load(sys.stdin)
print(json.dumps([hashlib.blake2b(open(p, 'rb').read(), digest_size=32).hexdigest() for p in doc]))
`,
    files,
  );
  return JSON.parse(out) as string[];
}

/** Every regular file below `dir`, relative and '/'-separated (hidden entries skipped). */
export async function listFiles(dir: string, opts: { hidden?: boolean } = {}): Promise<string[]> {
  const out: string[] = [];
  const walk = async (abs: string, rel: string): Promise<void> => {
    for (const e of await fsp.readdir(abs, { withFileTypes: true })) {
      if (!opts.hidden && e.name.startsWith('.')) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(path.join(abs, e.name), r);
      else out.push(r);
    }
  };
  await walk(dir, '');
  return out.sort();
}

/** packaging.utils.canonicalize_version of each version (PEP 440-equal versions map to the same string). */
export async function canonicalVersions(versions: string[]): Promise<string[]> {
  const out = await python(
    `import sys, json
from packaging.utils import canonicalize_version
print(json.dumps([canonicalize_version(v) for v in json.load(sys.stdin)]))
`,
    versions,
  );
  return JSON.parse(out) as string[];
}
