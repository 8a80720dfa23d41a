// The pip command lines the UI shows, for this server's real URL (lib/ops/welcome.ts's
// serverUrl). With the PyPI fallback on, this index answers for every project (unknown ones are
// redirected to PyPI), so `--index-url` is enough; with --disable-fallback it holds only its own
// projects and pip needs PyPI too for dependencies, so the line uses `--extra-index-url`.
// Plain http to a host other than localhost needs --trusted-host, or pip ignores the index.

export interface IndexUrls {
  /** e.g. http://box:8080 or https://box.example/pypi (no trailing slash) */
  server: string;
  simple: string;
  /** The pip option naming this index: --index-url or --extra-index-url. */
  indexOption: '--index-url' | '--extra-index-url';
  /** ' --trusted-host box' for plain http to a remote host, else ''. */
  trusted: string;
}

const LOCAL = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export function indexUrls(server: string, fallbackEnabled: boolean): IndexUrls {
  const u = new URL(server);
  const trusted = u.protocol === 'http:' && !LOCAL.has(u.hostname) ? ` --trusted-host ${u.hostname}` : '';
  return { server, simple: `${server}/simple/`, indexOption: fallbackEnabled ? '--index-url' : '--extra-index-url', trusted };
}

export function pipInstallLine(urls: IndexUrls, requirement: string): string {
  return `pip install ${urls.indexOption} ${urls.simple}${urls.trusted} ${requirement}`;
}
