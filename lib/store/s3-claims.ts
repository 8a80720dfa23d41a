// Uniqueness claims across replicas on one bucket. On one box, the per-release lock and the
// catalog make sure a distribution has one file (whatever the spelling of its name) and a
// release one sdist; replicas do not share memory, and an upload through B may come before B
// has seen A's. So before an upload's put, the uploader claims (PackageStore.claim) one name per
// rule: the distribution (its distKey) and, for an sdist, the release. A claim is a small object
//
//   <prefix>.pypi-lite/claims/<name, URI-encoded>/<generation, 10 digits>.json  {key, replica}
//
// created with If-None-Match: * (of two replicas, exactly one creates a generation). The newest
// generation holds the name for its key. Another key's upload is refused while the holder is
// alive: its object exists, or the claim is younger than ttlMs (its put may still be running).
// A claim whose object never appeared (a crash between claim and put, a put that failed) or was
// removed by another tool is stale after ttlMs and is taken over by creating the next
// generation (again a conditional create: one replica wins). remove_pkg releases the claims of
// the files it removed (their generations are deleted).

import { DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';
import { RESERVED } from './s3-feed.js';
import type { ClaimResult } from './types.js';

export interface ClaimsOptions {
  client: S3Client;
  bucket: string;
  /** The root's key prefix: '' or ending in '/'. */
  prefix: string;
  log: Logger;
  /** How long a claim without its object holds the name (default 5 minutes: longer than any put). */
  ttlMs?: number;
  /** Tag written into claims (which replica took it). */
  replica?: string;
}

export const CLAIM_TTL_MS = 5 * 60_000;

interface ClaimBody {
  key: string;
  replica?: string;
}

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

export class S3Claims {
  private readonly base: string;
  private readonly ttlMs: number;

  constructor(private readonly opts: ClaimsOptions) {
    this.base = `${opts.prefix}${RESERVED}claims/`;
    this.ttlMs = opts.ttlMs ?? CLAIM_TTL_MS;
  }

  /** Claim every name for key, in order; on the first one held by another key, give back what this call took. */
  async claim(names: string[], key: string): Promise<ClaimResult> {
    const taken: string[] = [];
    for (const name of names) {
      const r = await this.claimOne(name, key);
      if (!r.granted) {
        await this.remove(taken).catch((err: unknown) => this.opts.log.warn({ err }, 'cannot give back a claim; it expires'));
        return r;
      }
      if (r.created) taken.push(r.created);
    }
    return { granted: true };
  }

  /** Release the names key holds (its file was removed). */
  async release(names: string[], key: string): Promise<void> {
    for (const name of names) {
      const gens = await this.generations(name);
      const newest = gens.at(-1);
      if (!newest) continue;
      const body = await this.read(newest.key);
      if (body?.key === key) await this.remove(gens.map((g) => g.key));
    }
  }

  private dir(name: string): string {
    return `${this.base}${encodeURIComponent(name)}/`;
  }

  private async claimOne(name: string, key: string): Promise<({ granted: true; created: string | null }) | Extract<ClaimResult, { granted: false }>> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const gens = await this.generations(name);
      const newest = gens.at(-1);
      let gen = 0;
      if (newest) {
        const body = await this.read(newest.key);
        if (body === null) continue; // released meanwhile: look again
        // Our own key holds it (the same file name): the put decides (exists: identical or 409).
        if (body.key === key) return { granted: true, created: null };
        const young = Date.now() - newest.at < this.ttlMs;
        if (young || (await this.exists(body.key))) return { granted: false, name, key: body.key };
        this.opts.log.info({ claim: name, holder: body.key }, 'taking over a stale claim (its file never appeared or was removed)');
        gen = newest.gen + 1;
      }
      const created = `${this.dir(name)}${String(gen).padStart(10, '0')}.json`;
      try {
        await this.opts.client.send(
          new PutObjectCommand({ Bucket: this.opts.bucket, Key: created, Body: JSON.stringify({ key, replica: this.opts.replica } satisfies ClaimBody), ContentType: 'application/json', IfNoneMatch: '*' }),
        );
        return { granted: true, created };
      } catch (err) {
        if (httpStatus(err) !== 412) throw err;
        // Another replica created this generation first: look at what it claimed.
      }
    }
    throw new Error(`cannot settle the claim ${name}: too much contention`);
  }

  private async generations(name: string): Promise<{ key: string; gen: number; at: number }[]> {
    const dir = this.dir(name);
    const out: { key: string; gen: number; at: number }[] = [];
    let token: string | undefined;
    do {
      const page = await this.opts.client.send(new ListObjectsV2Command({ Bucket: this.opts.bucket, Prefix: dir, ...(token ? { ContinuationToken: token } : {}) }));
      for (const o of page.Contents ?? []) {
        const gen = Number(o.Key?.slice(dir.length, dir.length + 10));
        if (o.Key && Number.isInteger(gen)) out.push({ key: o.Key, gen, at: o.LastModified?.getTime() ?? 0 });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out.sort((a, b) => a.gen - b.gen);
  }

  private async read(objectKey: string): Promise<ClaimBody | null> {
    try {
      const r = await this.opts.client.send(new GetObjectCommand({ Bucket: this.opts.bucket, Key: objectKey }));
      const body = JSON.parse((await r.Body?.transformToString()) ?? '') as ClaimBody;
      return typeof body.key === 'string' ? body : null;
    } catch (err) {
      if (httpStatus(err) === 404) return null;
      throw err;
    }
  }

  private async exists(key: string): Promise<boolean> {
    try {
      await this.opts.client.send(new HeadObjectCommand({ Bucket: this.opts.bucket, Key: `${this.opts.prefix}${key}` }));
      return true;
    } catch (err) {
      if (httpStatus(err) === 404) return false;
      throw err;
    }
  }

  private async remove(keys: string[]): Promise<void> {
    if (keys.length) await this.opts.client.send(new DeleteObjectsCommand({ Bucket: this.opts.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }));
  }
}
