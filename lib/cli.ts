// The `pypi-lite` command line: serve, passwd, yank/unyank. Option names follow pypiserver's
// where it has one; every serve option can also come from a PYPI_LITE_* environment variable.

import { promises as fsp, constants as fsConstants, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULTS, parseAuthenticate, parseBaseUrl, type Config, type LogFormat } from './config.js';
import { createLogger, LOG_LEVELS } from './log.js';
import { startServer } from './server.js';
import { parseTrustProxy } from './http/client-address.js';
import { deleteUser, hashPassword, HtpasswdError, isValidUsername, parseHtpasswd, setUser } from './auth/htpasswd.js';
import { editYankFile, normalizeReason } from './catalog/yank.js';
import { editFile } from './edit-file.js';
import { normalizeName } from './catalog/names.js';
import { UpstreamCacheError } from './upstream/upstream.js';

/** A failure the user caused: printed as one line, exit code 2. */
export class UsageError extends Error {}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** A boolean from the environment: 1/true/yes/on, 0/false/no/off/empty; undefined when unset. */
export function envFlag(name: string): boolean | undefined {
  const v = process.env[name];
  if (v === undefined) return undefined;
  const t = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(t)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(t)) return false;
  throw new UsageError(`${name} must be 1/true/yes/on or 0/false/no/off, not "${v}"`);
}

function intOption(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}

function sizeOption(value: string): number {
  const m = /^(\d+)\s*([kmg]i?b?)?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError('use a number of bytes, optionally with K, M or G');
  const unit = (m[2] ?? '').toLowerCase()[0];
  const mult = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  return Number(m[1]) * mult;
}

async function checkRoot(root: string): Promise<string> {
  const abs = path.resolve(root);
  let st;
  try {
    st = await fsp.stat(abs);
  } catch {
    throw new UsageError(`package directory ${abs} does not exist`);
  }
  if (!st.isDirectory()) throw new UsageError(`package directory ${abs} is not a directory`);
  try {
    await fsp.access(abs, fsConstants.R_OK | fsConstants.X_OK);
  } catch {
    throw new UsageError(`package directory ${abs} cannot be read (permission denied)`);
  }
  return fsp.realpath(abs);
}

interface ServeOptions {
  port: number;
  host: string;
  fallbackUrl: string;
  disableFallback?: boolean;
  logLevel: string;
  logFormat: LogFormat;
  baseUrl?: string;
  cacheDir?: string;
  passwords?: string;
  authenticate: string;
  overwrite?: boolean;
  maxUploadSize: number;
  healthEndpoint: string;
  metrics: boolean;
  ui: boolean;
  workers: number;
  headersTimeout: number;
  trustProxy?: string;
  rescanInterval: number;
  poll?: boolean;
  pollInterval: number;
  upstream?: string;
  upstreamTtl: number;
  upstreamTimeout: number;
  upstreamCache?: string;
  upstreamCacheMax?: number;
  upstreamMerge: string[];
}

/** --upstream: an http(s) index URL, with a trailing slash (project pages are <url><name>/). */
export function parseUpstream(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new UsageError(`--upstream: "${value}" is not a URL (use e.g. https://pypi.org/simple/)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`--upstream: only http and https URLs are supported, not "${value}"`);
  u.hash = '';
  u.search = '';
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u.toString();
}

/** Where the upstream cache lives without --upstream-cache: outside the package roots. */
function defaultUpstreamCache(cacheDir: string | null): string {
  if (cacheDir) return path.join(cacheDir, 'upstream');
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(path.resolve(base), 'pypi-lite', 'upstream');
}

export async function buildConfig(roots: string[], o: ServeOptions): Promise<Config> {
  const resolvedRoots: string[] = [];
  for (const r of roots.length ? roots : ['./packages']) resolvedRoots.push(await checkRoot(r));
  let authenticate;
  let base;
  let trustProxy;
  try {
    authenticate = parseAuthenticate(o.authenticate);
    base = parseBaseUrl(o.baseUrl);
    trustProxy = parseTrustProxy(o.trustProxy);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const passwordsDot = o.passwords === '.';
  let passwords: string | null = null;
  if (o.passwords && !passwordsDot) {
    passwords = path.resolve(o.passwords);
    try {
      await fsp.access(passwords, fsConstants.R_OK);
    } catch {
      throw new UsageError(`password file ${passwords} does not exist or cannot be read (create it with: pypi-lite passwd ${o.passwords} USER)`);
    }
  }
  if (passwords === null && (authenticate.has('download') || authenticate.has('list'))) {
    throw new UsageError('--authenticate download/list needs a password file: add -P <htpasswd file>');
  }
  const cacheDir = o.cacheDir ? path.resolve(o.cacheDir) : null;
  const upstream = o.upstream ? parseUpstream(o.upstream) : null;
  const upstreamCache = upstream ? (o.upstreamCache ? path.resolve(o.upstreamCache) : defaultUpstreamCache(cacheDir)) : null;
  if (upstreamCache && resolvedRoots.some((r) => upstreamCache === r || upstreamCache.startsWith(`${r}${path.sep}`))) {
    throw new UsageError(`--upstream-cache ${upstreamCache} is inside a package directory: proxied files must never become local ones`);
  }
  if (!o.healthEndpoint.startsWith('/')) throw new UsageError('--health-endpoint must start with /');
  if (!LOG_LEVELS.includes(o.logLevel as (typeof LOG_LEVELS)[number])) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  return {
    roots: resolvedRoots,
    port: o.port,
    host: o.host,
    fallbackUrl: o.disableFallback || upstream ? null : o.fallbackUrl,
    ...base,
    logLevel: o.logLevel,
    logFormat: o.logFormat,
    cacheDir,
    passwords,
    authenticate,
    anonymousUploads: passwordsDot && !authenticate.has('update'),
    trustProxy,
    overwrite: Boolean(o.overwrite),
    maxUploadSize: o.maxUploadSize,
    healthEndpoint: o.healthEndpoint,
    metrics: o.metrics,
    ui: o.ui,
    shutdownTimeoutMs: DEFAULTS.shutdownTimeoutMs,
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
  };
}

async function serve(roots: string[], o: ServeOptions): Promise<void> {
  const config = await buildConfig(roots, o);
  const log = createLogger(config.logLevel, config.logFormat);
  if (config.anonymousUploads) {
    log.warn('ANONYMOUS WRITES ARE ON (-a . -P .): anyone who can reach this server may upload, remove and yank packages');
  }
  let running;
  try {
    running = await startServer(config, log);
  } catch (err) {
    if (err instanceof HtpasswdError || err instanceof UpstreamCacheError) throw new UsageError(err.message);
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') throw new UsageError(`port ${config.port} on ${config.host} is already in use`);
    if (e.code === 'EACCES') throw new UsageError(`not allowed to listen on ${config.host}:${config.port}`);
    throw err;
  }
  const { url } = running;
  process.stdout.write(
    `pypi-lite ${version()} serving ${config.roots.join(', ')}\n` +
      `  pip install --index-url ${url}${config.basePath}/simple/ PACKAGE\n` +
      `  twine upload --repository-url ${url}${config.basePath}/ dist/*\n`,
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    running.close().then(
      () => {
        log.flush();
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  // After an uncaught exception Node leaves the process in an undefined state (locks held,
  // streams half-written): serving on would be unsafe. Log it, flush the log, and exit non-zero
  // so that the supervisor (systemd's Restart=on-failure, Docker's restart policy) starts a
  // clean process; the catalog cache makes that restart quick. An unhandled rejection is a bug
  // of the same kind (and Node's default is to crash on it too).
  let crashing = false;
  const crash = (what: string) => (err: unknown) => {
    process.exitCode = 1;
    if (crashing) return;
    crashing = true;
    stopping = true;
    log.fatal({ err }, `${what}: exiting, the supervisor should restart the server`);
    const exit = () => process.exit(1);
    setTimeout(exit, 2_000); // if the log cannot be flushed
    try {
      log.flush(exit);
    } catch {
      exit();
    }
  };
  process.on('uncaughtException', crash('uncaught exception'));
  process.on('unhandledRejection', crash('unhandled rejection'));
  testFaults();
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  try {
    await running.loaded;
  } catch (err) {
    await running.close().catch(() => {});
    throw new UsageError(`cannot scan the package directories: ${(err as Error).message}`);
  }
}

/**
 * Test-only fault injection, so the crash handling can be tested on the real program: with
 * NODE_ENV=test and PYPI_LITE_TEST_FAULT=uncaught|rejection, SIGUSR2 makes the process throw
 * an uncaught exception or leave a rejection unhandled. Ignored in every other environment.
 */
function testFaults(): void {
  const fault = process.env.PYPI_LITE_TEST_FAULT;
  if (process.env.NODE_ENV !== 'test' || (fault !== 'uncaught' && fault !== 'rejection')) return;
  process.on('SIGUSR2', () => {
    setImmediate(() => {
      if (fault === 'uncaught') throw new Error('test fault: uncaught exception');
      void Promise.reject(new Error('test fault: unhandled rejection'));
    });
  });
}

async function readPasswordFromStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function promptPassword(question: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) throw new UsageError('no terminal to ask for a password: use --password-stdin');
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  return new Promise<string>((resolve, reject) => {
    let password = '';
    const finish = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    // Raw mode: characters arrive one by one and are not echoed.
    const onData = (chunk: string) => {
      for (const c of chunk) {
        if (c === '\r' || c === '\n' || c === '\u0004') {
          finish();
          resolve(password);
          return;
        }
        if (c === '\u0003') {
          finish();
          reject(new UsageError('cancelled'));
          return;
        }
        if (c === '\u007f' || c === '\b') password = password.slice(0, -1);
        else password += c;
      }
    };
    stdin.on('data', onData);
  });
}

async function passwd(file: string, user: string, o: { delete?: boolean; passwordStdin?: boolean; rounds: number }): Promise<void> {
  if (!isValidUsername(user)) throw new UsageError(`invalid user name "${user}"`);
  let hash: string | null = null;
  if (!o.delete) {
    let password: string;
    if (o.passwordStdin) password = await readPasswordFromStdin();
    else {
      password = await promptPassword(`New password for ${user}: `);
      const again = await promptPassword('Repeat the password: ');
      if (again !== password) throw new UsageError('the passwords do not match');
    }
    if (password === '') throw new UsageError('empty password');
    hash = await hashPassword(password, o.rounds);
  }
  // Read, change and write under the file's lock (another `passwd` may be editing it), through
  // a uniquely named temporary file: no edit is lost and the server never reads half a file.
  let warning: string | null;
  try {
    warning = await editFile(
      file,
      (text, exists): { text: string; result: string | null } => {
        let next: string;
        if (hash === null) {
          if (!exists) throw new UsageError(`${file} does not exist`);
          const r = deleteUser(text, user);
          if (!r.found) throw new UsageError(`user "${user}" is not in ${file}`);
          next = r.text;
        } else next = setUser(text, user, hash);
        let problem: string | null = null;
        try {
          parseHtpasswd(next, file);
        } catch (err) {
          if (err instanceof HtpasswdError) problem = err.message;
        }
        return { text: next, result: problem };
      },
      0o600,
    );
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot update ${file}: ${(err as Error).message}`);
  }
  if (warning !== null) process.stderr.write(`warning: ${warning}\n`);
  process.stdout.write(o.delete ? `Deleted user ${user} from ${file}\n` : `Set the password of ${user} in ${file}\n`);
}

async function yank(root: string, target: string, o: { reason?: string }, undo: boolean): Promise<void> {
  const abs = await checkRoot(root);
  const reason = normalizeReason(o.reason ?? '');
  let changed: boolean;
  try {
    changed = await editYankFile(abs, target, undo ? { yank: false } : { yank: true, reason });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (undo && !changed) throw new UsageError(`${target} is not yanked in ${abs}`);
  // the reason as it is stored and as pip will show it (one line of text)
  process.stdout.write(undo ? `Unyanked ${target} in ${abs}\n` : `Yanked ${target} in ${abs}${reason ? ` (reason: ${reason})` : ''}\n`);
}

export function buildProgram(): Command {
  const program = new Command('pypi-lite')
    .description('A fast, self-hosted private Python package index')
    .version(version(), '-V, --version')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('serve')
    .description('Serve package directories over the PyPI Simple API and accept uploads')
    .argument('[roots...]', 'package directories (default ./packages); the first receives uploads')
    .addOption(new Option('-p, --port <n>', 'port to listen on').default(DEFAULTS.port).env('PYPI_LITE_PORT').argParser(intOption('--port', 0, 65535)))
    .addOption(new Option('-H, --host <addr>', 'address to listen on').default(DEFAULTS.host).env('PYPI_LITE_HOST'))
    .addOption(new Option('--fallback-url <url>', 'where unknown projects are redirected').default(DEFAULTS.fallbackUrl).env('PYPI_LITE_FALLBACK_URL'))
    .addOption(new Option('--disable-fallback', 'answer 404 for unknown projects instead of redirecting (env: PYPI_LITE_DISABLE_FALLBACK=1)'))
    .addOption(new Option('--base-url <url>', 'public URL or path prefix when behind a reverse proxy (e.g. /pypi or https://box/pypi)').env('PYPI_LITE_BASE_URL'))
    .addOption(
      new Option('-P, --passwords <file>', 'htpasswd file (bcrypt, apr1 or SHA entries); with it, every write (upload, remove, yank) needs a user whatever -a says; "." for none').env(
        'PYPI_LITE_PASSWORDS',
      ),
    )
    .addOption(
      new Option(
        '-a, --authenticate <actions>',
        'actions that need a password: comma list of update, download (files, metadata, JSON API), list (names, versions, /, /metrics); "." for none. "-a . -P ." alone allows anonymous uploads',
      )
        .default('update')
        .env('PYPI_LITE_AUTHENTICATE'),
    )
    .addOption(
      new Option('--trust-proxy <proxies>', 'behind a reverse proxy: take the client address from X-Forwarded-For sent by these proxies (hop count, or addresses/subnets such as loopback); off by default').env(
        'PYPI_LITE_TRUST_PROXY',
      ),
    )
    .addOption(new Option('--overwrite', 'allow uploads to replace an existing file (env: PYPI_LITE_OVERWRITE=1)'))
    .addOption(new Option('--max-upload-size <bytes>', 'largest accepted upload (K, M, G suffixes)').default(DEFAULTS.maxUploadSize, '1G').env('PYPI_LITE_MAX_UPLOAD_SIZE').argParser(sizeOption))
    .addOption(new Option('--cache-dir <dir>', 'where to keep the digest cache (default: a dotfile in each root)').env('PYPI_LITE_CACHE_DIR'))
    .addOption(new Option('--log-level <level>', `log level: ${LOG_LEVELS.join(', ')}`).default(DEFAULTS.logLevel).env('PYPI_LITE_LOG_LEVEL'))
    .addOption(new Option('--log-format <format>', 'log format').choices(['json', 'pretty']).default('json').env('PYPI_LITE_LOG_FORMAT'))
    .addOption(new Option('--health-endpoint <path>', 'path of the health check').default(DEFAULTS.healthEndpoint).env('PYPI_LITE_HEALTH_ENDPOINT'))
    .addOption(new Option('--no-metrics', 'disable /metrics (env: PYPI_LITE_NO_METRICS=1)'))
    .addOption(new Option('--no-ui', 'disable the web UI (/, /search, /project/...); / is then a plain welcome page (env: PYPI_LITE_NO_UI=1)'))
    .addOption(new Option('--headers-timeout <ms>', 'time a client has to send its request headers (slowloris guard)').default(DEFAULTS.headersTimeoutMs).env('PYPI_LITE_HEADERS_TIMEOUT').argParser(intOption('--headers-timeout', 100, 600_000)))
    .addOption(new Option('--workers <n>', 'hashing threads').default(Math.max(1, os.availableParallelism()), 'number of CPUs').env('PYPI_LITE_WORKERS').argParser(intOption('--workers', 1, 64)))
    .addOption(
      new Option('--rescan-interval <seconds>', 'rescan the package directories this often, for changes the file-system watcher missed (0 = off)')
        .default(DEFAULTS.rescanInterval)
        .env('PYPI_LITE_RESCAN_INTERVAL')
        .argParser(intOption('--rescan-interval', 0, 86_400)),
    )
    .addOption(new Option('--poll', 'no file-system watcher: rescan every --poll-interval seconds instead; for NFS, SMB and Docker Desktop mounts (env: PYPI_LITE_POLL=1)'))
    .addOption(
      new Option('--poll-interval <seconds>', 'seconds between rescans with --poll')
        .default(DEFAULTS.pollInterval)
        .env('PYPI_LITE_POLL_INTERVAL')
        .argParser(intOption('--poll-interval', 1, 86_400)),
    )
    .addOption(
      new Option('--upstream <url>', 'proxy and cache this Simple API index (e.g. https://pypi.org/simple/) for every name the package directories do not have; replaces the fallback redirect').env(
        'PYPI_LITE_UPSTREAM',
      ),
    )
    .addOption(
      new Option('--upstream-ttl <seconds>', 'serve a cached upstream page this long before revalidating it')
        .default(DEFAULTS.upstreamTtl)
        .env('PYPI_LITE_UPSTREAM_TTL')
        .argParser(intOption('--upstream-ttl', 0, 604_800)),
    )
    .addOption(
      new Option('--upstream-timeout <seconds>', 'wait this long for an upstream page, and at most this long between two chunks of an upstream file')
        .default(DEFAULTS.upstreamTimeout)
        .env('PYPI_LITE_UPSTREAM_TIMEOUT')
        .argParser(intOption('--upstream-timeout', 1, 600)),
    )
    .addOption(new Option('--upstream-cache <dir>', 'where upstream pages and verified files are cached (default: <cache dir>/upstream, or ~/.cache/pypi-lite/upstream)').env('PYPI_LITE_UPSTREAM_CACHE'))
    .addOption(new Option('--upstream-cache-max <size>', 'bound the cached upstream files (K, M, G suffixes); least recently used go first').env('PYPI_LITE_UPSTREAM_CACHE_MAX').argParser(sizeOption))
    .addOption(
      new Option('--upstream-merge <name>', 'repeatable: list this local project together with its upstream files (local files win); for deliberate forks only (env: comma-separated)')
        .default([])
        .env('PYPI_LITE_UPSTREAM_MERGE')
        .argParser((value: string, previous: string[]) => [...previous, ...value.split(',')]),
    )
    .action(async (roots: string[], o: ServeOptions, cmd: Command) => {
      // Boolean switches from the environment: commander would take any value (even "0") as on.
      const fromEnv = (key: string, env: string): boolean | undefined => (cmd.getOptionValueSource(key) === 'cli' ? undefined : envFlag(env));
      const disable = fromEnv('disableFallback', 'PYPI_LITE_DISABLE_FALLBACK');
      if (disable !== undefined) o.disableFallback = disable;
      const overwrite = fromEnv('overwrite', 'PYPI_LITE_OVERWRITE');
      if (overwrite !== undefined) o.overwrite = overwrite;
      const noMetrics = fromEnv('metrics', 'PYPI_LITE_NO_METRICS');
      if (noMetrics !== undefined) o.metrics = !noMetrics;
      const poll = fromEnv('poll', 'PYPI_LITE_POLL');
      if (poll !== undefined) o.poll = poll;
      const noUi = fromEnv('ui', 'PYPI_LITE_NO_UI');
      if (noUi !== undefined) o.ui = !noUi;
      return serve(roots, o);
    });

  program
    .command('passwd')
    .description('Create or update a user in an htpasswd file (bcrypt), or delete one')
    .argument('<file>', 'htpasswd file (created if missing)')
    .argument('<user>', 'user name')
    .option('-D, --delete', 'delete the user')
    .option('--password-stdin', 'read the password from standard input (for scripts)')
    .addOption(new Option('--rounds <n>', 'bcrypt cost').default(10).argParser(intOption('--rounds', 4, 15)))
    .action(async (file: string, user: string, o: { delete?: boolean; passwordStdin?: boolean; rounds: number }) => passwd(file, user, o));

  program
    .command('yank')
    .description('Yank a release or a file (PEP 592): pip skips it unless pinned')
    .argument('<root>', 'package directory holding the files')
    .argument('<target>', 'project==version, or a file name')
    .option('-r, --reason <text>', 'why it was yanked, shown by pip (one line: line breaks and control characters become spaces)')
    .action(async (root: string, target: string, o: { reason?: string }) => yank(root, target, o, false));

  program
    .command('unyank')
    .description('Undo a yank')
    .argument('<root>', 'package directory holding the files')
    .argument('<target>', 'project==version, or a file name')
    .action(async (root: string, target: string) => yank(root, target, {}, true));

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      // commander already printed help/version/the error
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' ? 0 : 2;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`pypi-lite: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
