// Load generation with autocannon: many connections, no pipelining, requests spread over a
// list of paths (each connection walks its own shuffled copy of the list).

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

export async function load(url: string, opts: { paths: string[]; headers: Record<string, string>; seconds: number; connections: number }): Promise<LoadResult> {
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
