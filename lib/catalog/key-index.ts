// The digest cache's index of its records: from a record's key to where the record starts in
// the cache file, without a string per key. An open-addressing hash table of offsets
// (Int32Array, linear probing, FNV-1a over the key's UTF-8 bytes) with each key's 32-bit hash
// beside its offset: a probe compares hashes, and reads a record's key (from memory while the
// snapshot is there, from the file once it is not) only when they match, i.e. about once per
// lookup. At a million files this replaces a Map holding a million key strings (~100 MB of heap
// the collector walks) with ~20 MB of integers, and needs no record in memory.
//
// Every record frame starts u32(length) u8(kind) u16(keyLength) key... (cache.ts), so the key
// of the record at `off` is at off + 7, keyLength bytes long, and a frame is at least 8 bytes:
// per-record flags (asked for, superseded) are bits indexed by offset / 8.
//
// A warm start looks its files up in the order it listed them, close to the order the snapshot
// was written in (a cold start appends records as files are hashed, in listing order give or
// take a batch; measured at 100,000 files: 99% of the lookups skip the probe): within the
// snapshot's records (`trustOrder`), a lookup first tries the record
// after the one found last (a key compare, no hashing or probing); it is taken if that record is
// still live (not superseded or deleted since: the `dead` bits).

const EMPTY = 0;
const GONE = -1;
const KEY_LEN_AT = 5;
const KEY_AT = 7;

/** Longest key (bytes) a record holds (a u16 length, 0xffff meaning null). */
const MAX_KEY = 0xfffe;
const scratch = Buffer.allocUnsafe(MAX_KEY);

/** The hash the index files a key under (FNV-1a over its bytes). */
export function keyHash(buf: Uint8Array, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ buf[i], 16777619);
  return h >>> 0;
}

/** Where the key of the record at buf[at] ends (it starts at at + KEY_AT). */
function keyEnd(buf: Uint8Array, at: number): number {
  return at + KEY_AT + (buf[at + KEY_LEN_AT] | (buf[at + KEY_LEN_AT + 1] << 8));
}

/** The key of the record at buf[at]. */
export function recordKey(buf: Buffer, at: number): string {
  return buf.toString('utf8', at + KEY_AT, keyEnd(buf, at));
}

/** keyHash of the key of the record at buf[at]. */
export function recordKeyHash(buf: Uint8Array, at: number): number {
  return keyHash(buf, at + KEY_AT, keyEnd(buf, at));
}

/** Does the record at b[at] hold the key key[from, to)? */
function holdsKey(b: Buffer, at: number, key: Uint8Array, from: number, to: number): boolean {
  const end = keyEnd(b, at);
  return end - (at + KEY_AT) === to - from && b.compare(key, from, to, at + KEY_AT, end) === 0;
}

/** Where the index reads a record it must compare keys with. */
export interface RecordSource {
  /** The buffer that `at` last returned a position in. */
  readonly buf: Buffer;
  /** Make the record frame at offset `off` readable in `buf`; where it starts there, or -1 (unreadable). */
  at(off: number): number;
}

/** Records in one buffer, at their offsets. */
class InMemory implements RecordSource {
  constructor(readonly buf: Buffer) {}
  at(off: number): number {
    return off;
  }
}

function bit(bits: Uint8Array, off: number): boolean {
  const i = off >> 3;
  return i >> 3 < bits.length && (bits[i >> 3] & (1 << (i & 7))) !== 0;
}

/** Set the bit of `off` (in a grown copy if it is past the end). */
function setBit(bits: Uint8Array, off: number): Uint8Array {
  const i = off >> 3;
  if (i >> 3 >= bits.length) {
    const grown = new Uint8Array(Math.max(64, bits.length * 2, (i >> 3) + 1));
    grown.set(bits);
    bits = grown;
  }
  bits[i >> 3] |= 1 << (i & 7);
  return bits;
}

function clearBit(bits: Uint8Array, off: number): void {
  const i = off >> 3;
  if (i >> 3 < bits.length) bits[i >> 3] &= ~(1 << (i & 7));
}

export class KeyIndex {
  /** offset + 1 of a record, EMPTY, or GONE (a deleted slot, kept for probing). */
  private table: Int32Array;
  /** Per slot: the hash of the record's key. */
  private hashes: Uint32Array;
  /** Per record (bit off >> 3): was its key asked for (get) since it was added? */
  private asked: Uint8Array = new Uint8Array(0);
  /** Per record (bit off >> 3): superseded or deleted (only the records in the ordered range are marked). */
  private dead: Uint8Array = new Uint8Array(0);
  /** The range of records in file order that the next-record hint may use (see trustOrder). */
  private orderFrom = 0;
  private orderTo = 0;
  /** Where the record after the one found last starts. */
  private next = -1;
  private mask: number;
  private live = 0;
  private filled = 0;
  private source: RecordSource;

  constructor(records: Buffer | RecordSource, expected = 0) {
    this.source = Buffer.isBuffer(records) ? new InMemory(records) : records;
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.table = new Int32Array(cap);
    this.hashes = new Uint32Array(cap);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.live;
  }

  /** Read the records from elsewhere from now on (the same records at the same offsets). */
  setSource(records: RecordSource): void {
    this.source = records;
  }

  /** Where probe() would put the key it did not find. */
  private free = -1;

  /** The slot holding the key key[from, to) whose hash is h, or -1 (then `free` says where it would go). */
  private probe(key: Uint8Array, from: number, to: number, h: number): number {
    let i = h & this.mask;
    let free = -1;
    for (;;) {
      const v = this.table[i];
      if (v === EMPTY) {
        this.free = free === -1 ? i : free;
        return -1;
      }
      if (v === GONE) {
        if (free === -1) free = i;
      } else if (this.hashes[i] === h) {
        const src = this.source;
        const at = src.at(v - 1);
        if (at >= 0 && holdsKey(src.buf, at, key, from, to)) return i;
      }
      i = (i + 1) & this.mask;
    }
  }

  /** The key as bytes in the scratch buffer (null: too long to be a key). */
  private encode(key: string): number | null {
    if (key.length > MAX_KEY) return null;
    const n = scratch.write(key, 0);
    return n < MAX_KEY ? n : null;
  }

  /**
   * Every record in [from, to) is indexed unless superseded or deleted since, and they are
   * contiguous (a snapshot's): lookups may try the record after the last one found. (0, 0): off.
   */
  trustOrder(from: number, to: number): void {
    this.orderFrom = from;
    this.orderTo = to;
    this.next = from;
    if (to === 0) this.dead = new Uint8Array(0);
  }

  /** Where the record of `key` starts, if indexed. */
  get(key: string): number | undefined {
    const n = this.encode(key);
    if (n === null) return undefined;
    const src = this.source;
    const next = this.next;
    if (next >= this.orderFrom && next < this.orderTo && !bit(this.dead, next)) {
      const at = src.at(next);
      const b = src.buf;
      if (at >= 0 && holdsKey(b, at, scratch, 0, n)) {
        this.asked = setBit(this.asked, next);
        this.next = next + b.readUInt32LE(at) + 8;
        return next;
      }
    }
    const slot = this.probe(scratch, 0, n, keyHash(scratch, 0, n));
    if (slot === -1) return undefined;
    const off = this.table[slot] - 1;
    this.asked = setBit(this.asked, off);
    if (this.orderTo > 0 && off >= this.orderFrom && off < this.orderTo) {
      const at = src.at(off);
      this.next = at >= 0 ? off + src.buf.readUInt32LE(at) + 8 : -1;
    }
    return off;
  }

  /** Index the record at `off` (replacing the record of the same key, if any). */
  add(off: number): void {
    const src = this.source;
    const at = src.at(off);
    if (at < 0) return;
    const b = src.buf;
    const h = recordKeyHash(b, at);
    const slot = this.probe(b, at + KEY_AT, keyEnd(b, at), h);
    if (slot !== -1) {
      this.gone(this.table[slot] - 1);
      this.table[slot] = off + 1;
      clearBit(this.asked, off);
      return;
    }
    this.put(this.free, off, h);
  }

  /**
   * Index the record at `off`, whose key has hash `h` and is known not to be indexed (a record
   * just written for a key that was not): no key is read.
   */
  addNew(off: number, h: number): void {
    let i = h & this.mask;
    while (this.table[i] > 0) i = (i + 1) & this.mask;
    this.put(i, off, h);
  }

  private put(slot: number, off: number, h: number): void {
    if (this.table[slot] === EMPTY) this.filled++;
    this.table[slot] = off + 1;
    this.hashes[slot] = h;
    clearBit(this.asked, off);
    this.live++;
    if (this.filled * 4 > this.table.length * 3) this.rehash();
  }

  /** Forget the record of the key of the record at `off` (a delete record). */
  removeKeyOf(off: number): boolean {
    this.gone(off);
    const src = this.source;
    const at = src.at(off);
    if (at < 0) return false;
    const b = src.buf;
    return this.clear(this.probe(b, at + KEY_AT, keyEnd(b, at), recordKeyHash(b, at)));
  }

  /** Forget `key`; true if it was indexed. */
  remove(key: string): boolean {
    const n = this.encode(key);
    return n !== null && this.clear(this.probe(scratch, 0, n, keyHash(scratch, 0, n)));
  }

  /** The record at `off` is no longer an entry (the hint must not take it). */
  private gone(off: number): void {
    if (off >= this.orderFrom && off < this.orderTo) this.dead = setBit(this.dead, off);
  }

  private clear(slot: number): boolean {
    if (slot === -1) return false;
    this.gone(this.table[slot] - 1);
    this.table[slot] = GONE;
    this.live--;
    return true;
  }

  /** The offsets of every indexed record (in table order); `unasked`: only of keys never asked for. */
  *offsets(unasked = false): IterableIterator<number> {
    const t = this.table;
    for (let i = 0; i < t.length; i++) if (t[i] > 0 && !(unasked && bit(this.asked, t[i] - 1))) yield t[i] - 1;
  }

  /** The offsets of every indexed record, in ascending order (the order of the file). */
  sortedOffsets(): Int32Array {
    const out = new Int32Array(this.live);
    const t = this.table;
    let k = 0;
    for (let i = 0; i < t.length; i++) if (t[i] > 0) out[k++] = t[i] - 1;
    return out.sort();
  }

  /** The key of the record at `off` (null: unreadable). */
  keyAt(off: number): string | null {
    const src = this.source;
    const at = src.at(off);
    if (at < 0) return null;
    return recordKey(src.buf, at);
  }

  private rehash(): void {
    const old = this.table;
    const oldHashes = this.hashes;
    let cap = 16;
    while (cap < this.live * 4) cap *= 2;
    this.table = new Int32Array(cap);
    this.hashes = new Uint32Array(cap);
    this.mask = cap - 1;
    this.filled = 0;
    // Keys are unique: each goes to the first empty slot of its probe sequence.
    for (let i = 0; i < old.length; i++) {
      if (old[i] <= 0) continue;
      let j = oldHashes[i] & this.mask;
      while (this.table[j] !== EMPTY) j = (j + 1) & this.mask;
      this.table[j] = old[i];
      this.hashes[j] = oldHashes[i];
      this.filled++;
    }
  }
}
