// Config for in-process tests: the defaults of `pypi-lite serve` (lib/core/config.ts's SERVE_OPTIONS),
// except what a test server needs: any free port on loopback, no PyPI fallback, no logs, two
// worker threads. Roots are taken as given (the CLI would check and resolve them).

import { resolveConfig, serveDefaults, type Config } from '../../lib/core/config.js';

export function makeConfig(partial: Partial<Config> & { roots: string[] }): Config {
  const options = { ...serveDefaults(), port: 0, host: '127.0.0.1', disableFallback: true, logLevel: 'silent', workers: 2 };
  return { ...resolveConfig(partial.roots, options, null), ...partial };
}
