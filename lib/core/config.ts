// The server's configuration, as resolved by the CLI (lib/cli.ts) from options, environment
// variables and defaults, all three declared once in SERVE_OPTIONS below. Everything else
// receives a Config; nothing reads process.env.

import os from 'node:os';
import path from 'node:path';
import proxyaddr from 'proxy-addr';
import { normalizeName } from './names.js';

/**
 * What -a can protect. `update` is every write (upload, remove_pkg, yank, unyank, ...): with a
 * password file it always needs a user, named in -a or not (lib/auth/guard.ts decides).
 * `list`: names and versions; `download`: file contents and metadata.
 */
export type AuthAction = 'update' | 'download' | 'list';
export type LogFormat = 'json' | 'pretty';

/** --trust-proxy: off, trust everything, a hop count, or addresses/subnets/names. */
export type TrustProxy = boolean | number | string[];

export type TrustFunction = proxyaddr.TrustFunction;

/**
 * Parse a --trust-proxy value: "false"/"off"/"0"/"" (off), "true" (trust every hop), a hop
 * count, or a comma list of addresses, CIDR subnets and the names loopback, linklocal and
 * uniquelocal. Throws an Error with a message for the user on anything else.
 */
export function parseTrustProxy(value: string | undefined): TrustProxy {
  const v = (value ?? '').trim();
  const lower = v.toLowerCase();
  if (lower === '' || lower === 'false' || lower === 'off' || lower === 'no') return false;
  if (lower === 'true' || lower === 'on' || lower === 'yes') return true;
  if (/^\d+$/.test(v)) {
    const hops = Number(v);
    if (!Number.isSafeInteger(hops)) throw new Error(`--trust-proxy: hop count "${v}" is too large`);
    return hops === 0 ? false : hops;
  }
  const list = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  try {
    proxyaddr.compile(list);
  } catch (err) {
    throw new Error(`--trust-proxy: ${(err as Error).message} (use a hop count, or addresses/subnets such as loopback,10.0.0.0/8)`, { cause: err });
  }
  return list;
}

export interface Config {
  /** Package roots: absolute directories or S3 URLs (`s3://bucket/prefix`); the first one receives uploads. */
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
  /**
   * Where roots that are not local directories (S3) keep their digest cache and staging
   * directory: --cache-dir, else ~/.cache/pypi-lite (never inside the root).
   */
  storeCacheDir: string;
  /** S3 roots: path-style addressing (http://endpoint/bucket/key). */
  s3PathStyle: boolean;
  /** S3 roots: a full listing this often (seconds) finds objects put by other tools. */
  s3ListInterval: number;
  /** S3 roots: answer a download with a presigned URL valid this many seconds; null = stream it. */
  s3Redirect: number | null;
}

/** What --log-level accepts (pino's levels). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Bound on waiting for in-flight requests at shutdown (no option). */
export const SHUTDOWN_TIMEOUT_MS = 10_000;

/**
 * The `serve` options as the command line hands them over (lib/cli.ts), before `resolveConfig`
 * checks them and turns them into a Config. Keys are commander's attribute names.
 */
export interface ServeOptions {
  port: number;
  host: string;
  fallbackUrl: string;
  disableFallback?: boolean;
  baseUrl?: string;
  passwords?: string;
  authenticate: string;
  trustProxy?: string;
  overwrite?: boolean;
  maxUploadSize: number;
  cacheDir?: string;
  logLevel: string;
  logFormat: LogFormat;
  healthEndpoint: string;
  metrics: boolean;
  ui: boolean;
  headersTimeout: number;
  workers: number;
  rescanInterval: number;
  poll?: boolean;
  pollInterval: number;
  upstream?: string;
  upstreamTtl: number;
  upstreamTimeout: number;
  upstreamCache?: string;
  upstreamCacheMax?: number;
  upstreamMerge: string[];
  s3PathStyle?: boolean;
  s3ListInterval: number;
  s3Redirect?: boolean;
  s3RedirectExpiry: number;
}

/**
 * One `serve` option. A flag without `<value>` is an on/off switch: its variable takes
 * 1/true/yes/on or 0/false/no/off (and `--help` says `NAME=1`).
 */
export interface OptionRow {
  /** commander's flags, e.g. '-p, --port <n>'. */
  flags: string;
  help: string;
  /** The PYPI_LITE_* environment variable that sets it when the command line does not. */
  env: string;
  default?: unknown;
  /** What `--help` shows as the default when the value itself would say less (1G, number of CPUs). */
  defaultHelp?: string;
  /** Turns the text from the command line or the environment into the value; throws an Error saying why not. */
  parse?: (value: string) => unknown;
  choices?: readonly string[];
  /** May be given several times (and as a comma list, also in the variable): the values are collected. */
  repeatable?: true;
}

/** A row for an option of type T: a default of that type unless the option may stay unset. */
export type OptionSpec<T> = OptionRow & { parse?: (value: string) => NonNullable<T> } & (undefined extends T ? { default?: undefined } : { default: T });

/** A parser of integers from min to max. */
export function intParser(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}

/** A byte count with an optional K, M or G suffix (powers of 1024). */
export function parseSize(value: string): number {
  const m = /^(\d+)\s*([kmg]i?b?)?$/i.exec(value.trim());
  if (!m) throw new Error('use a number of bytes, optionally with K, M or G');
  const unit = (m[2] ?? '').toLowerCase()[0];
  const mult = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  return Number(m[1]) * mult;
}

/**
 * Every `serve` option in one table: its flags, help text, environment variable, default and
 * parser. lib/cli.ts declares the commander options from it (so `--help` shows these defaults),
 * `serveDefaults()` reads the defaults from it, and `resolveConfig` turns the values into a Config.
 * The order is the order of `serve --help`.
 */
export const SERVE_OPTIONS: { [K in keyof ServeOptions]-?: OptionSpec<ServeOptions[K]> } = {
  port: { flags: '-p, --port <n>', help: 'port to listen on', env: 'PYPI_LITE_PORT', default: 8080, parse: intParser('--port', 0, 65535) },
  host: { flags: '-H, --host <addr>', help: 'address to listen on', env: 'PYPI_LITE_HOST', default: '0.0.0.0' },
  fallbackUrl: { flags: '--fallback-url <url>', help: 'where unknown projects are redirected', env: 'PYPI_LITE_FALLBACK_URL', default: 'https://pypi.org/simple/' },
  disableFallback: { flags: '--disable-fallback', help: 'answer 404 for unknown projects instead of redirecting', env: 'PYPI_LITE_DISABLE_FALLBACK' },
  baseUrl: { flags: '--base-url <url>', help: 'public URL or path prefix when behind a reverse proxy (e.g. /pypi or https://box/pypi)', env: 'PYPI_LITE_BASE_URL' },
  passwords: {
    flags: '-P, --passwords <file>',
    help: 'htpasswd file (bcrypt, apr1 or SHA entries); with it, every write (upload, remove, yank) needs a user whatever -a says; "." for none',
    env: 'PYPI_LITE_PASSWORDS',
  },
  authenticate: {
    flags: '-a, --authenticate <actions>',
    help: 'actions that need a password: comma list of update, download (files, metadata, JSON API), list (names, versions, /, /metrics); "." for none. "-a . -P ." alone allows anonymous uploads',
    env: 'PYPI_LITE_AUTHENTICATE',
    default: 'update',
  },
  trustProxy: {
    flags: '--trust-proxy <proxies>',
    help: 'behind a reverse proxy: take the client address from X-Forwarded-For sent by these proxies (hop count, or addresses/subnets such as loopback); off by default',
    env: 'PYPI_LITE_TRUST_PROXY',
  },
  overwrite: { flags: '--overwrite', help: 'allow uploads to replace an existing file', env: 'PYPI_LITE_OVERWRITE' },
  // 1 GiB, PyPI's largest per-file limit class
  maxUploadSize: { flags: '--max-upload-size <bytes>', help: 'largest accepted upload (K, M, G suffixes)', env: 'PYPI_LITE_MAX_UPLOAD_SIZE', default: 1024 ** 3, defaultHelp: '1G', parse: parseSize },
  cacheDir: { flags: '--cache-dir <dir>', help: 'where to keep the digest cache (default: a dotfile in each root)', env: 'PYPI_LITE_CACHE_DIR' },
  logLevel: { flags: '--log-level <level>', help: `log level: ${LOG_LEVELS.join(', ')}`, env: 'PYPI_LITE_LOG_LEVEL', default: 'info' },
  logFormat: { flags: '--log-format <format>', help: 'log format', env: 'PYPI_LITE_LOG_FORMAT', default: 'json', choices: ['json', 'pretty'] },
  healthEndpoint: { flags: '--health-endpoint <path>', help: 'path of the health check', env: 'PYPI_LITE_HEALTH_ENDPOINT', default: '/health' },
  metrics: { flags: '--no-metrics', help: 'disable /metrics', env: 'PYPI_LITE_NO_METRICS', default: true },
  ui: { flags: '--no-ui', help: 'disable the web UI (/, /search, /project/...); / is then a plain welcome page', env: 'PYPI_LITE_NO_UI', default: true },
  headersTimeout: {
    flags: '--headers-timeout <ms>',
    help: 'time a client has to send its request headers (slowloris guard)',
    env: 'PYPI_LITE_HEADERS_TIMEOUT',
    default: 20_000,
    parse: intParser('--headers-timeout', 100, 600_000),
  },
  workers: { flags: '--workers <n>', help: 'hashing threads', env: 'PYPI_LITE_WORKERS', default: Math.max(1, os.availableParallelism()), defaultHelp: 'number of CPUs', parse: intParser('--workers', 1, 64) },
  // 100,000 files take ~0.3 s to rescan
  rescanInterval: {
    flags: '--rescan-interval <seconds>',
    help: 'rescan the package directories this often, for changes the file-system watcher missed (0 = off)',
    env: 'PYPI_LITE_RESCAN_INTERVAL',
    default: 300,
    parse: intParser('--rescan-interval', 0, 86_400),
  },
  poll: { flags: '--poll', help: 'no file-system watcher: rescan every --poll-interval seconds instead; for NFS, SMB and Docker Desktop mounts', env: 'PYPI_LITE_POLL' },
  pollInterval: { flags: '--poll-interval <seconds>', help: 'seconds between rescans with --poll', env: 'PYPI_LITE_POLL_INTERVAL', default: 5, parse: intParser('--poll-interval', 1, 86_400) },
  upstream: {
    flags: '--upstream <url>',
    help: 'proxy and cache this Simple API index (e.g. https://pypi.org/simple/) for every name the package directories do not have; replaces the fallback redirect',
    env: 'PYPI_LITE_UPSTREAM',
  },
  upstreamTtl: {
    flags: '--upstream-ttl <seconds>',
    help: 'serve a cached upstream page this long before revalidating it',
    env: 'PYPI_LITE_UPSTREAM_TTL',
    default: 600,
    parse: intParser('--upstream-ttl', 0, 604_800),
  },
  upstreamTimeout: {
    flags: '--upstream-timeout <seconds>',
    help: 'wait this long for an upstream page, and at most this long between two chunks of an upstream file',
    env: 'PYPI_LITE_UPSTREAM_TIMEOUT',
    default: 10,
    parse: intParser('--upstream-timeout', 1, 600),
  },
  upstreamCache: {
    flags: '--upstream-cache <dir>',
    help: 'where upstream pages and verified files are cached (default: <cache dir>/upstream, or ~/.cache/pypi-lite/upstream)',
    env: 'PYPI_LITE_UPSTREAM_CACHE',
  },
  upstreamCacheMax: {
    flags: '--upstream-cache-max <size>',
    help: 'bound the cached upstream files (K, M, G suffixes); least recently used go first',
    env: 'PYPI_LITE_UPSTREAM_CACHE_MAX',
    parse: parseSize,
  },
  upstreamMerge: {
    flags: '--upstream-merge <name>',
    help: 'repeatable: list this local project together with its upstream files (local files win); for deliberate forks only (env: comma-separated)',
    env: 'PYPI_LITE_UPSTREAM_MERGE',
    default: [],
    repeatable: true,
  },
  s3PathStyle: {
    flags: '--s3-path-style',
    help: 'S3 roots: path-style URLs (http://endpoint/bucket/key), which MinIO, Ceph RGW, Garage and most self-hosted stores need',
    env: 'PYPI_LITE_S3_PATH_STYLE',
  },
  s3ListInterval: {
    flags: '--s3-list-interval <seconds>',
    help: 'S3 roots: list the bucket this often to find objects put by other tools (aws s3 cp)',
    env: 'PYPI_LITE_S3_LIST_INTERVAL',
    default: 60,
    parse: intParser('--s3-list-interval', 1, 86_400),
  },
  s3Redirect: {
    flags: '--s3-redirect',
    help: 'S3 roots: answer a download with a redirect (307) to a short-lived presigned URL of the store, so bandwidth scales with the store',
    env: 'PYPI_LITE_S3_REDIRECT',
  },
  s3RedirectExpiry: {
    flags: '--s3-redirect-expiry <seconds>',
    help: 'S3 roots: how long a presigned download URL is valid',
    env: 'PYPI_LITE_S3_REDIRECT_EXPIRY',
    default: 300,
    parse: intParser('--s3-redirect-expiry', 10, 604_800),
  },
};

/** --upstream: an http(s) index URL, with a trailing slash (project pages are <url><name>/). */
export function parseUpstream(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new Error(`--upstream: "${value}" is not a URL (use e.g. https://pypi.org/simple/)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`--upstream: only http and https URLs are supported, not "${value}"`);
  u.hash = '';
  u.search = '';
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u.toString();
}

/** The per-user cache directory without --cache-dir: ~/.cache/pypi-lite (XDG_CACHE_HOME). */
function defaultCacheBase(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(path.resolve(base), 'pypi-lite');
}

/** Where the upstream cache lives without --upstream-cache: outside the package roots. */
function defaultUpstreamCache(cacheDir: string | null): string {
  if (cacheDir) return path.join(cacheDir, 'upstream');
  return path.join(defaultCacheBase(), 'upstream');
}

/** An on/off switch (no value): its variable is read as a boolean. */
export function isSwitch(spec: { flags: string }): boolean {
  return !/[<[]/.test(spec.flags);
}

/** The value of every `serve` option when neither the command line nor the environment sets it. */
export function serveDefaults(): ServeOptions {
  const defaults: Partial<Record<keyof ServeOptions, unknown>> = {};
  for (const key of Object.keys(SERVE_OPTIONS) as (keyof ServeOptions)[]) defaults[key] = SERVE_OPTIONS[key].default;
  // Complete and well typed: the table has a row for every key, with a default of the key's
  // type unless the key is optional (see OptionSpec).
  return defaults as ServeOptions;
}

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

/**
 * The Config for these option values: checks and parses them (throwing an Error with a message
 * for the user). `roots` and `passwords` come already checked against the file system (lib/cli.ts).
 */
export function resolveConfig(roots: string[], o: ServeOptions, passwords: string | null): Config {
  const authenticate = parseAuthenticate(o.authenticate);
  const base = parseBaseUrl(o.baseUrl);
  const trustProxy = parseTrustProxy(o.trustProxy);
  if (passwords === null && (authenticate.has('download') || authenticate.has('list'))) {
    throw new Error('--authenticate download/list needs a password file: add -P <htpasswd file>');
  }
  const cacheDir = o.cacheDir ? path.resolve(o.cacheDir) : null;
  const upstream = o.upstream ? parseUpstream(o.upstream) : null;
  const upstreamCache = upstream ? (o.upstreamCache ? path.resolve(o.upstreamCache) : defaultUpstreamCache(cacheDir)) : null;
  if (upstreamCache && roots.some((r) => upstreamCache === r || upstreamCache.startsWith(`${r}${path.sep}`))) {
    throw new Error(`--upstream-cache ${upstreamCache} is inside a package directory: proxied files must never become local ones`);
  }
  if (!o.healthEndpoint.startsWith('/')) throw new Error('--health-endpoint must start with /');
  if (!LOG_LEVELS.includes(o.logLevel as (typeof LOG_LEVELS)[number])) throw new Error(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  return {
    roots,
    port: o.port,
    host: o.host,
    fallbackUrl: o.disableFallback || upstream ? null : o.fallbackUrl,
    ...base,
    logLevel: o.logLevel,
    logFormat: o.logFormat,
    cacheDir,
    passwords,
    authenticate,
    anonymousUploads: o.passwords === '.' && !authenticate.has('update'),
    trustProxy,
    overwrite: Boolean(o.overwrite),
    maxUploadSize: o.maxUploadSize,
    healthEndpoint: o.healthEndpoint,
    metrics: o.metrics,
    ui: o.ui,
    shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS,
    headersTimeoutMs: o.headersTimeout,
    workers: o.workers,
    rescanInterval: o.rescanInterval,
    poll: o.poll ? o.pollInterval : null,
    upstream,
    upstreamTtl: o.upstreamTtl,
    upstreamTimeout: o.upstreamTimeout,
    upstreamCache,
    upstreamCacheMax: o.upstreamCacheMax ?? null,
    upstreamMerge: new Set(o.upstreamMerge.map((n) => n.trim()).filter(Boolean).map(normalizeName)),
    storeCacheDir: cacheDir ?? defaultCacheBase(),
    s3PathStyle: Boolean(o.s3PathStyle),
    s3ListInterval: o.s3ListInterval,
    s3Redirect: o.s3Redirect ? o.s3RedirectExpiry : null,
  };
}
