// --rescan-interval, --poll and --poll-interval (issue 9, item 14): how the options and their environment
// variables end up in the configuration.

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import type { Command } from 'commander';
import { buildConfig, buildProgram } from '../lib/cli.js';
import type { Config } from '../lib/core/config.js';
import { tempDir } from './helpers/server.js';

describe('command line: --rescan-interval, --poll and --poll-interval', () => {
  let root: string;
  const saved = { ...process.env };

  before(async () => {
    root = await tempDir('pypi-lite-cli-rescan-');
  });
  after(async () => {
    await fsp.rm(root, { recursive: true, force: true });
  });
  afterEach(() => {
    for (const k of ['PYPI_LITE_POLL', 'PYPI_LITE_POLL_INTERVAL', 'PYPI_LITE_RESCAN_INTERVAL']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  /** Parse `serve ...args root` (without starting anything) and build its Config. */
  async function configFor(args: string[], env: Record<string, string> = {}): Promise<Pick<Config, 'poll' | 'rescanInterval'>> {
    Object.assign(process.env, env);
    const program = buildProgram();
    program.configureOutput({ writeErr: () => {}, writeOut: () => {}, outputError: () => {} });
    const serve = program.commands.find((c: Command) => c.name() === 'serve')!;
    let config: Config | undefined;
    serve.action(async (roots: string[], o: Parameters<typeof buildConfig>[1]) => {
      config = await buildConfig(roots, o);
    });
    await program.parseAsync(['node', 'pypi-lite', 'serve', ...args, root]);
    return { poll: config!.poll, rescanInterval: config!.rescanInterval };
  }

  it('rescans every 300 s and watches by default', async () => {
    expect(await configFor([])).to.deep.equal({ poll: null, rescanInterval: 300 });
  });

  it('--rescan-interval SECONDS, 0 = off, and PYPI_LITE_RESCAN_INTERVAL', async () => {
    expect((await configFor(['--rescan-interval', '60'])).rescanInterval).to.equal(60);
    expect((await configFor(['--rescan-interval', '0'])).rescanInterval).to.equal(0);
    expect((await configFor([], { PYPI_LITE_RESCAN_INTERVAL: '42' })).rescanInterval).to.equal(42);
    let err: unknown;
    try {
      await configFor(['--rescan-interval', '-1']);
    } catch (e) {
      err = e;
    }
    expect((err as { code?: string } | undefined)?.code).to.equal('commander.invalidArgument');
  });

  it('--poll polls every 5 s (--poll-interval N: every N s), and is no option value eater', async () => {
    // `serve --poll ROOT`: the root is a root, not the value of --poll.
    expect((await configFor(['--poll'])).poll).to.equal(5);
    expect((await configFor(['--poll', '--poll-interval', '30'])).poll).to.equal(30);
    expect((await configFor(['--poll-interval', '30'])).poll, 'no --poll: watch').to.equal(null);
  });

  it('PYPI_LITE_POLL_INTERVAL (PYPI_LITE_POLL: see the rescan tests, it is read when serving)', async () => {
    expect((await configFor(['--poll'], { PYPI_LITE_POLL_INTERVAL: '7' })).poll).to.equal(7);
  });
});
