/**
 * Project-name helpers.
 *
 * - normalizeName: PEP 503 / "Name normalization" spec — lower-case, and every
 *   run of `-`, `_` and `.` collapsed into a single `-`.
 * - isValidProjectName: the core-metadata `Name` rule — ASCII letters and
 *   digits, with `.`, `_` and `-` allowed only between two letters/digits.
 */

const SEPARATOR_RUNS = /[-_.]+/g;

// Explicit ASCII classes (no `i`/`u` flags) so that non-ASCII characters that
// case-fold to ASCII letters (e.g. U+212A KELVIN SIGN) are never accepted.
const VALID_PROJECT_NAME = /^(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9])$/;

const NORMALIZED_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export function normalizeName(name: string): string {
  return name.replace(SEPARATOR_RUNS, '-').toLowerCase();
}

/** Is this already a normalized name (what /simple/<name>/ and the upstream's file URLs use)? */
export function isNormalizedName(name: string): boolean {
  return NORMALIZED_NAME.test(name);
}

export function isValidProjectName(name: string): boolean {
  return VALID_PROJECT_NAME.test(name);
}
