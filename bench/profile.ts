// Summarize V8 CPU profiles (.cpuprofile, as written by `node --cpu-prof`): the functions with
// the most self time, per profile (one per thread: tid 0 in the file name is the main thread).
//
//   node dist/bench/profile.js <dir or files...> [--top N]

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface CpuNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: CpuNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  file: string;
  thread: string;
  totalMs: number;
  /** Time not idle (program + GC + functions). */
  busyMs: number;
  top: { name: string; where: string; ms: number; pct: number }[];
}

function shortUrl(url: string): string {
  if (!url) return '';
  const u = url.replace(/^file:\/\//, '');
  const i = u.indexOf('/node_modules/');
  if (i !== -1) return u.slice(i + 1);
  const d = u.indexOf('/dist/');
  if (d !== -1) return u.slice(d + 1);
  return u.startsWith('node:') ? u : path.basename(u);
}

export async function summarize(file: string, top = 20): Promise<ProfileSummary> {
  const prof = JSON.parse(await fsp.readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i + 1] ?? 0; // the delta of the next sample is this sample's duration
    self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt);
  }
  const agg = new Map<string, { name: string; where: string; us: number }>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const cf = n.callFrame;
    total += us;
    if (cf.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const where = cf.url ? `${shortUrl(cf.url)}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName}|${where}`;
    const e = agg.get(key) ?? { name: cf.functionName || '(anonymous)', where, us: 0 };
    e.us += us;
    agg.set(key, e);
  }
  const busy = total - idle;
  const m = /\.(\d+)\.(\d+)\.(\d+)\.cpuprofile$/.exec(file);
  const thread = m ? (m[2] === '0' ? `pid ${m[1]} main thread` : `pid ${m[1]} worker thread ${m[2]}`) : path.basename(file);
  return {
    file,
    thread,
    totalMs: total / 1000,
    busyMs: busy / 1000,
    top: [...agg.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({ name: e.name, where: e.where, ms: e.us / 1000, pct: busy ? (100 * e.us) / busy : 0 })),
  };
}

export function formatSummary(s: ProfileSummary): string {
  const lines = [`${s.thread}: ${(s.busyMs / 1000).toFixed(2)} s busy of ${(s.totalMs / 1000).toFixed(2)} s  (${path.basename(s.file)})`];
  for (const t of s.top) lines.push(`  ${t.ms.toFixed(0).padStart(7)} ms ${t.pct.toFixed(1).padStart(5)}%  ${t.name}  ${t.where}`);
  return lines.join('\n');
}

export async function profileFiles(args: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const a of args) {
    const st = await fsp.stat(a);
    if (st.isDirectory()) for (const f of (await fsp.readdir(a)).sort()) if (f.endsWith('.cpuprofile')) files.push(path.join(a, f));
    if (st.isFile()) files.push(a);
  }
  return files;
}

async function main(): Promise<void> {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0); // piped into head
    throw err;
  });
  const args = process.argv.slice(2);
  let top = 25;
  const ti = args.indexOf('--top');
  if (ti !== -1) {
    top = Number(args[ti + 1]);
    args.splice(ti, 2);
  }
  for (const f of await profileFiles(args)) process.stdout.write(`${formatSummary(await summarize(f, top))}\n\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
