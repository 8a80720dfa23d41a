// yauzl (the streaming zip reader's library), loaded with require() instead of `import`.
//
// Importing a CommonJS package from an ES module sends it through Node's ESM loader, which
// pre-parses its entry file for its export names; for yauzl's (43 KB) that costs 6-8 MB of RSS
// that stays (Node 20: 7.8-9.0 MB for this folder's extract.js against 1.8 MB with require();
// Node 22: 10.2 MB), once in the main thread and once in each hashing worker, which load this
// reader too. Measured by test/metadata.test.ts ("loading the metadata reader costs ...").

import { createRequire } from 'node:module';
import type * as Yauzl from 'yauzl';

export const yauzl = createRequire(import.meta.url)('yauzl') as typeof Yauzl;
