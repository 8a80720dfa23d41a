/**
 * Parser for Python core metadata files (wheel METADATA, sdist PKG-INFO).
 *
 * The format is "what the stdlib email.parser accepts with the compat32
 * policy": a block of `Name: value` headers, continuation lines starting with
 * a space or tab, then an optional body after the first blank line (used by
 * Metadata-Version >= 2.1 writers for the long description).
 *
 * Pure and total: never throws, whatever bytes it is given.
 */

export interface CoreMetadata {
  metadataVersion: string | null;
  name: string | null;
  version: string | null;
  summary: string | null;
  requiresPython: string | null;
  requiresDist: string[];
  providesExtra: string[];
  classifiers: string[];
  /** `Project-URL: Label, URL` lines, first occurrence of a label wins. */
  projectUrls: Record<string, string>;
  homePage: string | null;
  downloadUrl: string | null;
  author: string | null;
  authorEmail: string | null;
  maintainer: string | null;
  maintainerEmail: string | null;
  license: string | null;
  licenseExpression: string | null;
  keywords: string | null;
  platforms: string[];
  /** The message body if present, else the Description header de-indented. */
  description: string | null;
  descriptionContentType: string | null;
  /** Lower-cased field names from `Dynamic:`. */
  dynamic: string[];
  yanked?: never;
  /**
   * Every header, key lower-cased, values in file order. A folded value keeps
   * its line structure: continuation lines are appended as `\n` + the line as
   * written (including its leading whitespace).
   */
  headers: Record<string, string[]>;
}

interface RawHeader {
  key: string;
  first: string;
  continuation: string[];
}

/** compat32 header line: printable ASCII except ':' and space, then ':'. */
const HEADER_LINE = /^([\x21-\x39\x3b-\x7e]+):(.*)$/s;

/** Fields pip needs from an sdist's metadata (PEP 643 / PEP 658). */
const STATIC_REQUIRED = ['name', 'version', 'requires-dist', 'requires-python', 'provides-extra'];

export function parseMetadata(bytes: Buffer): CoreMetadata {
  let text: string;
  try {
    // Buffer#toString substitutes U+FFFD for invalid UTF-8 sequences
    text = Buffer.isBuffer(bytes) ? bytes.toString('utf8') : '';
  } catch {
    text = '';
  }
  if (text.startsWith('\ufeff')) text = text.slice(1);

  try {
    const { raw, body } = splitMessage(text, true);
    return buildMetadata(raw, body);
  } catch {
    // defensive: the contract is to never throw
    return buildMetadata([], null);
  }
}

/** The fields the index keeps (see summary.ts), as `parseMetadata` gives them. */
export type SummaryFields = Pick<CoreMetadata, 'metadataVersion' | 'name' | 'version' | 'requiresPython' | 'dynamic'>;

/**
 * `parseMetadata` reduced to the fields the index keeps: the same header split, but neither
 * the body (often most of the bytes: the long description) nor the other fields are built.
 * This runs for every file at a cold start. Pure and total, like `parseMetadata`.
 */
export function parseSummaryFields(bytes: Buffer): SummaryFields {
  let text = Buffer.isBuffer(bytes) ? bytes.toString('utf8') : '';
  if (text.startsWith('\ufeff')) text = text.slice(1);
  let raw: RawHeader[] = [];
  try {
    raw = splitMessage(text, false).raw;
  } catch {
    // defensive: the contract is to never throw
  }
  const firsts = new Map<string, RawHeader>();
  const dynamic: RawHeader[] = [];
  for (const h of raw) {
    if (h.key === 'dynamic') dynamic.push(h);
    else if (!firsts.has(h.key)) firsts.set(h.key, h);
  }
  const single = (key: string): string | null => {
    const h = firsts.get(key);
    if (h === undefined) return null;
    const v = unfold(h);
    return v === '' ? null : v;
  };
  return {
    metadataVersion: single('metadata-version'),
    name: single('name'),
    version: single('version'),
    requiresPython: single('requires-python'),
    dynamic: dynamicFields(dynamic.map(unfold).filter((v) => v !== '')),
  };
}

export function sdistMetadataIsStatic(md: Pick<CoreMetadata, 'metadataVersion' | 'dynamic'>): boolean {
  if (!metadataVersionAtLeast(md.metadataVersion, [2, 2])) return false;
  const dynamic = new Set((md.dynamic ?? []).map((d) => d.toLowerCase()));
  return STATIC_REQUIRED.every((field) => !dynamic.has(field));
}

// ---------------------------------------------------------------------------

/** `withBody`: false when only the headers are wanted (the body is then null). */
function splitMessage(text: string, withBody: boolean): { raw: RawHeader[]; body: string | null } {
  const raw: RawHeader[] = [];
  const lineBreak = /\r\n|\n|\r/g;
  let current: RawHeader | null = null;
  let pos = 0;
  let bodyStart = -1;
  let firstLine = true;

  while (pos <= text.length) {
    lineBreak.lastIndex = pos;
    const m = lineBreak.exec(text);
    const end = m ? m.index : text.length;
    const next = m ? m.index + m[0].length : text.length + 1;
    const line = text.slice(pos, end);

    if (line === '') {
      // blank line: end of headers (a trailing empty "line" at EOF has no body)
      bodyStart = next <= text.length ? next : -1;
      break;
    }
    if (line[0] === ' ' || line[0] === '\t') {
      // folded continuation of the previous header (ignored if there is none)
      if (current !== null) current.continuation.push(line);
    } else if (firstLine && line.startsWith('From ')) {
      // mbox "From " envelope line: not a header
    } else {
      const hm = HEADER_LINE.exec(line);
      if (hm === null) {
        // not a header and no blank separator: the body starts here
        bodyStart = pos;
        break;
      }
      current = { key: hm[1].toLowerCase(), first: hm[2].replace(/^[ \t]+/, ''), continuation: [] };
      raw.push(current);
    }
    firstLine = false;
    pos = next;
  }

  const body = withBody && bodyStart >= 0 && bodyStart <= text.length
    ? text.slice(bodyStart).replace(/\r\n?/g, '\n')
    : null;
  return { raw, body };
}

function buildMetadata(raw: RawHeader[], body: string | null): CoreMetadata {
  const byKey = new Map<string, RawHeader[]>();
  const headers = new Map<string, string[]>();
  for (const h of raw) {
    const list = byKey.get(h.key);
    if (list) list.push(h);
    else byKey.set(h.key, [h]);
    const value = h.first + h.continuation.map((c) => `\n${c}`).join('');
    const hv = headers.get(h.key);
    if (hv) hv.push(value);
    else headers.set(h.key, [value]);
  }

  const single = (key: string): string | null => {
    const h = byKey.get(key)?.[0];
    if (h === undefined) return null;
    const v = unfold(h);
    return v === '' ? null : v;
  };
  const multi = (key: string): string[] =>
    (byKey.get(key) ?? []).map(unfold).filter((v) => v !== '');
  const multiline = (key: string): string | null => {
    const h = byKey.get(key)?.[0];
    if (h === undefined) return null;
    const v = deindent(h);
    return v === '' ? null : v;
  };

  const projectUrls = new Map<string, string>();
  for (const v of multi('project-url')) {
    const comma = v.indexOf(',');
    if (comma < 0) continue;
    const label = v.slice(0, comma).trim();
    const url = v.slice(comma + 1).trim();
    if (label === '' || url === '' || projectUrls.has(label)) continue;
    projectUrls.set(label, url);
  }

  const dynamic = dynamicFields(multi('dynamic'));

  const hasBody = body !== null && body.trim() !== '';

  return {
    metadataVersion: single('metadata-version'),
    name: single('name'),
    version: single('version'),
    summary: single('summary'),
    requiresPython: single('requires-python'),
    requiresDist: multi('requires-dist'),
    providesExtra: multi('provides-extra'),
    classifiers: multi('classifier'),
    // Object.fromEntries defines own properties: a '__proto__' label stays data
    projectUrls: Object.fromEntries(projectUrls),
    homePage: single('home-page'),
    downloadUrl: single('download-url'),
    author: single('author'),
    authorEmail: single('author-email'),
    maintainer: single('maintainer'),
    maintainerEmail: single('maintainer-email'),
    license: multiline('license'),
    licenseExpression: single('license-expression'),
    keywords: single('keywords'),
    platforms: multi('platform'),
    description: hasBody ? body : multiline('description'),
    descriptionContentType: single('description-content-type'),
    dynamic,
    headers: Object.fromEntries(headers),
  };
}

/** The lower-cased field names of the `Dynamic:` values, each once, in order. */
function dynamicFields(values: string[]): string[] {
  const dynamic: string[] = [];
  for (const v of values) {
    for (const part of v.split(',')) {
      const field = part.trim().toLowerCase();
      if (field !== '' && !dynamic.includes(field)) dynamic.push(field);
    }
  }
  return dynamic;
}

/** A one-line field: RFC 822 unfolding, whitespace around the folds collapsed. */
function unfold(h: RawHeader): string {
  // (the common case, without the arrays: every file's fields pass here at a cold start)
  if (h.continuation.length === 0) return h.first.trim();
  return [h.first, ...h.continuation]
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .join(' ');
}

/**
 * A multi-line field (Description, License): keep the line structure and
 * remove the indentation writers add to continuation lines: either the
 * spec's 7 spaces + '|' marker (accepted with 8 spaces too), or up to 8
 * columns of common leading whitespace (setuptools' rfc822_escape).
 */
function deindent(h: RawHeader): string {
  const cont = h.continuation;
  const isBlank = (l: string): boolean => l.trim() === '';
  const PIPE = /^ {7,8}\|/;
  const nonBlank = cont.filter((l) => !isBlank(l));
  let lines: string[];
  if (nonBlank.length > 0 && nonBlank.every((l) => PIPE.test(l))) {
    lines = cont.map((l) => (isBlank(l) ? '' : l.replace(PIPE, '')));
  } else {
    const lead = (l: string): number => /^[ \t]*/.exec(l)?.[0].length ?? 0;
    // a loop, not Math.min(...spread): a huge header must not overflow the stack
    let common = nonBlank.length > 0 ? 8 : 0;
    for (const l of nonBlank) common = Math.min(common, lead(l));
    lines = cont.map((l) => (isBlank(l) ? '' : l.slice(common)));
  }
  const first = h.first.trim();
  const all = first === '' ? lines : [first, ...lines];
  return all.join('\n').replace(/^\n+/, '').trimEnd();
}

function metadataVersionAtLeast(version: string | null, wanted: number[]): boolean {
  if (version === null) return false;
  const v = version.trim();
  if (!/^\d+(\.\d+)*$/.test(v)) return false;
  const parts = v.split('.').map((p) => Number.parseInt(p, 10));
  for (let i = 0; i < Math.max(parts.length, wanted.length); i++) {
    const a = parts[i] ?? 0;
    const b = wanted[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}
