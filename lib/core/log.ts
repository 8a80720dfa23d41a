// Logging: one pino logger, made by createLogger and injected everywhere.
//
// The convention (issue 10): a component neither creates a logger nor takes logging callbacks
// (`warn`, `onError`, `onReload`, ...). It receives a pino Logger, as a constructor argument or
// as the `log` field of its deps, and the composition root (lib/server.ts, lib/cli.ts) hands each
// one `log.child({ component: NAME })`, so that every line says which part of the server wrote it:
//   http      the access log and the error handler (lib/http/)
//   indexer   the catalog: scans, watcher events, hashing, the cache (lib/catalog/; its parts
//             add `part`: reconcile, hash-scheduler)
//   store     the package stores (lib/store/; each adds `store`: its root)
//   yank      yanked.txt
//   passwords the password file (lib/auth/)
//   upload    uploads (lib/upload/)
//   upstream  the caching proxy (lib/upstream/)
// A component that builds parts of its own passes its logger on (or a child with other fields,
// e.g. `{ part }` or `{ store }`), never a second `component` (test/log-components.test.ts). Fields first, then a constant message:
// `log.warn({ file, err: err.message }, 'cannot read the file')`, so that lines can be filtered
// by message. Never log request headers or passwords (the redaction below is a safety net).
//
// Output: JSON lines on stdout (--log-format pretty: readable lines through pino-pretty). The
// access log writes a line per request; to keep that cheap (issue 13) lines are written in
// batches of about 4 KiB with one synchronous write() each: an access-log line within
// LOG_FLUSH_MS, every other line (start-up, warnings, errors, a file added) at the next turn of
// the event loop, and whatever is left when the process exits (process.exit() included);
// `log.flush()` writes before it returns.

import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogFormat } from './config.js';

/** An access-log line waits at most this long in the buffer. */
export const LOG_FLUSH_MS = 1000;

/** Lines are handed to the file descriptor in batches of at least this many characters. */
const BATCH = 4096;

/** True while an access-log line is being written: it may wait for the batch. */
let accessLine = false;

/**
 * Batches lines in front of a synchronous pino destination: one write() per ~4 KiB of access
 * log instead of one per request, and never a write in flight, so that what was logged before
 * process.exit() is on the file descriptor when it returns. Other lines (and the batch before
 * them) are written at the next turn of the event loop.
 */
class BatchingStream implements DestinationStream {
  private batch = '';
  private soon = false;

  constructor(private readonly dest: ReturnType<typeof pino.destination>) {
    setInterval(() => this.flush(), LOG_FLUSH_MS).unref();
    // process.exit() runs 'exit' listeners only, and they can only do synchronous work.
    process.on('exit', () => this.flush());
  }

  /** An access-log line: it may wait for the batch (at most LOG_FLUSH_MS). */
  writeAccess(line: string): void {
    this.batch += line;
    if (this.batch.length >= BATCH) this.flush();
  }

  write(line: string): void {
    this.batch += line;
    if (this.batch.length >= BATCH) this.flush();
    else if (!accessLine && !this.soon) {
      this.soon = true;
      setImmediate(() => {
        this.soon = false;
        this.flush();
      });
    }
  }

  /** Write the batch now (pino's logger.flush() calls this). */
  flush(cb?: (err?: Error) => void): void {
    let error: Error | undefined;
    if (this.batch !== '') {
      const b = this.batch;
      this.batch = '';
      try {
        this.dest.write(b);
      } catch (err) {
        error = err as Error;
      }
    }
    cb?.(error);
  }
}

export function createLogger(level: string, format: LogFormat, destination: number = 1): Logger {
  const options = {
    level,
    base: { name: 'pypi-lite' },
    redact: { paths: ['req.headers.authorization', 'headers.authorization', 'password', '*.password'], censor: '[redacted]' },
  };
  if (format === 'pretty') {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { destination, colorize: false, translateTime: 'SYS:standard' } } });
  }
  const stream = new BatchingStream(pino.destination({ dest: destination, sync: true }));
  const log: BatchedLogger = pino(options, stream);
  // Children are made with Object.create(parent): they find the stream through the prototype.
  log[BATCHED] = stream;
  return log;
}

/** Where a JSON logger made by createLogger writes, for the access log's own serializer. */
const BATCHED = Symbol('pypi-lite.batched');
type BatchedLogger = Logger & { [BATCHED]?: BatchingStream };

/** The fields of the access-log line (lib/http/observe.ts). */
export interface RequestLine {
  reqId: string;
  method: string | undefined;
  path: string;
  status: number;
  bytes: number;
  ms: number;
  user: string | undefined;
  remote: string | undefined;
}

const requestLoggers = new WeakMap<Logger, Logger>();
/** Per logger, the start of its access lines: `{"level":30,"time":` and, after the time, its bindings. */
const linePrefixes = new WeakMap<Logger, string>();

/**
 * Log one request at info level, with the message 'request'. Cheap: no redaction (the fields
 * are fixed and hold no secret) and a line that may wait for its batch (see above). For the
 * JSON logger of createLogger the line is serialized here, as pino writes it (level, time, the
 * logger's bindings, the fields, msg) at a fraction of the cost; any other logger (pretty, a
 * test's) gets it through pino.
 */
export function logRequest(log: Logger, line: RequestLine): void {
  const stream = (log as BatchedLogger)[BATCHED];
  if (stream !== undefined) {
    let bindings = linePrefixes.get(log);
    if (bindings === undefined) {
      bindings = '';
      for (const [k, v] of Object.entries(log.bindings())) if (v !== undefined) bindings += `,${JSON.stringify(k)}:${JSON.stringify(v)}`;
      linePrefixes.set(log, bindings);
    }
    let out = `{"level":30,"time":${Date.now()}${bindings},"reqId":${JSON.stringify(line.reqId)}`;
    if (line.method !== undefined) out += `,"method":${JSON.stringify(line.method)}`;
    out += `,"path":${JSON.stringify(line.path)},"status":${line.status},"bytes":${line.bytes},"ms":${Number.isFinite(line.ms) ? line.ms : null}`;
    if (line.user !== undefined) out += `,"user":${JSON.stringify(line.user)}`;
    if (line.remote !== undefined) out += `,"remote":${JSON.stringify(line.remote)}`;
    stream.writeAccess(`${out},"msg":"request"}\n`);
    return;
  }
  let l = requestLoggers.get(log);
  if (l === undefined) {
    l = log.child({}, { redact: [] });
    requestLoggers.set(log, l);
  }
  accessLine = true;
  try {
    l.info(line, 'request');
  } finally {
    accessLine = false;
  }
}

export type { Logger };
