// The digest cache's index of its snapshot: from a record's key to where the record starts in
// the snapshot buffer, without a string per key. An open-addressing hash table of offsets
// (Int32Array, linear probing, FNV-1a over the key's UTF-8 bytes), compared byte for byte
// against the key inside the buffer. At a million files this replaces a Map holding a million
// key strings (~100 MB of heap the collector walks) with 8 MB of integers.
//
// Every record frame starts u32(length) u8(kind) u16(keyLength) key... (cache.ts), so the key
// of the record at `off` is at off + 7, keyLength bytes long.

const EMPTY = 0;
const GONE = -1;
const KEY_LEN_AT = 5;
const KEY_AT = 7;

/** Longest key (bytes) a record holds (a u16 length, 0xffff meaning null). */
const MAX_KEY = 0xfffe;
const scratch = Buffer.allocUnsafe(MAX_KEY);

function fnv(buf: Uint8Array, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ buf[i], 16777619);
  return h >>> 0;
}

export class KeyIndex {
  /** offset + 1 of a record, EMPTY, or GONE (a deleted slot, kept for probing). */
  private table: Int32Array;
  /** Per slot: was the key asked for (get) since it was added? */
  private asked: Uint8Array;
  private mask: number;
  private live = 0;
  private filled = 0;

  constructor(
    private readonly buf: Buffer,
    expected = 0,
  ) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.table = new Int32Array(cap);
    this.asked = new Uint8Array(cap);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.live;
  }

  /** Where probe() would put the key it did not find. */
  private free = -1;

  /** The slot holding the key key[from, to), or -1 (then `free` says where it would go). */
  private probe(key: Uint8Array, from: number, to: number): number {
    const n = to - from;
    let i = fnv(key, from, to) & this.mask;
    let free = -1;
    for (;;) {
      const v = this.table[i];
      if (v === EMPTY) {
        this.free = free === -1 ? i : free;
        return -1;
      }
      if (v === GONE) {
        if (free === -1) free = i;
      } else {
        const off = v - 1;
        const b = this.buf;
        if ((b[off + KEY_LEN_AT] | (b[off + KEY_LEN_AT + 1] << 8)) === n && b.compare(key, from, to, off + KEY_AT, off + KEY_AT + n) === 0) return i;
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

  /** Where the record of `key` starts, if indexed. */
  get(key: string): number | undefined {
    const n = this.encode(key);
    if (n === null) return undefined;
    const slot = this.probe(scratch, 0, n);
    if (slot === -1) return undefined;
    this.asked[slot] = 1;
    return this.table[slot] - 1;
  }

  /** Index the record at `off` (replacing the record of the same key, if any). */
  add(off: number): void {
    const n = this.buf.readUInt16LE(off + KEY_LEN_AT);
    const slot = this.probe(this.buf, off + KEY_AT, off + KEY_AT + n);
    if (slot !== -1) {
      this.table[slot] = off + 1;
      this.asked[slot] = 0;
      return;
    }
    const free = this.free;
    if (this.table[free] === EMPTY) this.filled++;
    this.table[free] = off + 1;
    this.asked[free] = 0;
    this.live++;
    if (this.filled * 4 > this.table.length * 3) this.rehash();
  }

  /** Forget the record of the key of the record at `off` (a delete record). */
  removeKeyOf(off: number): boolean {
    const n = this.buf.readUInt16LE(off + KEY_LEN_AT);
    return this.clear(this.probe(this.buf, off + KEY_AT, off + KEY_AT + n));
  }

  /** Forget `key`; true if it was indexed. */
  remove(key: string): boolean {
    const n = this.encode(key);
    return n !== null && this.clear(this.probe(scratch, 0, n));
  }

  private clear(slot: number): boolean {
    if (slot === -1) return false;
    this.table[slot] = GONE;
    this.live--;
    return true;
  }

  /** The offsets of every indexed record (in table order); `unasked`: only of keys never asked for. */
  *offsets(unasked = false): IterableIterator<number> {
    const t = this.table;
    for (let i = 0; i < t.length; i++) if (t[i] > 0 && !(unasked && this.asked[i])) yield t[i] - 1;
  }

  /** The key of the record at `off`. */
  keyAt(off: number): string {
    return this.buf.toString('utf8', off + KEY_AT, off + KEY_AT + this.buf.readUInt16LE(off + KEY_LEN_AT));
  }

  private rehash(): void {
    const old = this.table;
    const oldAsked = this.asked;
    let cap = 16;
    while (cap < this.live * 4) cap *= 2;
    this.table = new Int32Array(cap);
    this.asked = new Uint8Array(cap);
    this.mask = cap - 1;
    this.live = 0;
    this.filled = 0;
    for (let i = 0; i < old.length; i++) {
      if (old[i] <= 0) continue;
      this.add(old[i] - 1);
      if (oldAsked[i]) this.asked[this.probe(this.buf, old[i] - 1 + KEY_AT, old[i] - 1 + KEY_AT + this.buf.readUInt16LE(old[i] - 1 + KEY_LEN_AT))] = 1;
    }
  }
}
