// A small text file kept in the bucket and edited by any replica without losing an edit: the
// yank list of an S3 root (yanked.txt's format). S3 has no compare-and-swap on an existing object
// that every engine honours (Ceph Pacific's If-Match on PutObject never matches), so each
// version is a new object created with If-None-Match: *:
//
//   <prefix>.pypi-lite/<name>/<generation, 10 digits>.txt
//
// An edit reads the newest generation, computes the new text and creates the next generation;
// if another replica created it first (412), it reads again and retries. Readers take the
// newest. Generations older than the previous one are removed after an edit. Every edit is
// announced on the change feed, so the other replicas re-read within a poll.

import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { RESERVED } from './s3-feed.js';
import type { StoredTextFile, TextEdit } from './types.js';

export interface TextObjectOptions {
  client: S3Client;
  bucket: string;
  /** The root's key prefix: '' or ending in '/'. */
  prefix: string;
  /** The file's name under the reserved prefix (e.g. 'yanks'). */
  name: string;
  /** Announce an edit to the other replicas (the feed). */
  announce: () => void;
  /** Subscribe to the other replicas' announcements. */
  subscribe: (listener: () => void) => () => void;
}

const MAX_ATTEMPTS = 20;

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

export class S3TextObject implements StoredTextFile {
  private readonly dir: string;
  /** Edits through this replica, one at a time (others are ordered by the conditional create). */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: TextObjectOptions) {
    this.dir = `${opts.prefix}${RESERVED}${opts.name}/`;
  }

  async read(): Promise<string> {
    return (await this.newest()).text;
  }

  edit<R>(change: TextEdit<R>): Promise<R> {
    const run = () => this.editNow(change);
    const next = this.chain.then(run, run);
    this.chain = next.catch(() => {});
    return next;
  }

  onChange(listener: () => void): () => void {
    return this.opts.subscribe(listener);
  }

  private async editNow<R>(change: TextEdit<R>): Promise<R> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const { gen, text, keys } = await this.newest();
      const r = change(text, gen >= 0);
      if (r.text === null) return r.result;
      try {
        await this.opts.client.send(
          new PutObjectCommand({ Bucket: this.opts.bucket, Key: this.keyOf(gen + 1), Body: r.text, ContentType: 'text/plain; charset=utf-8', IfNoneMatch: '*' }),
        );
      } catch (err) {
        if (httpStatus(err) === 412) continue; // another replica's edit came first: apply ours to it
        throw err;
      }
      this.opts.announce();
      // Keep the previous generation (a reader may be reading it); remove the older ones.
      const old = keys.slice(0, -1);
      if (old.length) await this.opts.client.send(new DeleteObjectsCommand({ Bucket: this.opts.bucket, Delete: { Objects: old.map((Key) => ({ Key })), Quiet: true } })).catch(() => {});
      return r.result;
    }
    throw new Error(`cannot edit ${this.dir}: too many concurrent edits`);
  }

  private keyOf(gen: number): string {
    return `${this.dir}${String(gen).padStart(10, '0')}.txt`;
  }

  /** The newest generation (-1: none) and its text, and the keys of all generations. */
  private async newest(): Promise<{ gen: number; text: string; keys: string[] }> {
    for (let attempt = 0; ; attempt++) {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await this.opts.client.send(new ListObjectsV2Command({ Bucket: this.opts.bucket, Prefix: this.dir, ...(token ? { ContinuationToken: token } : {}) }));
        for (const o of page.Contents ?? []) if (o.Key && /^\d{10}\.txt$/.test(o.Key.slice(this.dir.length))) keys.push(o.Key);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      keys.sort();
      const last = keys.at(-1);
      if (!last) return { gen: -1, text: '', keys };
      try {
        const r = await this.opts.client.send(new GetObjectCommand({ Bucket: this.opts.bucket, Key: last }));
        const text = (await r.Body?.transformToString('utf-8')) ?? '';
        return { gen: Number(last.slice(this.dir.length, this.dir.length + 10)), text, keys };
      } catch (err) {
        // Removed between the listing and the read (an edit elsewhere): list again.
        if (httpStatus(err) !== 404 || attempt >= MAX_ATTEMPTS) throw err;
      }
    }
  }
}
