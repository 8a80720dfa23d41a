// Child processes of the benchmark (pypi-lite itself and the baseline server), and the small
// HTTP client helpers the measurements use.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(REPO, 'bin', 'pypi-lite');

/** pip's Accept header (pip >= 22.2). */
export const PIP_ACCEPT = 'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01';
export const HTML_ACCEPT = 'text/html';

export interface Proc {
  name: string;
  url: string;
  pid: number;
  proc: ChildProcess;
  /** performance.now() just before the process was spawned. */
  spawnedAt: number;
  /** The last 64 KB the process printed (empty when its output is discarded). */
  output(): string;
  /** Log lines at level warn or above (pino JSON), at most 200. */
  warnings(): string[];
  /** VmHWM (peak resident set) in bytes, or null once the process is gone. */
  peakRss(): number | null;
  /** CPU time used so far (user + system, all threads) in ms, or null once the process is gone. */
  cpuMs(): number | null;
  stop(): Promise<void>;
}

export interface PypiLiteOptions {
  root: string;
  cacheDir: string;
  htpasswd: string;
  logLevel: 'warn' | 'info';
  /** Write a V8 CPU profile (main thread and workers) into this directory on exit. */
  cpuProfDir?: string;
  name?: string;
  /** More `serve` options (e.g. --upstream), placed before the package directory. */
  extraArgs?: string[];
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export async function startPypiLite(o: PypiLiteOptions): Promise<Proc> {
  const nodeArgs = o.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`] : [];
  // At log level info every request writes a line: that output goes to /dev/null (as it would
  // go to a file or journald), so the port is chosen here instead of read from stdout.
  const discard = o.logLevel === 'info';
  const port = discard ? await freePort() : 0;
  const args = [...nodeArgs, BIN, 'serve', '-p', String(port), '-H', '127.0.0.1', '--disable-fallback', '--log-level', o.logLevel, '-P', o.htpasswd, '--cache-dir', o.cacheDir, ...(o.extraArgs ?? []), o.root];
  const name = o.name ?? `pypi-lite (${o.logLevel})`;
  if (discard) {
    const spawnedAt = performance.now();
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: REPO });
    const p = wrap(name, proc, spawnedAt, `http://127.0.0.1:${port}`);
    await waitUntil(async () => (await get(`${p.url}/health`).catch(() => null)) !== null, 30_000, `${name} did not start`);
    return p;
  }
  const spawnedAt = performance.now();
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO });
  const p = wrap(name, proc, spawnedAt, '');
  p.url = await waitForLine(proc, p, /--index-url (http:\/\/\S+?)\/simple\//, name);
  return p;
}

export async function startBaseline(args: string[]): Promise<Proc> {
  const spawnedAt = performance.now();
  const proc = spawn(process.execPath, [path.join(REPO, 'dist', 'bench', 'baseline-server.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const p = wrap('baseline', proc, spawnedAt, '');
  p.url = await waitForLine(proc, p, /listening (http:\/\/\S+)/, 'baseline');
  return p;
}

function wrap(name: string, proc: ChildProcess, spawnedAt: number, url: string): Proc {
  let out = '';
  const warns: string[] = [];
  let partial = '';
  const onData = (d: Buffer) => {
    const s = d.toString();
    out = (out + s).slice(-65536);
    partial += s;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const l of lines) {
      if (!l.startsWith('{')) continue;
      try {
        const j = JSON.parse(l) as { level?: number };
        if ((j.level ?? 0) >= 40 && warns.length < 200) warns.push(l);
      } catch {
        /* not JSON */
      }
    }
  };
  proc.stdout?.on('data', onData);
  proc.stderr?.on('data', onData);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return {
    name,
    url,
    pid: proc.pid!,
    proc,
    spawnedAt,
    output: () => out,
    warnings: () => warns,
    peakRss: () => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
        return m ? Number(m[1]) * 1024 : null;
      } catch {
        return null;
      }
    },
    cpuMs: () => cpuMsOf(proc.pid!),
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(t);
    },
  };
}

let clockTicks = 100;
try {
  clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* the usual value */
}

/** utime + stime of a process (every thread), from /proc/<pid>/stat, in ms. */
export function cpuMsOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
  } catch {
    return null;
  }
}

function waitForLine(proc: ChildProcess, p: Proc, re: RegExp, name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${p.output()}`)), 60_000);
    const check = () => {
      const m = re.exec(p.output());
      if (m) {
        clearTimeout(timer);
        proc.stdout!.off('data', check);
        resolve(m[1]);
      }
    };
    proc.stdout!.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}:\n${p.output()}`));
    });
  });
}

export async function waitUntil(cond: () => Promise<boolean> | boolean, timeoutMs: number, what: string, everyMs = 10): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export function get(url: string, headers: http.OutgoingHttpHeaders = {}, opts: { keepAlive?: boolean } = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: opts.keepAlive === false ? false : agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(60_000, () => req.destroy(new Error(`timeout: GET ${url}`)));
  });
}

export async function getJson<T>(url: string, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; json: T }> {
  const r = await get(url, headers);
  return { status: r.status, json: JSON.parse(r.body.toString('utf8')) as T };
}

/** Download a URL, counting bytes without keeping them. */
export function download(url: string): Promise<{ status: number; bytes: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.get(url, { agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** POST a body given as parts (written with backpressure, 1 MB at a time). */
export function post(url: string, headers: http.OutgoingHttpHeaders, parts: Buffer[]): Promise<{ status: number; message: string; body: string; ms: number }> {
  const length = parts.reduce((n, p) => n + p.length, 0);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(url, { method: 'POST', agent: false, headers: { ...headers, 'Content-Length': length } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, message: res.statusMessage ?? '', body, ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.on('error', reject);
    void (async () => {
      const CHUNK = 1024 * 1024;
      for (const p of parts) {
        for (let off = 0; off < p.length; off += CHUNK) {
          if (!req.write(p.subarray(off, Math.min(off + CHUNK, p.length)))) await new Promise<void>((r) => req.once('drain', () => r()));
        }
      }
      req.end();
    })().catch(reject);
  });
}
