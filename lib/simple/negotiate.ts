// Content negotiation for the Simple API (PEP 691): the client's Accept header (q-values
// decide, order does not) or a ?format= override picks one of the three representations.

export const JSON_V1 = 'application/vnd.pypi.simple.v1+json';
export const HTML_V1 = 'application/vnd.pypi.simple.v1+html';
export const TEXT_HTML = 'text/html';

export type SimpleType = typeof JSON_V1 | typeof HTML_V1 | typeof TEXT_HTML;

interface Range {
  type: string;
  subtype: string;
  q: number;
}

/** What we offer, in our order of preference when the client's q-values tie. */
const OFFERS: readonly { type: SimpleType; aliases: readonly string[] }[] = [
  { type: TEXT_HTML, aliases: ['text/html'] },
  { type: JSON_V1, aliases: [JSON_V1, 'application/vnd.pypi.simple.latest+json'] },
  { type: HTML_V1, aliases: [HTML_V1, 'application/vnd.pypi.simple.latest+html'] },
];

export function parseAccept(header: string): Range[] {
  const out: Range[] = [];
  for (const part of header.split(',')) {
    const [mediaRaw, ...params] = part.split(';');
    const media = (mediaRaw ?? '').trim().toLowerCase();
    const slash = media.indexOf('/');
    if (slash <= 0 || slash === media.length - 1) continue;
    let q = 1;
    for (const p of params) {
      const [k, v] = p.split('=');
      if (k?.trim().toLowerCase() === 'q') {
        const n = Number((v ?? '').trim());
        q = Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 0;
      }
    }
    out.push({ type: media.slice(0, slash), subtype: media.slice(slash + 1), q });
  }
  return out;
}

/** Quality of one concrete media type under the ranges: the most specific match decides. */
function qualityOf(media: string, ranges: Range[]): number {
  const slash = media.indexOf('/');
  const type = media.slice(0, slash);
  const subtype = media.slice(slash + 1);
  let best = -1;
  let bestSpecificity = -1;
  for (const r of ranges) {
    let specificity: number;
    if (r.type === type && r.subtype === subtype) specificity = 2;
    else if (r.type === type && r.subtype === '*') specificity = 1;
    else if (r.type === '*' && r.subtype === '*') specificity = 0;
    else continue;
    if (specificity > bestSpecificity || (specificity === bestSpecificity && r.q > best)) {
      bestSpecificity = specificity;
      best = r.q;
    }
  }
  return best < 0 ? 0 : best;
}

const memo = new Map<string, SimpleType | null>();
/**
 * The last header asked about and its answer: a client sends the same Accept on every request,
 * and comparing a fresh header string with it costs less than hashing it for the memo.
 */
let lastHeader = '';
let lastChoice: SimpleType | null = null;

/**
 * Pick the representation for an Accept header (undefined/empty = any). Returns null when
 * nothing we offer is acceptable (the caller answers 406).
 */
export function negotiate(accept: string | undefined): SimpleType | null {
  if (accept === lastHeader && accept !== '') return lastChoice;
  const header = accept === undefined || accept.trim() === '' ? '*/*' : accept;
  const hit = memo.get(header);
  if (hit !== undefined) {
    if (accept !== undefined) remember(accept, hit);
    return hit;
  }
  const ranges = parseAccept(header);
  let chosen: SimpleType | null = null;
  let bestQ = 0;
  for (const offer of OFFERS) {
    let q = 0;
    for (const alias of offer.aliases) q = Math.max(q, qualityOf(alias, ranges));
    if (q > bestQ) {
      bestQ = q;
      chosen = offer.type;
    }
  }
  if (ranges.length === 0) chosen = TEXT_HTML; // unparseable header: be lenient, like */*
  if (memo.size > 1000) memo.clear();
  memo.set(header, chosen);
  if (accept !== undefined) remember(accept, chosen);
  return chosen;
}

function remember(accept: string, choice: SimpleType | null): void {
  lastHeader = accept;
  lastChoice = choice;
}

/** `?format=` overrides Accept (PyPI's behaviour); its value is parsed like an Accept header. */
export function negotiateRequest(accept: string | undefined, format: string | undefined): SimpleType | null {
  if (format !== undefined && format !== '') return negotiate(format);
  return negotiate(accept);
}
