// Helpers for the upload and auth tests: htpasswd files through the real CLI, multipart bodies
// built byte by byte (so that any filename can be sent), digests computed independently of the
// server's code, archives made with Python's own zipfile/tarfile, and raw sockets for clients
// that misbehave.

import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BIN, run, type RunResult } from './server.js';

/** `pypi-lite passwd FILE USER --password-stdin --rounds 4` (or `--delete`). */
export function passwd(file: string, user: string, password: string | null, extra: string[] = []): Promise<RunResult> {
  const args = [BIN, 'passwd', file, user, ...extra];
  if (password !== null) args.push('--password-stdin', '--rounds', '4');
  return run(process.execPath, args, { input: password ?? '' });
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

export function md5(buf: Buffer): string {
  return createHash('md5').update(buf).digest('hex');
}

/** BLAKE2b with a 256-bit digest, as twine computes it: Python's hashlib. */
export async function blake2b256(buf: Buffer): Promise<string> {
  const r = await run('/usr/bin/python3', ['-c', 'import hashlib,sys; print(hashlib.blake2b(bytes.fromhex(sys.stdin.read()), digest_size=32).hexdigest())'], {
    input: buf.toString('hex'),
  });
  if (r.code !== 0) throw new Error(`python hashlib failed: ${r.stderr}`);
  return r.stdout.trim();
}

export type Field = [name: string, value: string];
export interface FilePart {
  field?: string;
  filename: string;
  bytes: Buffer;
  /** The whole filename parameter as sent, e.g. `filename*=utf-8''a%01b.whl` (default: `filename="<filename>"`). */
  param?: string;
}

/** A multipart/form-data body, written by hand: filenames go out byte for byte (UTF-8). */
export function multipart(fields: Field[], file: FilePart | null, opts: { fileFirst?: boolean; boundary?: string } = {}): { body: Buffer; contentType: string } {
  const boundary = opts.boundary ?? `----pypi-lite-test-${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  const addField = ([name, value]: Field) =>
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`, 'utf8'));
  const addFile = (f: FilePart) => {
    chunks.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${f.field ?? 'content'}"; ${f.param ?? `filename="${f.filename}"`}\r\nContent-Type: application/octet-stream\r\n\r\n`,
        'utf8',
      ),
    );
    chunks.push(f.bytes, Buffer.from('\r\n'));
  };
  if (file && opts.fileFirst) addFile(file);
  fields.forEach(addField);
  if (file && !opts.fileFirst) addFile(file);
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** The fields twine sends for a file (overrides: a string replaces, null removes). */
export function twineFields(name: string, version: string, filename: string, bytes: Buffer, overrides: Record<string, string | null> = {}): Field[] {
  const isWheel = filename.endsWith('.whl');
  const base: Record<string, string> = {
    ':action': 'file_upload',
    protocol_version: '1',
    metadata_version: '2.1',
    name,
    version,
    filetype: isWheel ? 'bdist_wheel' : 'sdist',
    pyversion: isWheel ? 'py3' : 'source',
    summary: 'test',
    sha256_digest: sha256(bytes),
  };
  const out: Field[] = [];
  for (const [k, v] of Object.entries({ ...base, ...overrides })) if (v !== null) out.push([k, v]);
  return out;
}

export interface Answer {
  status: number;
  statusText: string;
  body: string;
  headers: Headers;
}

/** POST a multipart body with fetch. */
export async function post(url: string, mp: { body: Buffer; contentType: string }, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(url, { method: 'POST', body: mp.body, headers: { 'Content-Type': mp.contentType, ...headers }, redirect: 'manual' });
  return { status: res.status, statusText: res.statusText, body: await res.text(), headers: res.headers };
}

export function basic(user: string, password: string): Record<string, string> {
  return { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}

const PY_ARCHIVES = String.raw`
import io, json, sys, tarfile, zipfile
spec = json.load(sys.stdin)
kind, out = spec["kind"], spec["out"]
name, version = spec["name"], spec["version"]
extra = spec.get("extra", "")
pkginfo = spec.get("pkginfo") or f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: test\n\n"
if kind == "sdist":
    top = spec["top"]
    with tarfile.open(out, "w:gz") as t:
        for member, data in ((f"{top}/PKG-INFO", pkginfo), (f"{top}/extra.txt", extra)):
            b = data.encode()
            ti = tarfile.TarInfo(member); ti.size = len(b); ti.mtime = 1700000000
            t.addfile(ti, io.BytesIO(b))
elif kind == "sdist-zip":
    top = spec["top"]
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(f"{top}/PKG-INFO", pkginfo)
        z.writestr(f"{top}/extra.txt", extra)
elif kind in ("wheel", "wheel-no-metadata"):
    mod, di = spec["module"], spec["distinfo"]
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(f"{mod}/__init__.py", f"# {extra}\n")
        z.writestr(f"{di}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        if kind == "wheel":
            z.writestr(f"{di}/METADATA", pkginfo)
        z.writestr(f"{di}/RECORD", "")
else:
    raise SystemExit("unknown kind " + kind)
`;

export interface ArchiveSpec {
  kind: 'sdist' | 'sdist-zip' | 'wheel' | 'wheel-no-metadata';
  name: string;
  version: string;
  /** Makes the bytes differ between otherwise equal archives. */
  extra?: string;
  /** The whole METADATA / PKG-INFO text (default: Name, Version and Summary of the spec). */
  pkginfo?: string;
}

/** Build an archive with Python's zipfile/tarfile; returns its bytes. */
export async function pyArchive(dir: string, filename: string, spec: ArchiveSpec): Promise<Buffer> {
  const out = path.join(dir, `${Math.random().toString(16).slice(2)}-${filename}`);
  const escaped = spec.name.toLowerCase().replace(/[-_.]+/g, '_');
  const payload = {
    ...spec,
    out,
    top: `${escaped}-${spec.version}`,
    module: escaped,
    distinfo: `${escaped}-${spec.version}.dist-info`,
  };
  const r = await run('/usr/bin/python3', ['-c', PY_ARCHIVES], { input: JSON.stringify(payload) });
  if (r.code !== 0) throw new Error(`making ${filename} failed: ${r.stderr}`);
  const bytes = await fsp.readFile(out);
  await fsp.rm(out, { force: true });
  return bytes;
}

/** Temp files of interrupted or running uploads in a root. */
export async function tempUploads(root: string): Promise<string[]> {
  return (await fsp.readdir(root)).filter((n) => n.startsWith('.pypi-lite-upload-'));
}

/** Poll until `check` holds (or the time is up); returns whether it held. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 3000, stepMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A raw TCP connection to the server that collects whatever comes back. */
export class RawClient {
  readonly socket: net.Socket;
  received = '';
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => (this.received += d.toString('latin1')));
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  write(data: Buffer | string): Promise<void> {
    return new Promise((resolve) => this.socket.write(data, () => resolve()));
  }

  /** The status line's code, if a response has started. */
  status(): number | null {
    const m = /^HTTP\/1\.1 (\d{3})/.exec(this.received);
    return m ? Number(m[1]) : null;
  }
}

/** Request head of a multipart POST. */
export function postHead(pathname: string, contentType: string, contentLength: number, extra: Record<string, string> = {}): string {
  let head = `POST ${pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${contentType}\r\nContent-Length: ${contentLength}\r\n`;
  for (const [k, v] of Object.entries(extra)) head += `${k}: ${v}\r\n`;
  return `${head}\r\n`;
}

/** Files of a project as /simple/ lists them: filename -> sha256 (empty when the project is unknown). */
export async function listed(url: string, project: string): Promise<Map<string, string>> {
  const res = await fetch(`${url}/simple/${project}/`, { headers: { Accept: 'application/vnd.pypi.simple.v1+json' } });
  expect(res.status, `GET /simple/${project}/`).to.be.oneOf([200, 404]);
  if (res.status === 404) return new Map();
  const page = (await res.json()) as { files: { filename: string; hashes: { sha256: string } }[] };
  return new Map(page.files.map((f) => [f.filename, f.hashes.sha256]));
}

/** A refusal as twine shows it: this status, the reason phrase, and the body repeating it. */
export function expectRefused(ans: Answer, status: number, reason: RegExp): void {
  expect(ans.status, `${ans.status} ${ans.statusText}\n${ans.body}`).to.equal(status);
  expect(ans.statusText).to.match(reason);
  // The body repeats the message for clients that show it (twine --verbose, curl); the reason
  // phrase cannot carry control characters, so compare with those blanked out.
  expect(ans.body.replace(/[\u0000-\u001f\u007f]+/g, ' ')).to.include(ans.statusText);
}
