// Load generation: many connections, no pipelining, requests spread over a list of paths.
// wrk (C; Debian's package, installed by `npm run deps:system`) when it is on the PATH: it drives
// a bare node:http server to ~47,000 req/s on 2 cores, where autocannon (Node) saturates near
// 16,000 and would hide the difference between the servers. autocannon otherwise.

import { execFile, execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  non2xx: number;
  errors: number;
  /** Response bytes per second. */
  throughput: number;
}

/** A small deterministic PRNG (mulberry32), so both servers see the same request mix. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffle<T>(items: T[], seed: number): T[] {
  const out = items.slice();
  const r = rng(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export interface LoadOptions {
  paths: string[];
  headers: Record<string, string>;
  seconds: number;
  connections: number;
}

function hasWrk(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (err) {
    // wrk --version prints its banner and exits 1; only a missing binary is ENOENT.
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** Which load generator `load` uses on this machine. */
export const LOAD_GENERATOR: 'wrk' | 'autocannon' = process.env.PYPI_LITE_BENCH_AUTOCANNON === '1' || !hasWrk() ? 'autocannon' : 'wrk';

export function load(url: string, opts: LoadOptions): Promise<LoadResult> {
  return LOAD_GENERATOR === 'wrk' ? loadWrk(url, opts) : loadAutocannon(url, opts);
}

// Each wrk thread reads the path and header lists, seeds its own random sequence (the same
// sequences for every server), picks a random path per request and, at the end, prints one JSON
// line with the totals and latency percentiles (microseconds).
const WRK_SCRIPT = `
local dir = os.getenv("PYPI_LITE_WRK_DIR")
local paths = {}
for line in io.lines(dir .. "/paths") do paths[#paths + 1] = line end
local headers = {}
for line in io.lines(dir .. "/headers") do
  local k, v = line:match("^([^:]+): (.*)$")
  if k then headers[k] = v end
end
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", 1000 + counter)
end
function init(args)
  math.randomseed(seed)
end
function request()
  return wrk.format("GET", paths[math.random(#paths)], headers)
end
function done(summary, latency, requests)
  io.write(string.format('{"requests":%d,"durationUs":%d,"bytes":%d,"p50":%d,"p99":%d,"status":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
`;

interface WrkSummary {
  requests: number;
  durationUs: number;
  bytes: number;
  p50: number;
  p99: number;
  status: number;
  connect: number;
  read: number;
  write: number;
  timeout: number;
}

async function loadWrk(url: string, opts: LoadOptions): Promise<LoadResult> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pypi-lite-wrk-'));
  try {
    await fsp.writeFile(path.join(dir, 'paths'), `${opts.paths.join('\n')}\n`);
    await fsp.writeFile(path.join(dir, 'headers'), Object.entries(opts.headers).map(([k, v]) => `${k}: ${v}\n`).join(''));
    await fsp.writeFile(path.join(dir, 'script.lua'), WRK_SCRIPT);
    const threads = Math.max(1, Math.min(2, opts.connections));
    // wrk takes whole seconds only ("2.5s" makes it exit with nothing on stdout).
    const args = ['-t', String(threads), '-c', String(opts.connections), '-d', `${Math.max(1, Math.round(opts.seconds))}s`, '--timeout', '10s', '-s', path.join(dir, 'script.lua'), url];
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile('wrk', args, { env: { ...process.env, PYPI_LITE_WRK_DIR: dir }, maxBuffer: 1 << 20 }, (err, out, errOut) => {
        if (err) reject(new Error(`wrk failed: ${err.message}\n${errOut}`));
        else resolve(out);
      });
    });
    const line = stdout.split('\n').find((l) => l.startsWith('{"requests"'));
    if (!line) throw new Error(`wrk printed no summary:\n${stdout}`);
    const r = JSON.parse(line) as WrkSummary;
    const seconds = r.durationUs / 1e6;
    return {
      rps: r.requests / seconds,
      p50: Math.round(r.p50 / 10) / 100, // ms, two decimals
      p99: Math.round(r.p99 / 10) / 100,
      requests: r.requests,
      non2xx: r.status,
      errors: r.connect + r.read + r.write + r.timeout,
      throughput: r.bytes / seconds,
    };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

async function loadAutocannon(url: string, opts: LoadOptions): Promise<LoadResult> {
  const base = opts.paths.map((p) => ({ method: 'GET' as const, path: p, headers: opts.headers }));
  let clientNo = 0;
  const result = await autocannon({
    url,
    connections: opts.connections,
    pipelining: 1,
    duration: opts.seconds,
    requests: base,
    setupClient: (client) => {
      // Distinct request objects per connection: autocannon caches the encoded request on them.
      const mine = shuffle(opts.paths, 1000 + clientNo++).map((p) => ({ method: 'GET' as const, path: p, headers: opts.headers }));
      client.setRequests(mine);
    },
  });
  return {
    rps: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    throughput: result.throughput.average,
  };
}
