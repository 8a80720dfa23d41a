// The project page (/project/<name>/ and /project/<name>/<version>/): what the release is, how
// to install it, its README, metadata, release history and files.

import type { DistFile } from '../catalog/catalog.js';
import { isPrerelease } from '../catalog/version.js';
import { encodePath, html, raw } from '../simple/render.js';
import { pipInstallLine, type IndexUrls } from './install.js';
import type { ReleaseDetails } from './release.js';
import { formatSize, href, page, projectHref, time, type Html, type PageContext } from './render-layout.js';

export interface ReleaseRow {
  version: string;
  uploadedMs: number;
  /** null = not yanked; '' = yanked without a reason. */
  yankReason: string | null;
}

export interface ProjectPageModel {
  name: string;
  displayName: string;
  version: string;
  latest: string;
  /** Was a version asked for in the URL? (the install line then pins it) */
  pinned: boolean;
  details: ReleaseDetails;
  /** Newest first. */
  releases: ReleaseRow[];
  files: DistFile[];
  urls: IndexUrls;
}

function yankOf(files: DistFile[]): string | null {
  if (files.length === 0 || !files.every((f) => f.yank)) return null;
  return files.find((f) => f.yank?.reason)?.yank?.reason ?? '';
}

export function releaseRow(version: string, files: DistFile[]): ReleaseRow {
  return { version, uploadedMs: Math.min(...files.map((f) => f.mtimeMs)), yankReason: yankOf(files) };
}

function copyBlock(label: string, text: string): Html {
  return html`<div class="command"><pre><code>${text}</code></pre><button type="button" class="copy" data-copy="${text}" hidden aria-label="Copy: ${label}">Copy</button></div>`;
}

const EMAIL = /^[^\s<>"@]+@[^\s<>"@]+$/;

/** People from Author / Author-email (which may be `Name <addr>, Other <addr2>`), as mailto links when possible. */
function people(name: string | null, emails: string | null): Html | null {
  const parsed: { name: string | null; email: string | null }[] = [];
  for (const part of (emails ?? '').split(',')) {
    const t = part.trim();
    if (!t) continue;
    const m = /^"?([^"<]*?)"?\s*<([^>]+)>$/.exec(t);
    if (m && EMAIL.test(m[2].trim())) parsed.push({ name: m[1].trim() || null, email: m[2].trim() });
    else if (EMAIL.test(t)) parsed.push({ name: null, email: t });
    else parsed.push({ name: t, email: null });
  }
  if (parsed.length === 0) return name ? html`${name}` : null;
  if (name && parsed.every((p) => p.name === null)) parsed[0].name = name;
  else if (name && !parsed.some((p) => p.name === name)) parsed.unshift({ name, email: null });
  const items = parsed.map((p) => (p.email ? html`<a href="mailto:${p.email}">${p.name ?? p.email}</a>` : html`${p.name ?? ''}`));
  return html`${items.flatMap((item, i) => (i === 0 ? [item] : [raw(', '), item]))}`;
}

function keywordList(keywords: string | null): Html | null {
  if (!keywords) return null;
  const words = (keywords.includes(',') ? keywords.split(',') : keywords.split(/\s+/)).map((w) => w.trim()).filter(Boolean);
  if (words.length === 0) return null;
  return html`<span class="keywords">${words.map((w) => html`<span class="keyword">${w}</span>`)}</span>`;
}

function metaItem(term: string, value: Html | string | null): Html {
  if (value === null || value === '') return raw('');
  return html`<dt>${term}</dt><dd>${value}</dd>`;
}

function sidebar(m: ProjectPageModel): Html {
  const d = m.details;
  // Only http(s) links are shown (a javascript: or other URL in the metadata is left out).
  const links = d.projectUrls.filter(([, url]) => /^https?:\/\//i.test(url)).map(([label, url]) => html`<li><a href="${url}" rel="nofollow noopener">${label}</a></li>`);
  const license = d.licenseExpression ?? (d.license && d.license.length <= 200 ? d.license : null) ?? licenseFromClassifiers(d.classifiers);
  const groups = new Map<string, string[]>();
  for (const c of d.classifiers) {
    const [top, ...rest] = c.split(' :: ');
    if (!top) continue;
    const list = groups.get(top) ?? [];
    list.push(rest.join(' :: ') || top);
    groups.set(top, list);
  }
  const classifiers = [...groups].map(
    ([top, items]) => html`<li><span class="classifier-group">${top}</span><ul>${items.map((i) => html`<li>${i}</li>`)}</ul></li>`,
  );
  return html`<aside class="sidebar" aria-label="Project details">
  ${links.length ? html`<section><h2>Project links</h2><ul class="link-list">${links}</ul></section>` : raw('')}
  <section>
    <h2>Meta</h2>
    <dl class="meta">
      ${metaItem('Requires Python', d.requiresPython ? html`<code>${d.requiresPython}</code>` : null)}
      ${metaItem('License', license)}
      ${metaItem('Author', people(d.author, d.authorEmail))}
      ${metaItem('Maintainer', people(d.maintainer, d.maintainerEmail))}
      ${metaItem('Keywords', keywordList(d.keywords))}
    </dl>
  </section>
  ${d.requiresDist.length ? html`<section><h2>Dependencies</h2><ul class="deps">${d.requiresDist.map((r) => html`<li><code>${r}</code></li>`)}</ul></section>` : raw('')}
  ${classifiers.length ? html`<section><h2>Classifiers</h2><ul class="classifiers">${classifiers}</ul></section>` : raw('')}
</aside>`;
}

function licenseFromClassifiers(classifiers: string[]): string | null {
  const c = classifiers.find((x) => x.startsWith('License :: '));
  return c ? c.split(' :: ').pop()! : null;
}

function history(ctx: PageContext, m: ProjectPageModel): Html {
  const rows = m.releases.map((r) => {
    const current = r.version === m.version;
    const badges: Html[] = [];
    if (r.version === m.latest) badges.push(html`<span class="badge badge-latest">latest</span>`);
    if (isPrerelease(r.version)) badges.push(html`<span class="badge badge-pre">pre-release</span>`);
    if (r.yankReason !== null) badges.push(html`<span class="badge badge-yanked">yanked</span>`);
    return html`<li class="${current ? 'release current' : 'release'}${r.yankReason !== null ? ' yanked' : ''}">
  <a href="${projectHref(ctx, m.name, r.version)}"${current ? raw(' aria-current="page"') : raw('')}><span class="release-version">${r.version}</span></a> ${badges}
  <span class="release-date">${time(r.uploadedMs)}</span>
  ${r.yankReason !== null ? html`<p class="yank-reason">${r.yankReason ? html`Yanked: ${r.yankReason}` : html`Yanked (no reason given)`}</p>` : raw('')}
</li>`;
  });
  return html`<section id="history" aria-labelledby="history-heading">
  <h2 id="history-heading">Release history</h2>
  <ol class="releases">${rows}</ol>
</section>`;
}

function fileKind(f: DistFile): string {
  if (f.parsed.kind === 'wheel') return `Wheel · ${f.parsed.pythonTag}`;
  return 'Source';
}

function filesTable(ctx: PageContext, m: ProjectPageModel): Html {
  const rows = m.files.map((f) => {
    const url = href(ctx, `/packages/${encodePath(f.relPath)}`);
    return html`<li class="${f.yank ? 'file yanked' : 'file'}">
  <div class="file-head"><a class="file-name" href="${url}" download>${f.filename}</a>${f.yank ? html` <span class="badge badge-yanked">yanked</span>` : raw('')}</div>
  <dl class="file-meta">
    <div><dt>Type</dt><dd>${fileKind(f)}</dd></div>
    <div><dt>Size</dt><dd>${formatSize(f.size)}</dd></div>
    <div><dt>Uploaded</dt><dd>${time(f.mtimeMs, true)}</dd></div>
    ${f.metadata?.requiresPython ? html`<div><dt>Requires Python</dt><dd><code>${f.metadata.requiresPython}</code></dd></div>` : raw('')}
    <div class="hash"><dt>SHA256</dt><dd>${f.sha256 ? html`<code class="sha">${f.sha256}</code><button type="button" class="copy copy-small" data-copy="${f.sha256}" hidden aria-label="Copy SHA256 of ${f.filename}">Copy</button>` : html`<span class="muted">being computed</span>`}</dd></div>
  </dl>
</li>`;
  });
  return html`<section id="files" aria-labelledby="files-heading">
  <h2 id="files-heading">Files for ${m.displayName} ${m.version}</h2>
  <ul class="files">${rows}</ul>
</section>`;
}

export function renderProject(ctx: PageContext, m: ProjectPageModel): string {
  const d = m.details;
  const current = m.releases.find((r) => r.version === m.version);
  const requirement = m.pinned ? `${m.displayName}==${m.version}` : m.displayName;
  const notices: Html[] = [];
  if (current && current.yankReason !== null) {
    notices.push(html`<p class="notice notice-yanked" role="note"><strong>This release is yanked${current.yankReason ? html`: ${current.yankReason}` : html``}.</strong> pip ignores it unless a requirement pins it with <code>==</code>.</p>`);
  }
  if (m.version !== m.latest) {
    notices.push(html`<p class="notice" role="note">This is not the latest release. The latest is <a href="${projectHref(ctx, m.name)}">${m.displayName} ${m.latest}</a>.</p>`);
  }
  const body = html`<article class="project">
<header class="project-header">
  <div class="project-title">
    <h1>${m.displayName} <span class="version">${m.version}</span></h1>
    ${d.summary ? html`<p class="summary">${d.summary}</p>` : raw('')}
  </div>
  <div class="install">
    <h2 class="visually-hidden">Install</h2>
    ${copyBlock('pip install command', pipInstallLine(m.urls, requirement))}
    ${current ? html`<p class="released">Released ${time(current.uploadedMs)}</p>` : raw('')}
  </div>
</header>
${notices}
<nav class="jump" aria-label="On this page"><a href="#description">Description</a><a href="#history">Release history (${m.releases.length})</a><a href="#files">Files (${m.files.length})</a></nav>
<div class="project-grid">
  <div class="project-main">
    <section id="description" aria-labelledby="description-heading">
      <h2 id="description-heading" class="visually-hidden">Description</h2>
      ${d.readmeHtml ? html`<div class="readme">${raw(d.readmeHtml)}</div>` : html`<p class="empty">The author of this package has not provided a project description.</p>`}
    </section>
    ${history(ctx, m)}
    ${filesTable(ctx, m)}
  </div>
  ${sidebar(m)}
</div>
</article>`;
  return page(ctx, {
    title: `${m.displayName} ${m.version} · pypi-lite`,
    description: d.summary ?? `${m.displayName} ${m.version}`,
    body,
  });
}
