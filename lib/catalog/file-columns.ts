// Where the indexed files keep their numbers and digests: one row per file in flat typed arrays
// (sizes, times, inode, device, and the sha256 of the file and of its metadata as 32 bytes
// each), instead of a few boxed numbers, an identity object, a metadata object and two 64-char
// hex strings per file. At a million files that is ~115 bytes a file in a handful of arrays the
// garbage collector never walks, against ~330 bytes in ~8 small heap objects it had to mark on
// every major collection.
//
// A row is taken when an IndexedFile is made and given back only once that object is garbage
// (a FinalizationRegistry, armed when the catalog lets go of the file): a page being rendered or
// a download still holding the object reads its own row, never another file's.

/** Per-row flags. */
export const HAS_SHA = 1;
export const MD_KNOWN = 2;
export const MD_SOME = 4;
export const MD_SERVABLE = 8;
export const HAS_IDENTITY = 16;
/** The row is given back once its object is garbage (armed once). */
const RELEASING = 32;

const F64_FIELDS = 6;
export const SIZE = 0;
export const MTIME = 1;
export const DEV = 2;
export const INO = 3;
export const CTIME = 4;
export const MD_SIZE = 5;

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** A sha256 as every digest here is written: 64 lowercase hex digits. */
export function isSha256Hex(s: string): boolean {
  return SHA256_HEX.test(s);
}

export class FileColumns {
  private capacity = 0;
  private used = 0;
  /** Rows given back, reused first (a stack). */
  private free: number[] = [];
  f64 = new Float64Array(0);
  /** 64 bytes a row: the file's sha256, then its metadata's. */
  digests = new Uint8Array(0);
  private digestBuf = Buffer.alloc(0);
  flags = new Uint8Array(0);
  private readonly finalizer = new FinalizationRegistry<number>((row) => this.give(row));

  /** Rows in use (taken and not given back). */
  get rows(): number {
    return this.used - this.free.length;
  }

  take(): number {
    const row = this.free.pop() ?? this.used++;
    if (row >= this.capacity) this.grow();
    this.flags[row] = 0;
    const f = this.f64;
    for (let i = row * F64_FIELDS; i < row * F64_FIELDS + F64_FIELDS; i++) f[i] = 0;
    return row;
  }

  /** Give the row back once `owner` is garbage (idempotent). */
  releaseWhenUnreachable(owner: object, row: number): void {
    if (this.flags[row] & RELEASING) return;
    this.flags[row] |= RELEASING;
    this.finalizer.register(owner, row);
  }

  private give(row: number): void {
    this.flags[row] = 0;
    this.free.push(row);
  }

  /** Make room for `more` rows beyond those in use (one allocation instead of several doublings). */
  reserve(more: number): void {
    const want = this.rows + more;
    if (want > this.capacity) this.grow(want);
  }

  private grow(atLeast = 0): void {
    const next = Math.max(4096, this.capacity * 2, atLeast);
    const f64 = new Float64Array(next * F64_FIELDS);
    f64.set(this.f64);
    const digests = new Uint8Array(next * 64);
    digests.set(this.digests);
    const flags = new Uint8Array(next);
    flags.set(this.flags);
    this.f64 = f64;
    this.digests = digests;
    this.digestBuf = Buffer.from(digests.buffer, digests.byteOffset, digests.byteLength);
    this.flags = flags;
    this.capacity = next;
  }

  get(row: number, field: number): number {
    return this.f64[row * F64_FIELDS + field];
  }

  set(row: number, field: number, v: number): void {
    this.f64[row * F64_FIELDS + field] = v;
  }

  has(row: number, flag: number): boolean {
    return (this.flags[row] & flag) !== 0;
  }

  mark(row: number, flag: number, on: boolean): void {
    if (on) this.flags[row] |= flag;
    else this.flags[row] &= ~flag;
  }

  /** Digest `which` (0: the file's, 1: its metadata's) as lowercase hex. */
  hex(row: number, which: 0 | 1): string {
    const at = row * 64 + which * 32;
    return this.digestBuf.toString('hex', at, at + 32);
  }

  /** Store a sha256 given in hex; false if it is not one (nothing stored then). */
  setHex(row: number, which: 0 | 1, hex: string): boolean {
    if (!isSha256Hex(hex)) return false;
    this.digestBuf.write(hex, row * 64 + which * 32, 32, 'hex');
    return true;
  }

  /** Copy 32 digest bytes in (from a cache record). */
  setBytes(row: number, which: 0 | 1, src: Buffer, from: number): void {
    // A loop, not Buffer.copy: that makes a Uint8Array view per call (two per file of a warm
    // start: 19 MB of garbage per 100,000 files).
    const d = this.digests;
    const at = row * 64 + which * 32;
    for (let i = 0; i < 32; i++) d[at + i] = src[from + i];
  }
}

/** The one column store of the process (rows are cheap; every catalog shares it). */
export const columns = new FileColumns();
