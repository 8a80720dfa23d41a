import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { cleanEnv, copyExample, pip, run, spawnServer, tempDir, waitHealthy, type RunResult, type Spawned, describeRun } from './helpers/server.js';
import { EXAMPLE_FILES, basename, type ExampleFile } from './helpers/example.js';
import { JSON_V1, sha256, type ProjectJson } from './helpers/http.js';

/** Debian's pip: its interpreter has setuptools and hatchling, so sdists build offline. */
function debianPip(args: string[]): Promise<RunResult> {
  return run('/usr/bin/python3', ['-m', 'pip', ...args], { env: cleanEnv() });
}


/** pip refuses two versions of one project in one command: group files so each group has one per project. */
function batches(files: ExampleFile[]): ExampleFile[][] {
  const out: ExampleFile[][] = [];
  for (const f of files) {
    const b = out.find((x) => !x.some((y) => y.project === f.project));
    if (b) b.push(f);
    else out.push([f]);
  }
  return out;
}

describe('real pip against the server', function () {
  this.timeout(120_000);
  let root: string;
  let srv: Spawned;
  let index: string;
  const temps: string[] = [];
  const tmp = async (prefix: string) => {
    const d = await tempDir(prefix);
    temps.push(d);
    return d;
  };

  /**
   * pip takes seconds to start on a small machine, so every pip run starts at once in before()
   * and each test awaits and checks its own.
   */
  const jobs = new Map<string, Promise<unknown>>();
  function startJob<T>(name: string, fn: () => Promise<T>): void {
    const p = fn();
    p.catch(() => {}); // reported by the test that awaits it
    jobs.set(name, p);
  }
  const job = <T>(name: string) => jobs.get(name) as Promise<T>;

  /** The sha256 the project page gives for a file. */
  async function pageHash(f: ExampleFile): Promise<string> {
    const j = (await (await fetch(`${index}${f.project}/`, { headers: { accept: JSON_V1 } })).json()) as ProjectJson;
    const entry = j.files.find((x) => x.filename === basename(f.relPath));
    expect(entry, `${f.relPath} on its page`).to.not.equal(undefined);
    return entry!.hashes.sha256;
  }

  /** Whether the server answered a download of `p` with 200 (from its request log, written within about a second). */
  const served = async (p: string) => (await srv.waitForLogs((l) => l.status === 200 && l.path === p)).length > 0;

  before(async () => {
    root = await copyExample();
    srv = await spawnServer(['--disable-fallback', root]);
    index = `${srv.url}/simple/`;
    await waitHealthy(srv.url, { idle: true });

    startJob('install', async () => {
      const target = await tmp('pypi-lite-target-');
      return { target, r: await pip(['install', '--target', target, '--index-url', index, 'pypi-lite-extras']) };
    });

    startJob('extra-index', async () => {
      const empty = await tmp('pypi-lite-empty-index-');
      await fsp.mkdir(path.join(empty, 'simple'));
      await fsp.writeFile(path.join(empty, 'simple', 'index.html'), '<!DOCTYPE html>\n<html><body></body></html>\n');
      const target = await tmp('pypi-lite-target-');
      return { target, r: await pip(['install', '--target', target, '--index-url', `file://${empty}/simple/`, '--extra-index-url', index, 'pypi-lite-demo==1.1.0']) };
    });

    startJob('download', async () => {
      const dest = await tmp('pypi-lite-download-');
      const runs: Promise<{ r: RunResult; what: string }>[] = [];
      for (const batch of batches(EXAMPLE_FILES.filter((f) => f.kind === 'wheel'))) {
        const reqs = batch.map((f) => `${f.project}==${f.version}`);
        runs.push(pip(['download', '--no-deps', '--only-binary', ':all:', '-d', dest, '--index-url', index, ...reqs]).then((r) => ({ r, what: reqs.join(' ') })));
      }
      // sdists: pinned with the page's hashes (--require-hashes), built offline for their metadata
      for (const [i, batch] of batches(EXAMPLE_FILES.filter((f) => f.kind === 'sdist')).entries()) {
        const lines: string[] = [];
        for (const f of batch) lines.push(`${f.project}==${f.version} --hash=sha256:${await pageHash(f)}`);
        const req = path.join(dest, `sdists-${i}.txt`);
        await fsp.writeFile(req, `${lines.join('\n')}\n`);
        runs.push(
          debianPip(['download', '--no-deps', '--no-binary', ':all:', '--no-build-isolation', '--require-hashes', '-d', dest, '--index-url', index, '-r', req]).then((r) => ({
            r,
            what: lines.join('; '),
          })),
        );
      }
      return { dest, results: await Promise.all(runs) };
    });

    startJob('hashes', async () => {
      const f = EXAMPLE_FILES.find((x) => x.relPath === 'pypi_lite_demo-1.0.0-py3-none-any.whl')!;
      const hash = await pageHash(f);
      const dir = await tmp('pypi-lite-hashes-');
      const good = path.join(dir, 'good.txt');
      const bad = path.join(dir, 'bad.txt');
      await fsp.writeFile(good, `pypi-lite-demo==1.0.0 --hash=sha256:${hash}\n`);
      await fsp.writeFile(bad, `pypi-lite-demo==1.0.0 --hash=sha256:${sha256('something else')}\n`);
      const [ok, ko] = await Promise.all([
        pip(['download', '--no-deps', '--only-binary', ':all:', '--require-hashes', '-d', path.join(dir, 'good'), '--index-url', index, '-r', good]),
        pip(['download', '--no-deps', '--only-binary', ':all:', '--require-hashes', '-d', path.join(dir, 'bad'), '--index-url', index, '-r', bad]),
      ]);
      return { f, hash, dir, ok, ko };
    });

    startJob('py38', async () => {
      const dest = await tmp('pypi-lite-py38-');
      return { dest, r: await pip(['download', '--no-deps', '--only-binary', ':all:', '--python-version', '3.8', '-d', dest, '--index-url', index, 'pypi-lite-demo']) };
    });
  });

  after(async () => {
    await Promise.allSettled(jobs.values());
    await srv?.stop();
    for (const d of [root, ...temps]) if (d) await fsp.rm(d, { recursive: true, force: true });
  });

  it('pip install --index-url installs pypi-lite-extras and its dependency', async () => {
    const { target, r } = await job<{ target: string; r: RunResult }>('install');
    expect(r.code, describeRun(r)).to.equal(0);
    const entries = await fsp.readdir(target);
    expect(entries).to.include('pypi_lite_extras-0.1.0.dist-info');
    // the newest pypi-lite-demo whose Requires-Python allows this interpreter (3.9+): 2.0.0
    expect(entries).to.include('pypi_lite_demo-2.0.0.dist-info');
    expect(entries).to.include('pypi_lite_extras');
    expect(await served('/packages/pypi_lite_extras-0.1.0-py3-none-any.whl'), 'downloaded').to.equal(true);
    expect(await served('/packages/pypi_lite_demo-2.0.0-py3-none-any.whl'), 'downloaded').to.equal(true);
    const imp = await run('python3', ['-c', 'import sys; sys.path.insert(0, sys.argv[1]); import pypi_lite_extras, pypi_lite_demo; print("ok")', target]);
    expect(imp.stdout.trim(), describeRun(imp)).to.equal('ok');
  });

  it('pip install --extra-index-url finds the project on this server', async () => {
    const { target, r } = await job<{ target: string; r: RunResult }>('extra-index');
    expect(r.code, describeRun(r)).to.equal(0);
    expect(await fsp.readdir(target)).to.include('pypi_lite_demo-1.1.0.dist-info');
    expect(await served('/packages/pypi_lite_demo-1.1.0-py3-none-any.whl'), 'downloaded').to.equal(true);
  });

  it('pip download fetches every sample wheel and sdist byte for byte (hashes checked)', async () => {
    const { dest, results } = await job<{ dest: string; results: { r: RunResult; what: string }[] }>('download');
    for (const { r, what } of results) expect(r.code, `${what}\n${describeRun(r)}`).to.equal(0);
    for (const f of EXAMPLE_FILES) {
      const got = await fsp.readFile(path.join(dest, basename(f.relPath))).catch(() => null);
      expect(got, `${f.relPath} downloaded`).to.not.equal(null);
      const original = await fsp.readFile(path.join(root, f.relPath));
      expect(got!.equals(original), `${f.relPath} identical`).to.equal(true);
    }
  });

  it('--require-hashes succeeds with the page hash and fails with a wrong one', async () => {
    const { f, hash, dir, ok, ko } = await job<{ f: ExampleFile; hash: string; dir: string; ok: RunResult; ko: RunResult }>('hashes');
    expect(hash).to.equal(sha256(await fsp.readFile(path.join(root, f.relPath))));
    expect(ok.code, describeRun(ok)).to.equal(0);
    expect(await fsp.readdir(path.join(dir, 'good'))).to.deep.equal([basename(f.relPath)]);
    expect(ko.code, describeRun(ko)).to.not.equal(0);
    expect(`${ko.stdout}${ko.stderr}`).to.match(/DO NOT MATCH THE HASHES/i);
    const badDir = await fsp.readdir(path.join(dir, 'bad')).catch(() => [] as string[]);
    expect(badDir).to.deep.equal([]);
  });

  it('pip honours Requires-Python from the index (Python 3.8 gets pypi-lite-demo 1.1.0)', async () => {
    const { dest, r } = await job<{ dest: string; r: RunResult }>('py38');
    expect(r.code, describeRun(r)).to.equal(0);
    expect(await fsp.readdir(dest)).to.deep.equal(['pypi_lite_demo-1.1.0-py3-none-any.whl']);
  });
});
