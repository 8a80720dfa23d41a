/**
 * Slows down repeated authentication failures per client address.
 *
 * A client may fail `freeFailures` times within `windowMs` without penalty;
 * after that, each further attempt is answered only after a delay that starts
 * at 250 ms and doubles with every additional failure in the window, capped at
 * `maxDelayMs`. A success forgets the client. At most `maxClients` clients are
 * tracked; the one whose last failure is oldest is evicted first.
 */

export interface FailureThrottleOptions {
  /** Failures within the window that cost nothing (default 5). */
  freeFailures?: number;
  /** Sliding window in which failures are counted (default 60 000 ms). */
  windowMs?: number;
  /** Upper bound of the delay (default 5 000 ms). */
  maxDelayMs?: number;
  /** Number of clients tracked at most (default 10 000). */
  maxClients?: number;
  /** Clock in milliseconds (default: performance.now, which is monotonic). */
  now?: () => number;
}

const BASE_DELAY_MS = 250;

function option(value: number | undefined, fallback: number, name: string, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < min) throw new RangeError(`FailureThrottle: ${name} must be a number >= ${min}`);
  return value;
}

export class FailureThrottle {
  private readonly freeFailures: number;
  private readonly windowMs: number;
  private readonly maxDelayMs: number;
  private readonly maxClients: number;
  private readonly now: () => number;
  /** Number of failures beyond which the delay no longer grows: only that many timestamps are kept. */
  private readonly keep: number;
  /** client -> times of its recent failures, oldest first. Map order = least recently failed first. */
  private readonly clients = new Map<string, number[]>();

  constructor(opts: FailureThrottleOptions = {}) {
    this.freeFailures = Math.floor(option(opts.freeFailures, 5, 'freeFailures', 0));
    this.windowMs = option(opts.windowMs, 60_000, 'windowMs', 0);
    this.maxDelayMs = option(opts.maxDelayMs, 5_000, 'maxDelayMs', 0);
    this.maxClients = Math.floor(option(opts.maxClients, 10_000, 'maxClients', 1));
    this.now = opts.now ?? (() => performance.now());
    const doublings = this.maxDelayMs > BASE_DELAY_MS ? Math.ceil(Math.log2(this.maxDelayMs / BASE_DELAY_MS)) : 0;
    this.keep = Math.max(this.freeFailures, 1) + doublings + 1;
  }

  /** Number of clients currently tracked. */
  get size(): number {
    return this.clients.size;
  }

  /** Milliseconds to wait before answering this client's next authentication attempt. */
  delayFor(client: string): number {
    const times = this.recent(client);
    if (!times) return 0;
    if (times.length < this.freeFailures) return 0;
    // The first penalised attempt waits BASE_DELAY_MS (with freeFailures = 0, that is the one after the first failure).
    const doublings = times.length - Math.max(this.freeFailures, 1);
    return Math.min(this.maxDelayMs, BASE_DELAY_MS * 2 ** doublings);
  }

  /** Record a failed authentication attempt. */
  fail(client: string): void {
    const now = this.now();
    const times = this.recent(client) ?? [];
    times.push(now);
    if (times.length > this.keep) times.splice(0, times.length - this.keep);
    // Re-insert so that Map order stays "least recently failed first".
    this.clients.delete(client);
    while (this.clients.size >= this.maxClients) {
      const oldest = this.clients.keys().next();
      if (oldest.done) break;
      this.clients.delete(oldest.value);
    }
    this.clients.set(client, times);
  }

  /** Record a successful authentication: the client starts afresh. */
  succeed(client: string): void {
    this.clients.delete(client);
  }

  /** The client's failures still inside the window (pruned in place), or undefined. */
  private recent(client: string): number[] | undefined {
    const times = this.clients.get(client);
    if (!times) return undefined;
    const cutoff = this.now() - this.windowMs;
    let expired = 0;
    while (expired < times.length && times[expired] <= cutoff) expired++;
    if (expired > 0) times.splice(0, expired);
    if (times.length === 0) {
      this.clients.delete(client);
      return undefined;
    }
    return times;
  }
}
