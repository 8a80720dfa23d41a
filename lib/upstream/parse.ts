// Defensive parsing of an upstream project page: PEP 691 JSON or PEP 503 HTML (htmlparser2).
// Whatever the upstream sends, the result is a list of well-formed entries: a file whose name,
// URL or digest is unusable is left out, and odd attribute values are dropped, never thrown.

import type { Parser as HtmlParser } from 'htmlparser2';
import { parseFilename } from '../catalog/filename.js';
import { compareVersions } from '../catalog/version.js';
import type { ListedFile } from '../simple/listing.js';

/** One file as the upstream lists it: a ListedFile whose URL is the upstream's (absolute, http or https only). */
export type UpstreamFile = ListedFile;

export interface UpstreamPage {
  files: UpstreamFile[];
  versions: string[];
}

export class PageParseError extends Error {}

const HEX = /^[0-9a-f]+$/;
const HASH_NAME = /^[a-z0-9_]{1,32}$/;
const UPLOAD_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$/;
const MAX_TEXT = 1024;

/** A file name that is safe as a URL segment and a cache key: one path segment, printable. */
export function isSafeFilename(name: string): boolean {
  return name.length > 0 && name.length <= 255 && !name.startsWith('.') && !/[\\/\u0000-\u001f\u007f]/.test(name);
}

function text(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  const t = v.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return t && t.length <= MAX_TEXT ? t : null;
}

function hexDigest(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  const h = v.trim().toLowerCase();
  return h.length >= 32 && h.length <= 128 && HEX.test(h) ? h : null;
}

function absoluteHttp(href: string, base: string): URL | null {
  try {
    const u = new URL(href, base);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u : null;
  } catch {
    return null;
  }
}

/** Versions of the listed files that parse, in PEP 440 order. */
function versionsOf(files: UpstreamFile[], listed: unknown): string[] {
  const set = new Set<string>();
  if (Array.isArray(listed)) for (const v of listed) if (typeof v === 'string' && v.length <= 128 && !/[\s<>"']/.test(v)) set.add(v);
  for (const f of files) {
    const parsed = parseFilename(f.filename);
    if (parsed) set.add(parsed.version);
  }
  return [...set].sort((a, b) => compareVersions(a, b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** First entry per file name wins; files without a usable URL or name are dropped. */
function finish(files: (UpstreamFile | null)[], versions: unknown): UpstreamPage {
  const seen = new Set<string>();
  const out: UpstreamFile[] = [];
  for (const f of files) {
    if (!f || seen.has(f.filename)) continue;
    seen.add(f.filename);
    out.push(f);
  }
  return { files: out, versions: versionsOf(out, versions) };
}

function urlFile(href: string, base: string): { url: URL; filename: string; fragmentHash: [string, string] | null } | null {
  const url = absoluteHttp(href, base);
  if (!url) return null;
  let filename: string;
  try {
    filename = decodeURIComponent(url.pathname.slice(url.pathname.lastIndexOf('/') + 1));
  } catch {
    return null;
  }
  let fragmentHash: [string, string] | null = null;
  const m = /^#([a-z0-9_]+)=([0-9a-fA-F]+)$/.exec(url.hash);
  if (m && HASH_NAME.test(m[1])) {
    const h = hexDigest(m[2]);
    if (h) fragmentHash = [m[1], h];
  }
  url.hash = '';
  return { url, filename, fragmentHash };
}

function coreMetadataFrom(v: unknown): string | null {
  if (typeof v === 'string') {
    const m = /^sha256=([0-9a-fA-F]{64})$/.exec(v.trim());
    return m ? m[1].toLowerCase() : null;
  }
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const h = hexDigest((v as Record<string, unknown>).sha256);
    return h && h.length === 64 ? h : null;
  }
  return null;
}

/** PEP 691 JSON. Throws PageParseError when the document is not a project page at all. */
export function parseJsonPage(body: string, pageUrl: string): UpstreamPage {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    throw new PageParseError('the JSON page does not parse');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new PageParseError('the JSON page is not an object');
  const { files, versions } = doc as { files?: unknown; versions?: unknown };
  if (!Array.isArray(files)) throw new PageParseError('the JSON page has no "files" list');
  const parsed = files.map((raw: unknown): UpstreamFile | null => {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return null;
    const f = raw as Record<string, unknown>;
    if (typeof f.url !== 'string' || typeof f.filename !== 'string') return null;
    const loc = urlFile(f.url, pageUrl);
    if (!loc || !isSafeFilename(f.filename)) return null;
    const hashes: Record<string, string> = {};
    if (f.hashes && typeof f.hashes === 'object' && !Array.isArray(f.hashes)) {
      const entries = Object.entries(f.hashes as Record<string, unknown>);
      // sha256 first: the HTML rendering puts the first digest in the URL fragment.
      entries.sort(([a], [b]) => (a === 'sha256' ? -1 : b === 'sha256' ? 1 : 0));
      for (const [k, v] of entries.slice(0, 8)) {
        const h = hexDigest(v);
        if (HASH_NAME.test(k) && h) hashes[k] = h;
      }
    }
    const yanked = f.yanked === true ? '' : typeof f.yanked === 'string' ? (text(f.yanked) ?? '') : null;
    const size = typeof f.size === 'number' && Number.isSafeInteger(f.size) && f.size >= 0 ? f.size : null;
    const uploadTime = typeof f['upload-time'] === 'string' && UPLOAD_TIME.test(f['upload-time']) ? f['upload-time'] : null;
    return {
      filename: f.filename,
      url: loc.url.toString(),
      hashes,
      requiresPython: text(f['requires-python']),
      yanked,
      coreMetadataSha256: coreMetadataFrom(f['core-metadata'] ?? f['dist-info-metadata']),
      size,
      uploadTime,
    };
  });
  return finish(parsed, versions);
}

/** htmlparser2, loaded on the first HTML page (a server without --upstream never needs it). */
let htmlParser: Promise<typeof HtmlParser> | null = null;
const loadHtmlParser = (): Promise<typeof HtmlParser> => (htmlParser ??= import('htmlparser2').then((m) => m.Parser));

/** PEP 503 HTML: every <a href> is a file; data-* attributes as in PEP 503/592/658/714. */
export async function parseHtmlPage(body: string, pageUrl: string): Promise<UpstreamPage> {
  const Parser = await loadHtmlParser();
  let base = pageUrl;
  const files: (UpstreamFile | null)[] = [];
  const parser = new Parser(
    {
      onopentag(name, attrs) {
        if (name === 'base' && typeof attrs.href === 'string') {
          const b = absoluteHttp(attrs.href, pageUrl);
          if (b) base = b.toString();
          return;
        }
        if (name !== 'a' || typeof attrs.href !== 'string') return;
        const loc = urlFile(attrs.href, base);
        if (!loc || !isSafeFilename(loc.filename)) {
          files.push(null);
          return;
        }
        const hashes: Record<string, string> = {};
        if (loc.fragmentHash) hashes[loc.fragmentHash[0]] = loc.fragmentHash[1];
        const yanked = 'data-yanked' in attrs ? (text(attrs['data-yanked']) ?? '') : null;
        files.push({
          filename: loc.filename,
          url: loc.url.toString(),
          hashes,
          requiresPython: text(attrs['data-requires-python']),
          yanked,
          coreMetadataSha256: coreMetadataFrom(attrs['data-core-metadata'] ?? attrs['data-dist-info-metadata']),
          size: null,
          uploadTime: null,
        });
      },
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true },
  );
  parser.write(body);
  parser.end();
  return finish(files, null);
}
