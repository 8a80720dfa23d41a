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
// It also takes the uploaded file off busboy's hands, but only a part busboy itself took as the
// file: when a part's header looks like the `content` file, the guard waits until busboy has
// parsed everything before it, passes the header's last bytes and looks whether busboy's
// consumer (the storage engine, called synchronously from busboy's 'file' event) `claim`ed the
// part meanwhile. If it did, that part's body goes to the claimant's Writable (hashed and
// written in large batches) and busboy gets the part with an empty body; if busboy refused the
// header, skipped the part or failed, the part goes to busboy as any other. The guard finds the
// part's end with one Buffer.indexOf per chunk, which it does anyway; busboy's own search
// (Boyer-Moore-Horspool in JavaScript) and its file stream cost another 1-2 s of CPU per GB on
// top of that, about what the whole bare streaming baseline costs (bench/).

import { Writable } from 'node:stream';
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
/** The most body bytes busboy gets along with a diverted part's header (a body that starts like a boundary needs more than one). */
const MAX_ECHO = 256;
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

/** Where scan() stopped: a part that looks like the content file, the last bytes of its header not passed on yet. */
interface Candidate {
  header: Buffer;
  /** What busboy's boundary search has seen of the part so far (its last bytes: "\r\n" and the header block). */
  context: Buffer;
  /** The bytes after the header, to scan once the verdict is in. */
  rest: Buffer;
}

/** What the storage engine sees of the guard (see FormGuard.claim). */
export interface FileDiverter {
  /** Is busboy parsing the header of the part the guard holds right now? */
  claimable(): boolean;
  /**
   * Take that part: its body goes into `sink` (ended at the part's end, destroyed if it is cut
   * short). Returns how many of its first bytes busboy gets too (the guard writes them into the
   * sink as well): what busboy needs to see past the header before it reports it.
   */
  claim(sink: Writable): number;
}

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

export class FormGuard extends Writable implements FileDiverter {
  private readonly needle: Buffer;
  /** Bytes held back because they may begin a boundary (fewer than the needle's length). */
  private tail: Buffer = EMPTY;
  private state: State = { kind: 'skip' };
  private failed = false;
  /** Bytes at the start of what was scanned that the body does not hold (the CRLF put before it). */
  private virtual: number;
  /** The last bytes of a candidate's header, and its context (set when consume() stops at its body). */
  private held: Buffer = EMPTY;
  private context: Buffer = EMPTY;
  /** The body bytes busboy gets along with a candidate's header. */
  private echo = 0;
  /** A candidate waiting for more of its body (see echoLength). */
  private waiting: Candidate | null = null;
  /** Writes to the target whose callback has not come yet, and who waits for them all. */
  private writing = 0;
  private idle: (() => void) | null = null;
  /** True while the target parses a candidate's header: a claim now takes that part. */
  private asking = false;
  /** The sink of a claim, until the guard starts writing into it. */
  private claimed: Writable | null = null;
  /** One file per request is diverted. */
  private diverted = false;
  readonly budget: FieldBudget;

  /** Passes the body on to `target` (busboy), and ends it when the body ends. */
  constructor(
    boundary: string,
    limits: FormLimits,
    private readonly target: Writable,
  ) {
    super();
    this.needle = Buffer.from(`\r\n--${boundary}`); // UTF-8, as busboy's search does
    // Like busboy, take the body as if preceded by CRLF, so that a boundary at its very start counts.
    this.tail = CRLF;
    this.virtual = CRLF.length;
    this.budget = new FieldBudget(limits);
  }

  claimable(): boolean {
    return this.asking && this.claimed === null && !this.destroyed;
  }

  claim(sink: Writable): number {
    if (!this.claimable()) {
      sink.destroy(new Error('the form guard holds no file part'));
      return 0;
    }
    this.claimed = sink;
    this.diverted = true;
    sink.once('error', (err: Error) => this.destroy(err));
    return this.echo;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.next(chunk, false, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.next(EMPTY, true, (err) => {
      if (err) return cb(err);
      // A body that ends inside the diverted file: the file is incomplete. busboy reports the
      // form's end as an error (the sink fails quietly, not failing the guard).
      if (this.state.kind === 'divert') {
        this.state.sink.destroy();
        this.state = { kind: 'file' };
      }
      this.target.end();
      cb();
    });
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // A file still being diverted will not be complete: its sink fails (and its owner cleans up).
    const sink = this.state.kind === 'divert' ? this.state.sink : this.claimed;
    this.claimed = null;
    if (sink && !sink.writableEnded) sink.destroy(err ?? new Error('the upload was cut short'));
    cb(err);
  }

  /** Fail from outside (a field busboy parsed is over its limit). */
  reject(err: HttpError): void {
    if (this.failed) return;
    this.failed = true;
    this.destroy(err);
  }

  private next(chunk: Buffer, final: boolean, cb: (err?: Error | null) => void): void {
    const w = this.waiting;
    if (w === null) return this.run(chunk, final, cb);
    this.waiting = null;
    this.candidate({ ...w, rest: chunk.length > 0 ? Buffer.concat([w.rest, chunk]) : w.rest }, final, cb);
  }

  /** Scan a chunk (or what is left of one after a candidate) and take the next once there is room. */
  private run(chunk: Buffer, final: boolean, cb: (err?: Error | null) => void): void {
    if (this.destroyed) return;
    const r = this.scan(chunk, final);
    if (r instanceof HttpError) {
      this.failed = true;
      return cb(r);
    }
    if (r === null) return this.whenRoom(cb);
    this.candidate(r, final, cb);
  }

  /**
   * A part that looks like the content file. Once the target has taken everything before it,
   * pass the last bytes of its header and as few of the body's as busboy's search needs to let
   * go of them all: busboy parses the header then and there, and its consumer claims the part
   * (or not) meanwhile.
   */
  private candidate(r: Candidate, final: boolean, cb: (err?: Error | null) => void): void {
    const k = this.echoLength(r.context, r.rest);
    if (k === -1 && !final) {
      this.waiting = r; // (at most MAX_ECHO bytes of the body)
      return cb();
    }
    this.whenWritten(() => {
      if (k <= 0) {
        // The body starts with a boundary (an empty file), or is cut short: busboy reads it.
        this.send(r.header);
        return this.run(r.rest, final, cb);
      }
      const echo = r.rest.subarray(0, k);
      this.echo = k;
      this.asking = true;
      this.send(Buffer.concat([r.header, echo]), () => {
        this.asking = false;
        const sink = this.claimed;
        this.claimed = null;
        if (sink) {
          sink.write(echo);
          this.state = { kind: 'divert', sink };
        }
        this.run(r.rest.subarray(k), final, cb);
      });
    });
  }

  /**
   * How many bytes of `body` busboy must get after the part's header so that its boundary search
   * holds none of them back (the bytes it holds are those that may begin a boundary): at least
   * one, no boundary among them. 0 when the body starts with a boundary (an empty file) or
   * with too much of something like one; -1 when `body` is too short to tell.
   */
  private echoLength(context: Buffer, body: Buffer): number {
    const n = this.needle.length;
    if (body.length === 0) return -1;
    for (let k = 1; k <= Math.min(body.length, MAX_ECHO); k++) {
      const seen = Buffer.concat([context, body.subarray(0, k)]);
      if (seen.indexOf(this.needle) !== -1) return 0;
      let held = 0;
      for (let len = Math.min(n - 1, seen.length); len > 0 && held === 0; len--) {
        if (seen.subarray(seen.length - len).equals(this.needle.subarray(0, len))) held = len;
      }
      if (held === 0) return k;
    }
    return body.length < MAX_ECHO ? -1 : 0;
  }

  /** Write to the target, counting the write until its callback (which is skipped once destroyed). */
  private send(buf: Buffer, then?: () => void): void {
    this.writing++;
    this.target.write(buf, (err) => {
      this.writing--;
      if (err || this.destroyed) return;
      if (then) then();
      if (this.writing === 0 && this.idle) {
        const idle = this.idle;
        this.idle = null;
        idle();
      }
    });
  }

  private whenWritten(next: () => void): void {
    if (this.writing === 0) next();
    else this.idle = next;
  }

  /** Call back once the target and the diverted file's sink can take more. */
  private whenRoom(cb: (err?: Error | null) => void): void {
    const full = this.target.writableNeedDrain
      ? this.target
      : this.state.kind === 'divert' && this.state.sink.writableNeedDrain
        ? this.state.sink
        : null;
    if (!full) return cb();
    const go = (): void => {
      full.off('drain', go);
      full.off('close', go);
      if (!this.destroyed) this.whenRoom(cb);
    };
    full.on('drain', go);
    full.on('close', go);
  }

  /** Pass data[start, end) on (minus the CRLF put before the body). */
  private pass(data: Buffer, start: number, end: number): void {
    if (this.virtual > 0) {
      const skip = Math.min(this.virtual, end - start);
      start += skip;
      this.virtual -= skip;
    }
    if (start < end) this.send(start === 0 && end === data.length ? data : data.subarray(start, end));
  }

  private endDivert(): void {
    if (this.state.kind !== 'divert') return;
    this.state.sink.end();
    this.state = { kind: 'file' };
  }

  /** Scan a chunk: an error, the candidate it stopped at, or null (all of it taken). */
  private scan(chunk: Buffer, final: boolean): HttpError | Candidate | null {
    const n = this.needle.length;
    const tail = this.tail;
    this.tail = EMPTY;
    let data = chunk;
    let pos = 0;
    if (tail.length > 0 && chunk.length < n) {
      data = Buffer.concat([tail, chunk]); // a small chunk: copy it
    } else if (tail.length > 0) {
      // A boundary split between the held-back bytes and this chunk starts in the former: look
      // at their junction only, rather than copying the whole chunk behind them.
      const junction = Buffer.concat([tail, chunk.subarray(0, n - 1)]);
      const at = junction.indexOf(this.needle);
      if (at !== -1) {
        const r = this.consume(junction, 0, at);
        if (r !== null) return this.stopped(r, junction, chunk.subarray(n - 1));
        this.endPart();
        pos = at + n - tail.length;
      } else {
        const r = this.consume(tail, 0, tail.length);
        if (r !== null) return this.stopped(r, tail, chunk);
      }
    }
    for (;;) {
      const at = data.indexOf(this.needle, pos);
      if (at === -1) break;
      const r = this.consume(data, pos, at);
      if (r !== null) return this.stopped(r, data, EMPTY);
      this.endPart();
      pos = at + n;
    }
    // Hold back what could be the start of a boundary split across chunks.
    const keep = final ? 0 : Math.min(n - 1, data.length - pos);
    const r = this.consume(data, pos, data.length - keep);
    if (r !== null) return this.stopped(r, data, EMPTY);
    this.tail = keep ? Buffer.from(data.subarray(data.length - keep)) : EMPTY;
    return null;
  }

  /** consume() returned an error, or the offset in `data` of a candidate's body (`more` follows `data`). */
  private stopped(r: HttpError | number, data: Buffer, more: Buffer): HttpError | Candidate {
    if (r instanceof HttpError) return r;
    // No boundary straddles the offset (the search found every one that starts before it).
    const rest = more.length > 0 ? Buffer.concat([data.subarray(r), more]) : data.subarray(r);
    const { held: header, context } = this;
    this.held = EMPTY;
    this.context = EMPTY;
    return { header, context, rest };
  }

  /** A boundary: the part before it is complete. */
  private endPart(): void {
    this.endDivert();
    this.pass(this.needle, 0, this.needle.length);
    this.state = { kind: 'after-boundary', seen: '' };
  }

  /**
   * Account for data[start, end): bytes that are not part of a boundary. Passes them on (or
   * diverts them). Returns an error, the offset of a candidate's body (its header's last bytes
   * in `held`, not passed on), or null.
   */
  private consume(data: Buffer, start: number, end: number): HttpError | number | null {
    while (start < end) {
      const s = this.state;
      switch (s.kind) {
        case 'skip':
        case 'file':
          this.pass(data, start, end);
          return null;
        case 'divert':
          s.sink.write(start === 0 && end === data.length ? data : data.subarray(start, end));
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
          const next = this.classify(block.subarray(0, stop + 2).toString('latin1'));
          if (next === 'candidate') {
            // Its last bytes (at least the header's final LF) wait for run().
            this.state = { kind: 'file' };
            this.held = data.subarray(start, bodyStart);
            this.context = Buffer.concat([CRLF, block.subarray(0, stop + HEADER_END.length)]);
            return bodyStart;
          }
          this.pass(data, start, bodyStart);
          this.state = next;
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

  /**
   * File or text field, from a part's header block (busboy's rule: a filename, or octet-stream).
   * A file part named `content` (until one is diverted) is a candidate: busboy has the last word.
   */
  private classify(head: string): State | 'candidate' {
    const disposition = /^content-disposition:[ \t]*(.*)$/im.exec(head)?.[1] ?? null;
    if (disposition === null || !/^form-data\b/i.test(disposition)) return { kind: 'skip' };
    const m = /;\s*name\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(disposition);
    const name = m ? (m[1] ?? m[2] ?? '') : '';
    if (/;\s*filename\*?\s*=/i.test(disposition) || /^content-type:[ \t]*application\/octet-stream/im.test(head)) {
      return name === 'content' && !this.diverted ? 'candidate' : { kind: 'file' };
    }
    return { kind: 'field', name, size: 0, limit: fieldLimit(this.budget.limits, name) };
  }
}
