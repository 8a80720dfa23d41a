// The server's configuration, as resolved by the CLI (lib/cli.ts) from options, environment
// variables and defaults. Everything else receives a Config; nothing reads process.env.

import type { TrustProxy } from './http/client-address.js';

/**
 * What -a can protect. `update` is every write (upload, remove_pkg, yank, unyank, ...): with a
 * password file it always needs a user, named in -a or not (lib/auth/guard.ts decides).
 * `list`: names and versions; `download`: file contents and metadata.
 */
export type AuthAction = 'update' | 'download' | 'list';
export type LogFormat = 'json' | 'pretty';

export interface Config {
  /** Absolute package roots; the first one receives uploads. */
  roots: string[];
  port: number;
  host: string;
  /** Where unknown projects are redirected (303); null when --disable-fallback. */
  fallbackUrl: string | null;
  /** Path prefix under which a reverse proxy exposes the server ('' or '/something'). */
  basePath: string;
  /** Absolute origin from --base-url when it was a full URL (e.g. 'https://box.example'), else null. */
  baseOrigin: string | null;
  logLevel: string;
  logFormat: LogFormat;
  /** Directory for the digest/metadata cache; null = a dotfile in each root. */
  cacheDir: string | null;
  /** htpasswd file; null = none configured. */
  passwords: string | null;
  /** Actions that require authentication (writes need a user anyway when passwords is set). */
  authenticate: Set<AuthAction>;
  /** Writes without credentials were explicitly allowed (`-a . -P .`, no password file). */
  anonymousUploads: boolean;
  /** --trust-proxy: which reverse proxies' X-Forwarded-For names the client (Express semantics). */
  trustProxy: TrustProxy;
  overwrite: boolean;
  maxUploadSize: number;
  healthEndpoint: string;
  metrics: boolean;
  /** Serve the web UI (/, /search, /project/...); false = the plain welcome page at /. */
  ui: boolean;
  /** A client must send its request headers within this many ms (slowloris guard). */
  headersTimeoutMs: number;
  /** Bound on waiting for in-flight requests at shutdown. */
  shutdownTimeoutMs: number;
  /** Hashing/metadata worker threads. */
  workers: number;
  /** Full rescan of the package roots every this many seconds (safety net for the watcher); 0 = off. */
  rescanInterval: number;
  /** --poll: no file-system watcher, rescan every this many seconds instead; null = watch. */
  poll: number | null;
  /** --upstream: Simple API index proxied for names the package roots do not have; null = none. */
  upstream: string | null;
  /** Seconds an upstream project page is served before it is revalidated. */
  upstreamTtl: number;
  /** Seconds to wait for an upstream page; for files, the longest pause between two chunks. */
  upstreamTimeout: number;
  /** Directory of the upstream cache (pages and verified files), outside the package roots. */
  upstreamCache: string | null;
  /** Bytes of cached upstream files kept (least recently used go first); null = no limit. */
  upstreamCacheMax: number | null;
  /** Normalized names whose pages list local and upstream files (local wins per file name). */
  upstreamMerge: Set<string>;
}

export const DEFAULTS = {
  port: 8080,
  host: '0.0.0.0',
  fallbackUrl: 'https://pypi.org/simple/',
  logLevel: 'info',
  logFormat: 'json' as LogFormat,
  maxUploadSize: 1024 * 1024 * 1024, // 1 GiB, PyPI's largest per-file limit class
  healthEndpoint: '/health',
  shutdownTimeoutMs: 10_000,
  headersTimeoutMs: 20_000,
  /** Seconds between the safety-net rescans (100,000 files take ~0.3 s). */
  rescanInterval: 300,
  /** Seconds between rescans with --poll. */
  pollInterval: 5,
  upstreamTtl: 600,
  upstreamTimeout: 10,
} as const;

export function parseAuthenticate(value: string): Set<AuthAction> {
  const out = new Set<AuthAction>();
  for (const raw of value.split(/[\s,]+/)) {
    const item = raw.trim().toLowerCase();
    if (item === '' || item === '.') continue;
    if (item === 'update' || item === 'download' || item === 'list') out.add(item);
    else throw new Error(`--authenticate: unknown action "${raw}" (use update, download, list or .)`);
  }
  return out;
}

/** Split --base-url into an optional origin and a normalized path prefix without trailing slash. */
export function parseBaseUrl(value: string | undefined): { basePath: string; baseOrigin: string | null } {
  if (!value || value === '/') return { basePath: '', baseOrigin: null };
  let path = value;
  let origin: string | null = null;
  if (/^https?:\/\//i.test(value)) {
    const u = new URL(value);
    origin = u.origin;
    path = u.pathname;
  }
  if (!path.startsWith('/')) path = `/${path}`;
  path = path.replace(/\/+$/, '');
  if (/[\s"'<>\\?#]/.test(path)) throw new Error(`--base-url: invalid path "${value}"`);
  return { basePath: path, baseOrigin: origin };
}

export function makeConfig(partial: Partial<Config> & { roots: string[] }): Config {
  return {
    port: 0,
    host: '127.0.0.1',
    fallbackUrl: null,
    basePath: '',
    baseOrigin: null,
    logLevel: 'silent',
    logFormat: 'json',
    cacheDir: null,
    passwords: null,
    authenticate: new Set<AuthAction>(['update']),
    anonymousUploads: false,
    trustProxy: false,
    overwrite: false,
    maxUploadSize: DEFAULTS.maxUploadSize,
    healthEndpoint: DEFAULTS.healthEndpoint,
    metrics: true,
    ui: true,
    shutdownTimeoutMs: DEFAULTS.shutdownTimeoutMs,
    headersTimeoutMs: DEFAULTS.headersTimeoutMs,
    workers: 2,
    rescanInterval: DEFAULTS.rescanInterval,
    poll: null,
    upstream: null,
    upstreamTtl: DEFAULTS.upstreamTtl,
    upstreamTimeout: DEFAULTS.upstreamTimeout,
    upstreamCache: null,
    upstreamCacheMax: null,
    upstreamMerge: new Set<string>(),
    ...partial,
  };
}
