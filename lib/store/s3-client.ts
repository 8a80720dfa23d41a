// S3 roots: parsing `s3://bucket/prefix` and building the SDK client from the standard AWS
// chain (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared
// files, AWS_REGION), with bounded timeouts and retries: a store that is down must fail a
// request in seconds, not hang it for minutes.

import http from 'node:http';
import https from 'node:https';
import { inspect } from 'node:util';
// Types only: the SDK (some 200 modules) loads when the first S3 client is built, so a server
// with local roots never pays for it.
import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';

/** Where an S3 root lives. */
export interface S3Location {
  bucket: string;
  /** '' or a prefix without leading or trailing slash ('team/pypi'). */
  prefix: string;
  /** The root's id: the URL without credentials, normalized (`s3://bucket/prefix`). */
  id: string;
}

/** Bucket names S3 accepts (3-63 of lowercase letters, digits, '.', '-'; also '_' and uppercase for older stores). */
const BUCKET = /^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$/;

/** The store cannot be used at start (unreachable, no bucket, no access): one line for the user. */
export class StoreStartError extends Error {}

/** Is this root argument an S3 URL (as opposed to a directory)? */
export function isS3Url(root: string): boolean {
  return /^s3:\/\//i.test(root);
}

/**
 * Parse an S3 root `s3://bucket[/prefix]`. Throws an Error saying what is wrong (for the user,
 * one line). Credentials never belong in the URL: they come from the AWS chain.
 */
export function parseS3Url(root: string): S3Location {
  const m = /^s3:\/\/([^/?#]*)(\/[^?#]*)?$/i.exec(root);
  if (!m) throw new Error(`${JSON.stringify(root)} is not an S3 root: use s3://bucket or s3://bucket/prefix (no query or fragment)`);
  const bucket = m[1];
  if (bucket.includes('@') || bucket.includes(':')) {
    throw new Error(`S3 root ${JSON.stringify(root.replace(/\/\/[^@/]*@/, '//***@'))}: no credentials or port in the URL (use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile, and AWS_ENDPOINT_URL)`);
  }
  if (!BUCKET.test(bucket)) throw new Error(`S3 root ${JSON.stringify(root)}: ${JSON.stringify(bucket)} is not a valid bucket name`);
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  for (const seg of prefix === '' ? [] : prefix.split('/')) {
    if (seg === '' || seg === '.' || seg === '..' || seg.startsWith('.') || /[\\\u0000-\u001f\u007f]/.test(seg)) {
      throw new Error(`S3 root ${JSON.stringify(root)}: the prefix may not hold empty, '.', '..' or dot-prefixed segments`);
    }
  }
  return { bucket, prefix, id: `s3://${bucket}${prefix ? `/${prefix}` : ''}` };
}

export interface S3ClientOptions {
  /** Path-style addressing (http://host/bucket/key), which most self-hosted stores need. */
  pathStyle: boolean;
  /** Bound on connecting (ms). */
  connectTimeoutMs?: number;
  /** Bound on a silent socket (ms): no byte for this long fails the request. */
  socketTimeoutMs?: number;
  /** Attempts per request (1 = no retry). */
  maxAttempts?: number;
  /** The SDK's own warnings (e.g. a failed streamed put, which it cannot retry) go here at debug level, not to the console. */
  log?: Logger;
}

/** The region when neither AWS_REGION nor a profile names one (S3's own default). */
const DEFAULT_REGION = 'us-east-1';

/**
 * An S3 client from the standard AWS chain. Checksums only when an operation requires them
 * (stores such as Ceph RGW reject the SDK's default aws-chunked trailing checksums); bounded
 * timeouts and attempts.
 */
export async function createS3Client(opts: S3ClientOptions): Promise<S3Client> {
  // The SDK prints a multi-line notice on Node 20 about its releases after January 2027; this
  // program pins its SDK and supports Node 20, so the notice would only bury the start-up lines.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { S3Client: Client } = await import('@aws-sdk/client-s3');
  // Never throws (the SDK calls it in the middle of requests); formats only when debug is on.
  const sdkLog = (...content: unknown[]): void => {
    if (!opts.log?.isLevelEnabled('debug')) return;
    opts.log.debug({ sdk: content.map((c) => (typeof c === 'string' ? c : inspect(c, { depth: 2, breakLength: Infinity }))).join(' ').slice(0, 2000) }, 'S3 SDK message');
  };
  const logger = { trace: sdkLog, debug: sdkLog, info: sdkLog, warn: sdkLog, error: sdkLog };
  const build = (region?: string): S3Client =>
    new Client({
      ...(region ? { region } : {}),
      forcePathStyle: opts.pathStyle,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: opts.maxAttempts ?? 3,
      logger,
      requestHandler: {
        connectionTimeout: opts.connectTimeoutMs ?? 3_000,
        requestTimeout: opts.socketTimeoutMs ?? 20_000,
        httpAgent: new http.Agent({ keepAlive: true, maxSockets: 64 }),
        httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 64 }),
      },
    });
  const client = build();
  // No region anywhere (variables, profile): S3's default, which self-hosted stores accept.
  const region = await client.config.region().catch(() => null);
  if (region) return client;
  client.destroy();
  return build(DEFAULT_REGION);
}
