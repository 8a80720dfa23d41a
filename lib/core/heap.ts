// V8's heap growth for the serving process. After each full collection V8 lets the old
// generation grow to a multiple of what survived before it collects again: up to 4x when
// collections are cheap. A cold start promotes short-lived work (results on their way to the
// catalog, digest-cache records waiting to be appended) at ~20 MB/s into a heap whose live part
// is ~45 MB at 100,000 files: with V8's multiple the old generation reached ~150 MB before its
// next full collection, and the process' peak RSS 335 MB; at 1.3x it peaks at ~215 MB, and
// project pages measured no slower. While the catalog loads (the first scan) almost everything
// allocated stays live, and a tight growth only adds full collections (at 1,000,000 files 17
// instead of 4, and 10-20% more warm-start time): V8 keeps its own growth until then, and for
// a large heap after it (the garbage is a smaller share of it, and each full collection marks
// more). (`npm run bench`; README: Performance.)
//
// While a large body streams in (an upload's file), the growth is 2x: with 30% of a 40 MB heap
// as the margin, a 100 MB upload set off 3-5 full collections of the whole catalog (the
// socket's 64 KiB chunks are memory outside the heap, which V8 weighs against its limits
// too): 410-620 ms of CPU (all threads) per upload, 300-420 at 2x (100,000 files; 2x and 3x
// measured alike). V8's own growth did not do: after a quiet spell it chose ~1.1x and the
// collections went on. 2x holds from the first stream's start (at V8's next full collection)
// until no stream has run for a second; then the tight growth is back, with one full
// collection to apply it at once (and free what the upload left). A large heap keeps V8's own.

import v8 from 'node:v8';
import vm from 'node:vm';

/** Once the catalog is loaded, below LARGE_HEAP: the old generation may grow by this much (percent of what survived) between full collections. */
export const HEAP_GROWING_PERCENT = 30;
/** From this much heap in use on, V8 chooses the growth (a growing percent of 0 is "V8's own"). */
export const LARGE_HEAP = 128 * 1024 * 1024;
/** How often the heap's size is looked at once loaded (a change takes effect at the next full collection). */
const CHECK_MS = 250;
/** The growing percent while a large body streams in (and QUIET_MS after), instead of HEAP_GROWING_PERCENT. */
export const STREAM_GROWING_PERCENT = 100;
/** After the last stream ended, the streams' growth holds this much longer (the next file of a `twine upload` is on its way). */
const QUIET_MS = 1000;

/** The growing percent for a loaded catalog's heap with this many bytes in use. */
export function growingPercentFor(usedBytes: number): number {
  return usedBytes < LARGE_HEAP ? HEAP_GROWING_PERCENT : 0;
}

const USER_FLAG = /(?:^|\s)--heap[-_]growing[-_]percent\b/;

/** The heap growth of a server, as above; changes nothing when node was given its own (--heap-growing-percent=N). */
export class HeapTuning {
  /** Does the server choose the heap's growth (node was not given its own)? */
  readonly enabled: boolean;
  private timer: NodeJS.Timeout | null = null;
  private current = -1;
  /** Streams running now, and when the last one ended. */
  private streams = 0;
  private lastStreamEnd = -Infinity;
  private readonly usedHeap: () => number;
  private readonly checkMs: number;
  private readonly quietMs: number;

  /**
   * `usedHeap`: the bytes of heap in use; `checkMs`, `quietMs`: the intervals above (a test's
   * stand-ins for V8's figure and for the times).
   */
  constructor(
    o: { execArgv?: readonly string[]; nodeOptions?: string; usedHeap?: () => number; checkMs?: number; quietMs?: number } = {},
  ) {
    const execArgv = o.execArgv ?? process.execArgv;
    const nodeOptions = o.nodeOptions ?? process.env.NODE_OPTIONS ?? '';
    this.enabled = !execArgv.some((a) => USER_FLAG.test(a)) && !USER_FLAG.test(nodeOptions);
    this.usedHeap = o.usedHeap ?? ((): number => v8.getHeapStatistics().used_heap_size);
    this.checkMs = o.checkMs ?? CHECK_MS;
    this.quietMs = o.quietMs ?? QUIET_MS;
  }

  /** The growing percent set now (-1: none yet, 0: V8's own). */
  get growingPercent(): number {
    return this.current;
  }

  /**
   * The catalog is loaded: from now on by the heap's size. With a small heap, also one full
   * collection now: V8 computes the limit at a full collection, and the last one (during the
   * load) set it with V8's own multiple, which would hold until the heap reached it (in 1 of 3
   * cold starts measured, the old generation grew from 46 to 117 MB before the next one, peak
   * RSS 333 MB instead of ~215). It also frees what the load let go of at once (the digest
   * cache's snapshot, 18.5 MB at 100,000 files).
   */
  loaded(): void {
    if (!this.enabled || this.timer) return;
    this.check(true);
    this.timer = setInterval(() => this.check(false), this.checkMs);
    this.timer.unref();
  }

  /**
   * A large body starts streaming in (an upload's file): STREAM_GROWING_PERCENT instead of the
   * tight growth until it ends (call the function returned, once) and QUIET_MS more.
   */
  streaming(): () => void {
    this.streams++;
    if (this.timer && this.current === HEAP_GROWING_PERCENT) this.set(STREAM_GROWING_PERCENT);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.streams--;
      this.lastStreamEnd = performance.now();
    };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Set the growth for now; `first`: the catalog was just loaded. */
  private check(first: boolean): void {
    const streaming = this.streams > 0 || performance.now() - this.lastStreamEnd < this.quietMs;
    const bySize = growingPercentFor(this.usedHeap());
    const wasRelaxed = this.current === STREAM_GROWING_PERCENT;
    this.set(streaming && bySize === HEAP_GROWING_PERCENT ? STREAM_GROWING_PERCENT : bySize);
    // The tight growth after the load or after streams: a full collection applies it now rather
    // than at V8's next one (and frees what the streams left). Not when the heap's size alone
    // crosses LARGE_HEAP: a heap that hovers there would be collected at every crossing.
    if (this.current === HEAP_GROWING_PERCENT && (first || wasRelaxed)) fullCollection();
  }

  private set(percent: number): void {
    if (!this.enabled || percent === this.current) return;
    this.current = percent;
    v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
  }
}

/**
 * Run a full garbage collection: node's own `gc` when it was started with --expose-gc, else the
 * one V8 gives a new context once the flag is set (the flag changes nothing else: no context
 * of ours gets a `gc` global).
 */
function fullCollection(): void {
  const own = (globalThis as { gc?: () => void }).gc;
  if (own) return own();
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

