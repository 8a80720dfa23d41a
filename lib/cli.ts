// The `pypi-lite` command line: serve, passwd, yank/unyank. Option names follow pypiserver's
// where it has one; every serve option can also come from a PYPI_LITE_* environment variable.

import { promises as fsp, constants as fsConstants, readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { intParser, isSwitch, resolveConfig, SERVE_OPTIONS, type Config, type OptionRow, type ServeOptions } from './core/config.js';
import { createLogger } from './core/log.js';
import { HeapTuning } from './core/heap.js';
import { startServer } from './server.js';
import { hashPassword } from './auth/hashes.js';
import { deleteUser, setUser } from './auth/htpasswd-edit.js';
import { HtpasswdError, isValidUsername, parseHtpasswd } from './auth/htpasswd.js';
import { UpstreamCacheError } from './upstream/upstream.js';
import { isS3Url, parseS3Url, StoreStartError } from './store/s3-client.js';
import { editYankFile, normalizeReason } from './catalog/yank.js';
import { editFile } from './core/edit-file.js';

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

async function checkRoot(root: string): Promise<string> {
  // An S3 root is checked against the store itself when the server starts (lib/server.ts).
  if (isS3Url(root)) {
    try {
      return parseS3Url(root).id;
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
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

export async function buildConfig(roots: string[], o: ServeOptions): Promise<Config> {
  const resolvedRoots: string[] = [];
  for (const r of roots.length ? roots : ['./packages']) resolvedRoots.push(await checkRoot(r));
  let passwords: string | null = null;
  if (o.passwords && o.passwords !== '.') {
    passwords = path.resolve(o.passwords);
    try {
      await fsp.access(passwords, fsConstants.R_OK);
    } catch {
      throw new UsageError(`password file ${passwords} does not exist or cannot be read (create it with: pypi-lite passwd ${o.passwords} USER)`);
    }
  }
  try {
    return resolveConfig(resolvedRoots, o, passwords);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

async function serve(roots: string[], o: ServeOptions): Promise<void> {
  const heap = new HeapTuning();
  const config = await buildConfig(roots, o);
  const log = createLogger(config.logLevel, config.logFormat);
  if (config.anonymousUploads) {
    log.warn('ANONYMOUS WRITES ARE ON (-a . -P .): anyone who can reach this server may upload, remove and yank packages');
  }
  let running;
  try {
    running = await startServer(config, log, { onLargeUpload: () => heap.streaming() });
    running.loaded.then(() => heap.loaded(), () => {});
  } catch (err) {
    if (err instanceof HtpasswdError || err instanceof UpstreamCacheError || err instanceof StoreStartError) throw new UsageError(err.message);
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') throw new UsageError(`port ${config.port} on ${config.host} is already in use`);
    if (e.code === 'EACCES') throw new UsageError(`not allowed to listen on ${config.host}:${config.port}`);
    throw err;
  }
  const { url } = running;
  log.flush(); // the start-up lines before the banner that tells the user (and tests) it is up
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
    // log.flush() writes the buffered lines synchronously (lib/log.ts): none is lost to exit().
    running.close().then(
      () => {
        log.flush();
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'error during shutdown');
        log.flush();
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

/** A parser for commander: its Error becomes commander's usage error (exit 2, help after it). */
function parser<T>(parse: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

/** The commander option for a row of SERVE_OPTIONS (lib/config.ts). */
function commanderOption(spec: OptionRow): Option {
  if (isSwitch(spec)) {
    // Not .env(): commander would take any value (even "0") as on; see switchesFromEnv.
    return new Option(spec.flags, `${spec.help} (env: ${spec.env}=1)`);
  }
  const option = new Option(spec.flags, spec.help).env(spec.env);
  if (spec.default !== undefined) option.default(spec.default, spec.defaultHelp);
  if (spec.choices) option.choices(spec.choices);
  if (spec.parse) option.argParser(parser(spec.parse));
  if (spec.repeatable) option.argParser((value: string, previous: string[]) => [...previous, ...value.split(',')]);
  return option;
}

/** Switches from the environment (1/true/yes/on, 0/false/no/off), unless given on the command line. */
function switchesFromEnv(cmd: Command): void {
  for (const [key, spec] of Object.entries<OptionRow>(SERVE_OPTIONS)) {
    if (!isSwitch(spec) || cmd.getOptionValueSource(key) === 'cli') continue;
    const on = envFlag(spec.env);
    // --no-metrics: PYPI_LITE_NO_METRICS=1 turns metrics off.
    if (on !== undefined) cmd.setOptionValueWithSource(key, spec.flags.startsWith('--no-') ? !on : on, 'env');
  }
}

export function buildProgram(): Command {
  const program = new Command('pypi-lite')
    .description('A fast, self-hosted private Python package index')
    .version(version(), '-V, --version')
    .showHelpAfterError()
    .exitOverride();

  const serveCommand = program
    .command('serve')
    .description('Serve package directories over the PyPI Simple API and accept uploads')
    .argument('[roots...]', 'package directories (default ./packages); the first receives uploads');
  for (const spec of Object.values<OptionRow>(SERVE_OPTIONS)) serveCommand.addOption(commanderOption(spec));
  serveCommand.hook('preAction', (cmd) => switchesFromEnv(cmd)).action(async (roots: string[], o: ServeOptions) => serve(roots, o));

  program
    .command('passwd')
    .description('Create or update a user in an htpasswd file (bcrypt), or delete one')
    .argument('<file>', 'htpasswd file (created if missing)')
    .argument('<user>', 'user name')
    .option('-D, --delete', 'delete the user')
    .option('--password-stdin', 'read the password from standard input (for scripts)')
    .addOption(new Option('--rounds <n>', 'bcrypt cost').default(10).argParser(parser(intParser('--rounds', 4, 15))))
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
