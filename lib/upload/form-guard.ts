// Bounds on the text fields of an upload form, enforced while the body streams in.
//
// busboy (under multer) buffers a text field until its part ends and only then reports it, and
// its limits are one size for every field: a 4 MiB `summary` would be read whole, and a form
// of many large fields would all sit on the heap. This guard sits between the request and
// busboy and follows the multipart structure itself (boundaries and part headers, never the
// values): it counts the bytes of each text part as they pass and fails the moment a field
// outgrows its own limit or the fields together outgrow theirs, so the answer goes out while
// the client is still sending. It holds at most one part header (16 KiB) and a boundary's
// length of bytes. What it cannot classify it does not count: busboy's own fieldSize (the
// largest per-field limit) and `checkField` on busboy's parsed fields still bound the memory.
//
// It also takes the uploaded file off busboy's hands: the body of the first file part named
// `content` goes to a Writable of the caller's (`divert`), hashed and written in large batches,
// and busboy gets that part with an empty body (its headers, fields and limits as before). The
// guard finds the part's end with one Buffer.indexOf per chunk, which it does anyway; busboy's
// own search (Boyer-Moore-Horspool in JavaScript) and its file stream cost another 1-2 s of CPU
// per GB on top of that, about what the whole bare streaming baseline costs (bench/).

import { Transform, type TransformCallback, type Writable } from 'node:stream';
import { HttpError, httpError } from '../core/errors.js';

export interface FormLimits {
  /** Largest value of a text field not named in `perField`, in bytes. */
  fieldSize: number;
  /** Larger (or smaller) limits for some fields by name. */
  perField: Readonly<Record<string, number>>;
  /** Largest sum of all text field values of one request, in bytes. */
  totalFieldBytes: number;
}

/**
 * What the upload form needs: metadata fields are short (a `license` may hold a whole licence
 * text, tens of KB); `description` (the README) up to 1 MiB, about what PyPI accepts.
 */
export const UPLOAD_FORM_LIMITS: FormLimits = Object.freeze({
  fieldSize: 64 * 1024,
  perField: Object.freeze({ description: 1024 * 1024 }),
  totalFieldBytes: 2 * 1024 * 1024,
});

export function fieldLimit(limits: FormLimits, name: string): number {
  return Object.hasOwn(limits.perField, name) ? limits.perField[name] : limits.fieldSize;
}

/** The largest limit of any one field (what busboy's own fieldSize is set to). */
export function largestFieldLimit(limits: FormLimits): number {
  return Math.max(limits.fieldSize, ...Object.values(limits.perField));
}

/** The boundary parameter of a multipart Content-Type, or null. */
export function boundaryOf(contentType: string | undefined): string | null {
  if (!contentType) return null;
  const m = /;\s*boundary\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(contentType);
  if (!m) return null;
  const b = m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2];
  return b ? b : null;
}

/** busboy's own cap on one part's header block. */
const MAX_HEADER_BYTES = 16 * 1024;
const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);

type State =
  | { kind: 'skip' } // preamble, epilogue, anything not counted
  | { kind: 'after-boundary'; seen: string } // the 2 bytes after a boundary: "\r\n" or "--"
  | { kind: 'header'; chunks: Buffer[]; size: number }
  | { kind: 'field'; name: string; size: number; limit: number }
  | { kind: 'file' }
  | { kind: 'divert'; sink: Writable }; // the file's body goes to the sink, not downstream

/**
 * Where the body of the file part named `name` goes instead of downstream, or null to let it
 * through. Asked once per file part; `seen` tells which text fields came before it.
 */
export type DivertFile = (name: string, seen: ReadonlySet<string>) => Writable | null;

/** Tracks the text fields' sizes (shared by the stream guard and the per-field check). */
export class FieldBudget {
  total = 0;
  constructor(readonly limits: FormLimits) {}

  /** The error for a field named `name` of `size` bytes, or null when it is within its limit. */
  over(name: string, size: number): HttpError | null {
    const limit = fieldLimit(this.limits, name);
    if (size > limit) return httpError('FIELD_TOO_LARGE', `${name.slice(0, 100)} is larger than ${limit} bytes`);
    return null;
  }

  add(bytes: number): HttpError | null {
    this.total += bytes;
    if (this.total > this.limits.totalFieldBytes) {
      return httpError('FORM_TOO_LARGE', `more than ${this.limits.totalFieldBytes} bytes of text fields`);
    }
    return null;
  }
}

export class FormGuard extends Transform {
  private readonly needle: Buffer;
  /** Bytes held back because they may begin a boundary (fewer than the needle's length). */
  private tail: Buffer;
  private state: State = { kind: 'skip' };
  private failed = false;
  /** Bytes at the start of what was scanned that the body does not hold (the CRLF put before it). */
  private virtual: number;
  /** The text fields seen so far, by name (for `divert`). */
  private readonly seen = new Set<string>();
  /** Asked for the first file part named `content` only. */
  private divertAsked = false;
  /** A diverted write returned false: wait for 'drain' before taking the next chunk. */
  private full = false;
  readonly budget: FieldBudget;

  constructor(
    boundary: string,
    limits: FormLimits,
    private readonly divert: DivertFile | null = null,
  ) {
    super();
    this.needle = Buffer.from(`\r\n--${boundary}`); // UTF-8, as busboy's search does
    // Like busboy, take the body as if preceded by CRLF, so that a boundary at its very start counts.
    this.tail = CRLF;
    this.virtual = CRLF.length;
    this.budget = new FieldBudget(limits);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const err = this.scan(chunk, false);
    if (err) return this.fail(err, cb);
    this.afterDrain(cb);
  }

  override _flush(cb: TransformCallback): void {
    const err = this.scan(EMPTY, true);
    if (err) return this.fail(err, cb);
    if (this.state.kind === 'divert') this.endDivert(); // a body that ends inside the file: busboy reports it
    this.afterDrain(cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // A file still being diverted will not be complete: its sink fails (and its owner cleans up).
    if (this.state.kind === 'divert' && !this.state.sink.writableEnded) this.state.sink.destroy(err ?? new Error('the upload was cut short'));
    cb(err);
  }

  /** Take the next chunk once the diverted file's sink has room again. */
  private afterDrain(cb: TransformCallback): void {
    if (!this.full || this.state.kind !== 'divert') {
      this.full = false;
      return cb();
    }
    const sink = this.state.sink;
    const go = (): void => {
      sink.off('drain', go);
      sink.off('close', go);
      this.full = false;
      cb();
    };
    sink.on('drain', go);
    sink.on('close', go);
  }

  /** Pass data[start, end) on (minus the CRLF put before the body). */
  private pass(data: Buffer, start: number, end: number): void {
    if (this.virtual > 0) {
      const skip = Math.min(this.virtual, end - start);
      start += skip;
      this.virtual -= skip;
    }
    if (start < end) this.push(start === 0 && end === data.length ? data : data.subarray(start, end));
  }

  private endDivert(): void {
    if (this.state.kind !== 'divert') return;
    this.state.sink.end();
    this.state = { kind: 'file' };
  }

  /** Fail from outside (a field busboy parsed is over its limit). */
  reject(err: HttpError): void {
    if (this.failed) return;
    this.failed = true;
    this.destroy(err);
  }

  private fail(err: HttpError, cb: TransformCallback): void {
    this.failed = true;
    cb(err);
  }

  private scan(chunk: Buffer, final: boolean): HttpError | null {
    const n = this.needle.length;
    let data = chunk;
    let pos = 0;
    if (this.tail.length > 0 && chunk.length < n) {
      data = Buffer.concat([this.tail, chunk]); // a small chunk: copy it
    } else if (this.tail.length > 0) {
      // A boundary split between the held-back bytes and this chunk starts in the former: look
      // at their junction only, rather than copying the whole chunk behind them.
      const junction = Buffer.concat([this.tail, chunk.subarray(0, n - 1)]);
      const at = junction.indexOf(this.needle);
      if (at !== -1) {
        const err = this.consume(junction, 0, at);
        if (err) return err;
        this.endPart();
        pos = at + n - this.tail.length;
      } else {
        const err = this.consume(this.tail, 0, this.tail.length);
        if (err) return err;
      }
    }
    for (;;) {
      const at = data.indexOf(this.needle, pos);
      if (at === -1) break;
      const err = this.consume(data, pos, at);
      if (err) return err;
      this.endPart();
      pos = at + n;
    }
    // Hold back what could be the start of a boundary split across chunks.
    const keep = final ? 0 : Math.min(n - 1, data.length - pos);
    const err = this.consume(data, pos, data.length - keep);
    this.tail = keep ? Buffer.from(data.subarray(data.length - keep)) : EMPTY;
    return err;
  }

  /** A boundary: the part before it is complete. */
  private endPart(): void {
    this.endDivert();
    this.pass(this.needle, 0, this.needle.length);
    this.state = { kind: 'after-boundary', seen: '' };
  }

  /** Account for data[start, end): bytes that are not part of a boundary. Passes them on (or diverts them). */
  private consume(data: Buffer, start: number, end: number): HttpError | null {
    while (start < end) {
      const s = this.state;
      switch (s.kind) {
        case 'skip':
        case 'file':
          this.pass(data, start, end);
          return null;
        case 'divert':
          if (!s.sink.write(start === 0 && end === data.length ? data : data.subarray(start, end))) this.full = true;
          return null;
        case 'after-boundary': {
          s.seen += String.fromCharCode(data[start]);
          this.pass(data, start, start + 1);
          start++;
          if (s.seen.length < 2) continue;
          this.state = s.seen === '\r\n' ? { kind: 'header', chunks: [], size: 0 } : { kind: 'skip' };
          continue;
        }
        case 'header': {
          const piece = data.subarray(start, end);
          s.chunks.push(piece);
          s.size += piece.length;
          const block = Buffer.concat(s.chunks, s.size);
          const stop = block.indexOf(HEADER_END);
          if (stop === -1) {
            this.pass(data, start, end);
            // busboy refuses longer headers itself: stop looking at this part.
            if (s.size > MAX_HEADER_BYTES + HEADER_END.length) this.state = { kind: 'skip' };
            else s.chunks = [Buffer.from(block)];
            return null;
          }
          // The body starts after the header's end, inside this piece: the header goes on first.
          const bodyStart = end - (s.size - (stop + HEADER_END.length));
          this.pass(data, start, bodyStart);
          this.state = this.classify(block.subarray(0, stop + 2).toString('latin1'));
          start = bodyStart;
          continue;
        }
        case 'field': {
          this.pass(data, start, end);
          const n = end - start;
          s.size += n;
          const tooLarge = s.size > s.limit ? this.budget.over(s.name, s.size) : null;
          return tooLarge ?? this.budget.add(n);
        }
      }
    }
    return null;
  }

  /** File or text field, from a part's header block (busboy's rule: a filename, or octet-stream). */
  private classify(head: string): State {
    const disposition = /^content-disposition:[ \t]*(.*)$/im.exec(head)?.[1] ?? null;
    if (disposition === null || !/^form-data\b/i.test(disposition)) return { kind: 'skip' };
    const m = /;\s*name\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(disposition);
    const name = m ? (m[1] ?? m[2] ?? '') : '';
    if (/;\s*filename\*?\s*=/i.test(disposition) || /^content-type:[ \t]*application\/octet-stream/im.test(head)) {
      if (this.divert && !this.divertAsked && name === 'content') {
        this.divertAsked = true;
        const sink = this.divert(name, this.seen);
        if (sink) {
          sink.once('error', (err: Error) => this.destroy(err));
          return { kind: 'divert', sink };
        }
      }
      return { kind: 'file' };
    }
    if (this.seen.size < 1000) this.seen.add(name);
    return { kind: 'field', name, size: 0, limit: fieldLimit(this.budget.limits, name) };
  }
}
