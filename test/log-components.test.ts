// What operators read in the JSON log of a running server: one object per line, each key once.
// Found by hand (a new user's `pypi-lite serve` printed
// {"component":"indexer","component":"indexer",...,"msg":"catalog loaded"}): a component that
// names itself on a logger that its caller already named duplicates the key, and log tools
// disagree on which copy counts (some reject the line).

import { expect } from 'chai';
import { closeSync, openSync, promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { createLogger } from '../lib/core/log.js';
import { startServer } from '../lib/server.js';
import { makeConfig } from './helpers/config.js';
import { copyExample, tempDir } from './helpers/server.js';

/**
 * The keys that one JSON line has twice at some level: JSON.parse keeps one copy of each, so a key
 * written more often in the line than in its re-serialized parse was duplicated.
 */
function duplicateKeys(line: string): string[] {
  const once = JSON.stringify(JSON.parse(line));
  const keys = new Set(once.match(/"[^"\\]+":/g) ?? []);
  return [...keys].filter((k) => line.split(k).length > once.split(k).length);
}

describe('the JSON log of a running server', function () {
  this.timeout(60_000);

  it('names each line\'s component once (no key twice in a line)', async () => {
    const dir = await tempDir('pypi-lite-logkeys-');
    const root = await copyExample();
    const file = path.join(dir, 'log');
    const fd = openSync(file, 'a');
    const log = createLogger('info', 'json', fd);
    const running = await startServer(makeConfig({ roots: [root], logLevel: 'info' }), log);
    try {
      await running.loaded;
      await running.indexer.whenIdle();
    } finally {
      await running.close();
      log.flush();
      closeSync(fd);
    }
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    expect(lines.some((l) => l.includes('catalog loaded')), 'the log has the "catalog loaded" line').to.equal(true);
    const bad = lines.filter((l) => duplicateKeys(l).length > 0);
    expect(bad, 'lines with a key twice').to.deep.equal([]);
    await fsp.rm(dir, { recursive: true, force: true });
    await fsp.rm(root, { recursive: true, force: true });
  });
});
