// Test helpers that drive the real program: spawn `bin/pypi-lite serve` on port 0, wait for
// the URL it prints, and run real pip / twine against it with a clean environment.

import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = path.join(REPO, 'bin', 'pypi-lite');
export const EXAMPLE = path.join(REPO, 'packages-dir-example');

export interface Spawned {
  url: string;
  port: number;
  proc: ChildProcess;
  /** Everything the server printed so far (stdout + stderr). */
  output(): string;
  /** Parsed JSON log lines so far. */
  logs(): Record<string, unknown>[];
  /**
   * The log lines that match, once at least `count` do (or after timeoutMs, however many do).
   * The server writes access-log lines in batches, each within about a second (lib/core/log.ts).
   */
  waitForLogs(match: (line: Record<string, unknown>) => boolean, count?: number, timeoutMs?: number): Promise<Record<string, unknown>[]>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function spawnServer(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Spawned> {
  const proc = spawn(process.execPath, [BIN, 'serve', '-p', '0', '-H', '127.0.0.1', '--log-level', 'info', ...args], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), opts.timeoutMs ?? 20_000);
    const check = () => {
      const m = /--index-url (http:\/\/[^\s]+?)\/simple\//.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.stdout.off('data', check);
        resolve(m[1]);
      }
    };
    proc.stdout.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
  });
  const port = Number(new URL(url).port);
  const logs = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return {};
        }
      });
  return {
    url,
    port,
    proc,
    output: () => out,
    logs,
    waitForLogs: async (match, count = 1, timeoutMs = 5_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = logs().filter(match);
        if (found.length >= count || Date.now() > deadline) return found;
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Wait until the server's /health says the catalog is loaded and hashed. */
export async function waitHealthy(url: string, opts: { idle?: boolean; timeoutMs?: number } = {}): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  for (;;) {
    try {
      const r = await fetch(`${url}/health`);
      if (r.status === 200) {
        const body = (await r.json()) as { hashing: number };
        if (!opts.idle || body.hashing === 0) return;
      }
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error('server never became healthy');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** An environment in which pip sees only what the test gives it (no global config, no PIP_*). */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PIP_') && !k.startsWith('TWINE_')) env[k] = v;
  return { ...env, PIP_CONFIG_FILE: '/dev/null', PIP_DISABLE_PIP_VERSION_CHECK: '1', PIP_NO_CACHE_DIR: '1', PYTHONDONTWRITEBYTECODE: '1', ...extra };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A finished command for an assertion message: its exit code and the tails of its output. */
export function describeRun(r: RunResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout.slice(-3000)}\n--- stderr\n${r.stderr.slice(-3000)}`;
}

export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: opts.env ?? cleanEnv(), cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    p.stdin.end(opts.input ?? '');
  });
}

/** `python3 -m pip ...` with a clean environment. */
export function pip(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return run('python3', ['-m', 'pip', ...args], { env: cleanEnv(env) });
}

/** Debian's twine, non-interactive, without progress bars. */
export function twine(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return run('twine', args, { env: cleanEnv({ TWINE_NON_INTERACTIVE: '1', ...env }) });
}

export interface Twined {
  code: number | null;
  /** stdout + stderr with runs of white space folded to one space (rich wraps long lines). */
  out: string;
}

/** twine with a wide console, so that messages are not wrapped in the middle. */
export async function tw(args: string[]): Promise<Twined> {
  const r = await twine(args, { COLUMNS: '400', NO_COLOR: '1' });
  return { code: r.code, out: `${r.stdout}\n${r.stderr}`.replace(/\s+/g, ' ') };
}

export async function tempDir(prefix = 'pypi-lite-test-'): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
}

/** A copy of packages-dir-example in a temp dir (tests must not write into the repo). */
export async function copyExample(): Promise<string> {
  const dir = await tempDir('pypi-lite-root-');
  await fsp.cp(EXAMPLE, dir, { recursive: true, filter: (src) => !path.basename(src).startsWith('.pypi-lite') });
  return dir;
}

/** Build a tiny real project with `python3 -m build --no-isolation` (Debian's build + hatchling). */
export async function buildProject(name: string, version: string, opts: { requiresPython?: string; dir?: string } = {}): Promise<string[]> {
  const src = await tempDir('pypi-lite-src-');
  const mod = name.toLowerCase().replace(/[-.]+/g, '_');
  await fsp.mkdir(path.join(src, 'src', mod), { recursive: true });
  await fsp.writeFile(path.join(src, 'src', mod, '__init__.py'), `__version__ = "${version}"\n`);
  await fsp.writeFile(path.join(src, 'README.md'), `# ${name}\n\nTest package.\n`);
  await fsp.writeFile(
    path.join(src, 'pyproject.toml'),
    `[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "${name}"
version = "${version}"
description = "test package ${name}"
readme = "README.md"
${opts.requiresPython ? `requires-python = "${opts.requiresPython}"\n` : ''}
[tool.hatch.build.targets.wheel]
packages = ["src/${mod}"]
`,
  );
  const out = opts.dir ?? (await tempDir('pypi-lite-dist-'));
  const r = await run('/usr/bin/python3', ['-m', 'build', '--no-isolation', '--skip-dependency-check', '--outdir', out, src], {
    env: { ...cleanEnv(), SOURCE_DATE_EPOCH: '1700000000' },
  });
  if (r.code !== 0) throw new Error(`build failed: ${r.stdout}\n${r.stderr}`);
  const files = (await fsp.readdir(out)).filter((f) => f.endsWith('.whl') || f.endsWith('.tar.gz'));
  return files.map((f) => path.join(out, f));
}
