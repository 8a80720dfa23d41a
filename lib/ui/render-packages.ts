// /packages/: every file of the index as one flat list of links with #sha256= fragments, the
// page pypiserver serves there, so `pip install --find-links http://box:8080/packages/ NAME`
// works the same. Links are relative to the page (/packages/<relPath>), like the Simple API's.

import type { DistFile } from '../catalog/catalog.js';
import { encodePath, html } from '../simple/render.js';

export function renderPackagesIndex(files: DistFile[]): Buffer {
  const links = files.map((f) => {
    const url = encodePath(f.relPath);
    const target = f.sha256 ? `${url}#sha256=${f.sha256}` : url;
    const rp = f.metadata?.requiresPython;
    return html`<a href="${target}"${rp ? html` data-requires-python="${rp}"` : html``}${f.yank ? html` data-yanked="${f.yank.reason}"` : html``}>${f.filename}</a><br>
`;
  });
  return Buffer.from(
    html`<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>Index of packages</title>
</head>
<body>
<h1>Index of packages</h1>
${links}</body>
</html>
`.html,
  );
}
