// Warming up process.nextTick before the server's modules load (bin/pypi-lite runs it first
// for `serve`). Node calls nextTick several times per request from its own stream code (a
// request's end, dump and destroy; a response's finish), and each call builds its tick object
// with a literal whose first keys are computed. Under Node 20 and 22, in this server, V8 took
// the slow path for that literal from the start-up on (`perf`: its runtime functions
// Runtime_DefineKeyedOwnPropertyInLiteral and JSObject::MigrateToMap under nextTick; a bare
// node:http server shows neither), and nextTick cost ~4 µs of a page's ~35-50 µs of main-thread
// CPU. Run 20,000 times first, before any of our code (12 ms), nextTick is compiled on clean
// feedback and stays on the fast path: project pages measured 13-18% less main-thread CPU per
// request on Node 20 (JSON and HTML) and 14% on Node 22 (two servers alive at once under
// alternating wrk load, 100,000 files); ten calls were not enough. Under Node 24 the path was
// fast either way: -8% and +5% in two runs, within their noise.

/** How many ticks: enough for V8 to optimize nextTick (measured: 20,000 did, 10 did not). */
export const WARM_TICKS = 20_000;

/** Run `ticks` empty ticks, one after the other; resolves after the last. */
export function warmNextTick(ticks = WARM_TICKS): Promise<void> {
  return new Promise((resolve) => {
    let n = 0;
    const spin = (): void => {
      if (++n < ticks) process.nextTick(spin);
      else resolve();
    };
    process.nextTick(spin);
  });
}
