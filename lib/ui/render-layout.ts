// The frame every UI page shares (head, header with the search form, footer) and small
// formatting helpers. Everything is built with the escaping `html` template tag of
// lib/simple/render.ts: interpolated values are escaped unless they are already markup.

import { html, raw } from '../simple/render.js';

export type Html = ReturnType<typeof raw>;

export interface PageContext {
  /** Path prefix of this server's URLs ('' or '/prefix'), from --base-url. */
  basePath: string;
  /** Versioned URLs of the stylesheet and the script. */
  cssHref: string;
  jsHref: string;
}

export interface PageOptions {
  title: string;
  description?: string;
  /** The search box's current value. */
  query?: string;
  /** Autofocus the search box (home page). */
  focusSearch?: boolean;
  body: Html;
}

/** A URL path of ours (with the reverse proxy's prefix). */
export function href(ctx: PageContext, path: string): string {
  return `${ctx.basePath}${path}`;
}

export function projectHref(ctx: PageContext, name: string, version?: string): string {
  return href(ctx, `/project/${encodeURIComponent(name)}/${version === undefined ? '' : `${encodeURIComponent(version)}/`}`);
}

export function page(ctx: PageContext, opts: PageOptions): string {
  return html`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${opts.title}</title>
${opts.description ? html`<meta name="description" content="${opts.description}">\n` : raw('')}<link rel="stylesheet" href="${ctx.cssHref}">
<script src="${ctx.jsHref}" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="site-header">
  <div class="wrap header-row">
    <a class="brand" href="${href(ctx, '/')}"><span class="brand-mark" aria-hidden="true">◆</span> pypi-lite</a>
    <form class="search" role="search" method="get" action="${href(ctx, '/search')}">
      <label class="visually-hidden" for="q">Search projects</label>
      <input id="q" name="q" type="search" placeholder="Search projects" value="${opts.query ?? ''}" autocomplete="off" spellcheck="false"${opts.focusSearch ? raw(' autofocus') : raw('')}>
      <button type="submit">Search</button>
    </form>
  </div>
</header>
<main id="main" class="wrap">
${opts.body}
</main>
<footer class="site-footer">
  <div class="wrap">
    <nav aria-label="Index APIs"><a href="${href(ctx, '/simple/')}">Simple index</a> · <a href="${href(ctx, '/packages/')}">All files</a></nav>
    <p>Served by pypi-lite, a private Python package index.</p>
  </div>
</footer>
</body>
</html>
`.html;
}

/** A friendly "not found" page (the status and reason phrase are set by the caller). */
export function notFoundPage(ctx: PageContext, title: string, message: Html, query: string): string {
  return page(ctx, {
    title: `${title} · pypi-lite`,
    query,
    body: html`<section class="notice-page">
  <h1>${title}</h1>
  <p>${message}</p>
  <p><a class="button" href="${href(ctx, '/')}">Browse all projects</a></p>
</section>`,
  });
}

const UNITS = ['bytes', 'KB', 'MB', 'GB', 'TB'];

export function formatSize(n: number): string {
  if (n < 1024) return `${n} ${n === 1 ? 'byte' : 'bytes'}`;
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${UNITS[u]}`;
}

export function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export function isoMinute(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** <time> element showing a date, with the full timestamp for machines and on hover. */
export function time(ms: number, withTime = false): Html {
  const iso = new Date(ms).toISOString();
  const minute = `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
  // (An ISO timestamp has nothing to escape.)
  return raw(`<time datetime="${iso}" title="${minute}">${withTime ? minute : iso.slice(0, 10)}</time>`);
}

/** 12345 -> '12,345' (toLocaleString costs microseconds per call, too much for a list). */
export function thousands(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${thousands(n)} ${n === 1 ? one : many}`;
}
