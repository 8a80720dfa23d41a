// Headers every response carries: nothing we serve may be sniffed or rendered as active
// content by a browser, and our HTML pages run no scripts at all.

import type { ServerResponse } from 'node:http';

export const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The same headers as a flat [name, value, ...] list, for writeHead. */
export const SECURITY_HEADERS: readonly string[] = [
  'X-Content-Type-Options', 'nosniff',
  'Content-Security-Policy', CSP,
  'Referrer-Policy', 'no-referrer',
  'X-Frame-Options', 'DENY',
];

export function securityHeaders(res: ServerResponse): void {
  for (let i = 0; i < SECURITY_HEADERS.length; i += 2) res.setHeader(SECURITY_HEADERS[i], SECURITY_HEADERS[i + 1]);
}
