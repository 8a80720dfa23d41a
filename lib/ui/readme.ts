// README rendering for the project pages: the metadata's long description turned into HTML by
// its Description-Content-Type, then sanitized on the server. Markdown goes through markdown-it
// (CommonMark + GitHub-flavoured tables and strikethrough, fenced code; raw HTML allowed because
// READMEs use it for centred logos and badges), then everything goes through sanitize-html with
// an allowlist: no script, no event handlers, no style, no frames or forms, links only to
// http(s)/mailto with rel="nofollow noopener", images only from http(s) URLs. reStructuredText
// and plain text are shown as preformatted text.

import MarkdownIt from 'markdown-it';
import sanitizeHtml from 'sanitize-html';
import { escapeHtml } from '../simple/render.js';

/** Longest description rendered; the rest is cut (metadata extraction is bounded anyway). */
export const MAX_README_CHARS = 512 * 1024;

const md = new MarkdownIt({ html: true, linkify: true, typographer: false });

/** README headings move one level down: the page's own <h1> is the project name. */
const HEADING_SHIFT: Record<string, string> = { h1: 'h2', h2: 'h3', h3: 'h4', h4: 'h5', h5: 'h6', h6: 'h6' };

function alignFromStyle(tagName: string, attribs: sanitizeHtml.Attributes): sanitizeHtml.Tag {
  const m = /(?:^|;)\s*text-align\s*:\s*(left|right|center)\s*(?:;|$)/i.exec(attribs.style ?? '');
  const { style: _style, ...rest } = attribs;
  return { tagName, attribs: m ? { ...rest, align: m[1].toLowerCase() } : rest };
}

const SANITIZE: sanitizeHtml.IOptions = {
  allowedTags: [
    'h2', 'h3', 'h4', 'h5', 'h6', 'p', 'br', 'hr', 'blockquote', 'pre', 'code', 'kbd', 'samp', 'var',
    'em', 'strong', 'b', 'i', 'u', 's', 'del', 'ins', 'mark', 'small', 'sub', 'sup', 'abbr', 'q', 'cite', 'dfn', 'span', 'div',
    'ul', 'ol', 'li', 'dl', 'dt', 'dd', 'a', 'img', 'picture', 'figure', 'figcaption',
    'table', 'caption', 'thead', 'tbody', 'tfoot', 'tr', 'th', 'td', 'details', 'summary',
  ],
  allowedAttributes: {
    a: ['href', 'title', 'rel'],
    img: ['src', 'alt', 'title', 'width', 'height'],
    code: ['class'],
    ol: ['start'],
    th: ['align', 'colspan', 'rowspan'],
    td: ['align', 'colspan', 'rowspan'],
    abbr: ['title'],
    details: ['open'],
  },
  allowedClasses: { code: [/^language-[\w+#.-]+$/] },
  allowedSchemes: ['http', 'https', 'mailto'],
  allowedSchemesByTag: { img: ['http', 'https'] },
  allowedSchemesAppliedToAttributes: ['href', 'src', 'cite'],
  allowProtocolRelative: false,
  allowedStyles: {},
  disallowedTagsMode: 'discard',
  transformTags: {
    ...Object.fromEntries(Object.entries(HEADING_SHIFT).map(([from, to]) => [from, sanitizeHtml.simpleTransform(to, {})])),
    // markdown-it aligns table columns with style="text-align:..."; styles are dropped (and the
    // CSP forbids inline style), so keep the alignment as the align attribute.
    th: alignFromStyle,
    td: alignFromStyle,
    a: sanitizeHtml.simpleTransform('a', { rel: 'nofollow noopener' }),
  },
  // Images only from absolute http(s) URLs (a relative src would point into this server).
  exclusiveFilter: (frame) => frame.tag === 'img' && !/^https?:\/\//i.test(frame.attribs.src ?? ''),
};

export type ReadmeFormat = 'markdown' | 'rst' | 'plain';

/** Which renderer a Description-Content-Type asks for (PyPI's default is reStructuredText). */
export function readmeFormat(contentType: string | null | undefined): ReadmeFormat {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'text/markdown') return 'markdown';
  if (type === 'text/plain') return 'plain';
  return 'rst';
}

/** Sanitize a fragment of HTML with the README allowlist. */
export function sanitizeReadmeHtml(html: string): string {
  return sanitizeHtml(html, SANITIZE);
}

/** The README as safe HTML ('' when there is none). */
export function renderReadme(description: string | null | undefined, contentType: string | null | undefined): string {
  if (!description || !description.trim()) return '';
  let text = description;
  let note = '';
  if (text.length > MAX_README_CHARS) {
    text = text.slice(0, MAX_README_CHARS);
    note = `<p class="readme-cut">The description is longer than ${MAX_README_CHARS / 1024} KB and was cut here.</p>`;
  }
  if (readmeFormat(contentType) === 'markdown') return sanitizeReadmeHtml(md.render(text)) + note;
  return `<pre class="readme-text">${escapeHtml(text)}</pre>${note}`;
}
