// Streaming file digests: sha256 (always), and md5 / blake2b-256 when asked for. Node's
// OpenSSL build offers BLAKE2b only with a 512-bit output (and BLAKE2b-256 is not a truncation
// of it), so blake2b-256 comes from hash-wasm's WebAssembly implementation.

import { createHash, type Hash } from 'node:crypto';
import type { IHasher } from 'hash-wasm';

export interface Digests {
  sha256: string;
  md5?: string;
  blake2b256?: string;
}

export class Digester {
  private readonly sha = createHash('sha256');
  private readonly md5: Hash | null;
  bytes = 0;

  private constructor(
    wantMd5: boolean,
    private readonly blake2: IHasher | null,
  ) {
    this.md5 = wantMd5 ? createHash('md5') : null;
  }

  static async create(want: { md5?: boolean; blake2b256?: boolean } = {}): Promise<Digester> {
    let blake: IHasher | null = null;
    if (want.blake2b256) {
      // hash-wasm loads with the first blake2b-256 asked for (the JSON API, an upload that sends one).
      const { createBLAKE2b } = await import('hash-wasm');
      blake = await createBLAKE2b(256);
      blake.init();
    }
    return new Digester(Boolean(want.md5), blake);
  }

  update(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.sha.update(chunk);
    this.md5?.update(chunk);
    this.blake2?.update(chunk);
  }

  digest(): Digests {
    const d: Digests = { sha256: this.sha.digest('hex') };
    if (this.md5) d.md5 = this.md5.digest('hex');
    if (this.blake2) d.blake2b256 = this.blake2.digest('hex');
    return d;
  }
}
