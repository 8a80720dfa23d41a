// The welcome page at /: what this server holds and the exact lines to use it with pip, uv,
// twine and .pypirc, built from the URL the visitor actually used.

import type { Request } from 'express';
import type { Config } from '../core/config.js';
import { html } from '../simple/render.js';
import { API_VERSION } from '../simple/render.js';

export function serverUrl(req: Request, config: Config): string {
  if (config.baseOrigin) return `${config.baseOrigin}${config.basePath}`;
  const host = req.headers.host && /^[A-Za-z0-9.\-:[\]]+$/.test(req.headers.host) ? req.headers.host : `localhost:${config.port}`;
  return `http://${host}${config.basePath}`;
}

export function renderWelcome(req: Request, config: Config, size: { projects: number; files: number }): string {
  const url = serverUrl(req, config);
  const simple = `${url}/simple/`;
  const host = new URL(url).hostname;
  const pypirc = `[distutils]
index-servers =
    pypi-lite

[pypi-lite]
repository = ${url}/
username = <your user>
password = <your password>`;
  return html`<!DOCTYPE html>
<html>
  <head>
    <meta charset="utf-8">
    <meta name="pypi:repository-version" content="${API_VERSION}">
    <title>pypi-lite</title>
    <style>body{font-family:sans-serif;max-width:50em;margin:2em auto;padding:0 1em}pre{background:#f4f4f4;padding:.6em;overflow:auto}</style>
  </head>
  <body>
    <h1>Welcome to pypi-lite</h1>
    <p>This is a private Python package index serving ${String(size.projects)} projects (${String(size.files)} files).
       Browse the <a href="simple/">simple index</a>.</p>
    <h2>Install with pip</h2>
    <pre>pip install --extra-index-url ${simple} PACKAGE</pre>
    <p>or only from this index:</p>
    <pre>pip install --index-url ${simple} PACKAGE</pre>
    <p>For plain http, add <code>--trusted-host ${host}</code> when the host is not localhost.</p>
    <h2>Install with uv</h2>
    <pre>uv pip install --extra-index-url ${simple} PACKAGE</pre>
    <h2>Upload with twine</h2>
    <pre>twine upload --repository-url ${url}/ -u USER dist/*</pre>
    <p>or with this <code>~/.pypirc</code> and <code>twine upload -r pypi-lite dist/*</code>:</p>
    <pre>${pypirc}</pre>
    <h2>Upload with uv</h2>
    <pre>uv publish --publish-url ${url}/ -u USER dist/*</pre>
  </body>
</html>
`.html;
}
