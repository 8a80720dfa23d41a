// The lifecycle of one streaming extraction: it settles exactly once (success, failure or
// timeout), then releases every stream and file descriptor before its promise resolves.

import type { EventEmitter } from 'node:events';
import { archiveError } from './archive-errors.js';
import type { ArchiveError, ExtractLimits, ExtractResult } from './types.js';

export const DEFAULT_LIMITS: ExtractLimits = Object.freeze({
  maxMetadataBytes: 8 * 1024 * 1024,
  maxRatio: 200,
  maxScanBytes: 512 * 1024 * 1024,
  maxEntries: 200_000,
  timeoutMs: 10_000,
});

/** How long cleanup may wait for file descriptors to be closed before resolving anyway. */
const CLOSE_GRACE_MS = 2_000;
/** setTimeout's largest delay; bigger values (and Infinity) would fire immediately. */
const MAX_TIMER_MS = 2_147_483_647;

export function resolveLimits(partial: Partial<ExtractLimits> | undefined): ExtractLimits {
  const pick = (key: keyof ExtractLimits): number => {
    const v = partial?.[key];
    return typeof v === 'number' && !Number.isNaN(v) && v >= 0 ? v : DEFAULT_LIMITS[key];
  };
  return {
    maxMetadataBytes: pick('maxMetadataBytes'),
    maxRatio: pick('maxRatio'),
    maxScanBytes: pick('maxScanBytes'),
    maxEntries: pick('maxEntries'),
    timeoutMs: Math.min(Math.max(pick('timeoutMs'), 1), MAX_TIMER_MS),
  };
}

export function noop(): void {
  /* swallow late events from destroyed streams */
}

export function waitForEvent(emitter: EventEmitter, event: string): Promise<void> {
  return new Promise<void>((resolve) => emitter.once(event, () => resolve()));
}

type Cleanup = () => Promise<void> | void;

/**
 * One extraction: settles exactly once (success, failure or timeout), runs the
 * registered cleanups, waits (bounded) for them, then resolves.
 */
export class Job {
  readonly promise: Promise<ExtractResult>;
  private resolveFn: (r: ExtractResult) => void = noop;
  private done = false;
  private readonly timer: NodeJS.Timeout;
  private readonly cleanups: Cleanup[] = [];

  constructor(timeoutMs: number) {
    this.promise = new Promise<ExtractResult>((resolve) => {
      this.resolveFn = resolve;
    });
    this.timer = setTimeout(() => this.fail(archiveError('TIMEOUT', 'timed out')), timeoutMs);
  }

  get settled(): boolean {
    return this.done;
  }

  onCleanup(fn: Cleanup): void {
    this.cleanups.push(fn);
  }

  succeed(bytes: Buffer, entry: string): void {
    this.finish({ ok: true, bytes, entry });
  }

  fail(error: ArchiveError): void {
    this.finish(error);
  }

  /** Settles with the selection's final answer. */
  settle(result: ExtractResult): void {
    this.finish(result);
  }

  private finish(result: ExtractResult): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    const waits: Promise<void>[] = [];
    for (const fn of this.cleanups) {
      try {
        const p = fn();
        if (p) waits.push(p.catch(noop));
      } catch {
        /* cleanup must never prevent resolution */
      }
    }
    if (waits.length === 0) {
      this.resolveFn(result);
      return;
    }
    let grace: NodeJS.Timeout | undefined;
    const graceP = new Promise<void>((resolve) => {
      grace = setTimeout(resolve, CLOSE_GRACE_MS);
    });
    void Promise.race([Promise.all(waits), graceP]).then(() => {
      clearTimeout(grace);
      this.resolveFn(result);
    });
  }
}
