// A response body rendered once and served many times: its ETag (strong, from the bytes), a gzip
// copy made on first use, and the header list per content type, built once. The Simple API
// pages (lib/simple/pages.ts) are such bodies; lib/http/respond.ts sends them.

import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { SECURITY_HEADERS } from './security.js';

/** One header list of a page: its content type, gzip or not, and the lists for 200 and 304. */
export interface HeaderVariant {
  contentType: string;
  gzip: boolean;
  ok: string[];
  notModified: string[];
}

export class RenderedPage {
  private gz: Buffer | null = null;
  /** Told the gzip copy's size when it is made (a cache that counts the bytes its pages hold). */
  onCompressed: ((bytes: number) => void) | null = null;
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

  /** At most one per content type and coding (a handful): a short list beats a Map keyed by a built string. */
  private readonly variants: HeaderVariant[] = [];

  /**
   * The whole header list of a 200 answer (security headers first, then the page's) and of a 304
   * (the same without Content-Length and Content-Encoding), built once per content type and
   * coding and shared by every answer: writeHead reads them and never changes them.
   */
  variant(contentType: string, gzip: boolean): HeaderVariant {
    for (const v of this.variants) if (v.contentType === contentType && v.gzip === gzip) return v;
    const body = gzip ? this.gzip : this.body;
    const ok = [
      ...SECURITY_HEADERS,
      'Content-Type', contentType,
      'Vary', 'Accept, Accept-Encoding',
      'ETag', gzip ? this.gzipEtag : this.etag,
      'Last-Modified', this.lastModified,
      'Cache-Control', 'max-age=0, must-revalidate',
      'Content-Length', String(body.length),
    ];
    if (gzip) ok.push('Content-Encoding', 'gzip');
    const notModified: string[] = [];
    for (let i = 0; i + 1 < ok.length; i += 2) {
      if (ok[i] !== 'Content-Length' && ok[i] !== 'Content-Encoding') notModified.push(ok[i], ok[i + 1]);
    }
    const v = { contentType, gzip, ok, notModified };
    this.variants.push(v);
    return v;
  }

  /** The gzip-compressed body, compressed on first use. */
  get gzip(): Buffer {
    if (!this.gz) {
      this.gz = gzipSync(this.body, { level: 6 });
      this.onCompressed?.(this.gz.length);
    }
    return this.gz;
  }
}
