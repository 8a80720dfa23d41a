// The home page (projects, most recently updated first, paginated; how to use this index) and
// the search results page.

import { html, raw } from '../simple/render.js';
import { pipInstallLine, type IndexUrls } from './install.js';
import type { ProjectEntry } from './project-index.js';
import { href, page, plural, projectHref, time, type Html, type PageContext } from './render-layout.js';

export const PAGE_SIZE = 50;
export const SEARCH_LIMIT = 100;

function projectList(ctx: PageContext, entries: ProjectEntry[]): Html {
  if (entries.length === 0) return raw('');
  const items = entries.map(
    (e) => html`  <li class="project-card">
    <a class="project-link" href="${projectHref(ctx, e.name)}"><span class="project-name">${e.displayName}</span> <span class="project-version">${e.latest}</span></a>
    <p class="project-summary">${e.summary ?? ''}</p>
    <p class="project-meta">Updated ${time(e.updatedMs)} · ${plural(e.releases, 'release')} · ${plural(e.files, 'file')}</p>
  </li>
`,
  );
  return html`<ul class="project-list">
${items}</ul>`;
}

function copyBlock(label: string, text: string): Html {
  return html`<div class="command"><pre><code>${text}</code></pre><button type="button" class="copy" data-copy="${text}" hidden aria-label="Copy: ${label}">Copy</button></div>`;
}

export interface HomeData {
  entries: ProjectEntry[];
  totalProjects: number;
  totalFiles: number;
  page: number;
  pages: number;
  urls: IndexUrls;
}

export function renderHome(ctx: PageContext, d: HomeData): string {
  const pypirc = `[distutils]
index-servers =
    pypi-lite

[pypi-lite]
repository = ${d.urls.server}/
username = <your user>
password = <your password>`;
  const pager =
    d.pages > 1
      ? html`<nav class="pager" aria-label="Pages">
  ${d.page > 1 ? html`<a rel="prev" href="${href(ctx, d.page === 2 ? '/' : `/?page=${d.page - 1}`)}">← Newer</a>` : raw('<span></span>')}
  <span>Page ${d.page} of ${d.pages}</span>
  ${d.page < d.pages ? html`<a rel="next" href="${href(ctx, `/?page=${d.page + 1}`)}">Older →</a>` : raw('<span></span>')}
</nav>`
      : raw('');
  const body = html`<section class="hero">
  <h1>Private Python packages</h1>
  <p class="lead">${plural(d.totalProjects, 'project')} · ${plural(d.totalFiles, 'file')} on this index.</p>
</section>
<div class="home-grid">
<section class="home-projects" aria-labelledby="recent-heading">
  <h2 id="recent-heading">${d.page === 1 ? 'Recently updated' : 'Projects'}</h2>
  ${d.entries.length ? projectList(ctx, d.entries) : html`<p class="empty">No packages yet. Upload one with twine (see “Upload” on this page).</p>`}
  ${pager}
</section>
<aside class="home-help" aria-labelledby="help-heading">
  <h2 id="help-heading">Use this index</h2>
  <h3>Install with pip</h3>
  ${copyBlock('pip install command', pipInstallLine(d.urls, 'PACKAGE'))}
  <p class="hint">${
    d.urls.indexOption === '--index-url'
      ? html`Projects this index does not have are redirected to PyPI, so this one URL is enough.`
      : html`This index holds only its own projects; <code>--extra-index-url</code> lets pip take the others from PyPI. To install only from here, use <code>--index-url</code>.`
  } With uv: <code>uv pip install ${d.urls.indexOption} ${d.urls.simple} PACKAGE</code>.</p>
  <h3>Upload with twine</h3>
  ${copyBlock('twine upload command', `twine upload --repository-url ${d.urls.server}/ -u USER dist/*`)}
  <details>
    <summary>Or with <code>~/.pypirc</code></summary>
    <pre><code>${pypirc}</code></pre>
    <p>then <code>twine upload -r pypi-lite dist/*</code></p>
  </details>
  <h3>Upload with uv</h3>
  ${copyBlock('uv publish command', `uv publish --publish-url ${d.urls.server}/ -u USER dist/*`)}
</aside>
</div>`;
  return page(ctx, { title: 'pypi-lite', description: 'A private Python package index', focusSearch: false, body });
}

export interface SearchData {
  query: string;
  total: number;
  entries: ProjectEntry[];
}

export function renderSearch(ctx: PageContext, d: SearchData): string {
  const heading = d.query ? html`Results for “${d.query}”` : html`Search`;
  let summary: Html;
  if (!d.query) summary = html`<p>Type a project name, part of one, or words from a summary.</p>`;
  else if (d.total === 0) summary = html`<p class="empty">No project matches “${d.query}”. <a href="${href(ctx, '/')}">Browse all projects</a>.</p>`;
  else if (d.total > d.entries.length) summary = html`<p class="result-count">Showing the first ${d.entries.length} of ${plural(d.total, 'project')}; refine the search to see others.</p>`;
  else summary = html`<p class="result-count">${plural(d.total, 'project')}</p>`;
  const body = html`<section aria-labelledby="results-heading">
  <h1 id="results-heading">${heading}</h1>
  ${summary}
  ${projectList(ctx, d.entries)}
</section>`;
  return page(ctx, { title: d.query ? `${d.query} · Search · pypi-lite` : 'Search · pypi-lite', query: d.query, body });
}
