// yauzl (the streaming zip reader's library), loaded with require() instead of `import`.
//
// Importing a CommonJS package from an ES module sends it through Node's ESM loader, which on
// Node 20 and 22 pre-parses its entry file for its export names; for yauzl's (43 KB) that cost
// 6-8 MB of RSS that stays (this folder's extract.js: 7.8-9.0 MB on Node 20, 10.2-13 MB on 22,
// against 1.8 MB with require()), once in the main thread and once in each hashing worker,
// which load this reader too. On Node 24 and 26 yauzl costs 3.8-5.6 MB either way. Measured by
// test/metadata.test.ts ("loading the metadata reader costs ... little more than yauzl itself").

import { createRequire } from 'node:module';
import type * as Yauzl from 'yauzl';

export const yauzl = createRequire(import.meta.url)('yauzl') as typeof Yauzl;
