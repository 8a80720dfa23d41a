// A response body rendered once and served many times: its ETag (strong, from the bytes), a gzip
// copy made on first use, and the header list per content type, built once. The Simple API
// pages (lib/simple/pages.ts) are such bodies; lib/http/respond.ts sends them.

import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

export class RenderedPage {
  private gz: Buffer | null = null;
  readonly etag: string;
  readonly gzipEtag: string;

  constructor(
    readonly body: Buffer,
    readonly lastModified: string,
  ) {
    const tag = createHash('sha1').update(body).digest('base64url');
    this.etag = `"${tag}"`;
    this.gzipEtag = `"${tag}-gz"`;
  }

  private readonly blocks = new Map<string, string[]>();

  /** The response headers for this page as a flat [name, value, ...] list, built once. */
  headerBlock(contentType: string, gzip: boolean): string[] {
    const key = `${gzip ? 'g' : 'i'}${contentType}`;
    let block = this.blocks.get(key);
    if (!block) {
      const body = gzip ? this.gzip : this.body;
      block = [
        'Content-Type', contentType,
        'Vary', 'Accept, Accept-Encoding',
        'ETag', gzip ? this.gzipEtag : this.etag,
        'Last-Modified', this.lastModified,
        'Cache-Control', 'max-age=0, must-revalidate',
        'Content-Length', String(body.length),
      ];
      if (gzip) block.push('Content-Encoding', 'gzip');
      this.blocks.set(key, block);
    }
    return block;
  }

  /** The gzip-compressed body, compressed on first use. */
  get gzip(): Buffer {
    if (!this.gz) this.gz = gzipSync(this.body, { level: 6 });
    return this.gz;
  }
}
