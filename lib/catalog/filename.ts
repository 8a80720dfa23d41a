/**
 * Parsing of distribution file basenames (wheels, sdists, eggs).
 *
 * References: "Binary distribution format" (wheel file names), "Source
 * distribution format" (sdist file names) and setuptools' egg naming
 * (`{name}-{version}[-py{X.Y}[-{platform}]].egg`).
 */

import { normalizeName } from '../core/names.js';
import { parseVersion, versionKey } from './version.js';

export type DistKind = 'wheel' | 'sdist' | 'egg';

export interface ParsedFilename {
  /** the basename as given */
  filename: string;
  kind: DistKind;
  packagetype: 'bdist_wheel' | 'sdist' | 'bdist_egg';
  /** the project name as it appears in the filename (wheel/egg: `_` kept as is) */
  name: string;
  /** normalizeName(name) */
  project: string;
  /** the version exactly as written in the filename */
  version: string;
  /** wheels only */
  buildTag: string | null;
  /** wheels: python tag ('py3', 'cp311', 'py2.py3'); eggs: 'py3.11' or ''; sdists: 'source' */
  pythonTag: string;
  /** wheels only */
  abiTag: string | null;
  /** wheels only */
  platformTag: string | null;
  /** canonical lower-case extension, e.g. '.tar.gz' even for 'FOO-1.0.TAR.GZ' */
  extension: string;
}

/** Known distribution extensions, longest first (so '.tar.gz' wins over shorter suffixes). */
export const DIST_EXTENSIONS: readonly string[] = Object.freeze([
  '.tar.bz2',
  '.tar.gz',
  '.tar.xz',
  '.whl',
  '.zip',
  '.tgz',
  '.egg',
]);

const SDIST_EXTENSIONS: ReadonlySet<string> = new Set(['.tar.gz', '.zip', '.tar.bz2', '.tgz', '.tar.xz']);

/** Longer inputs cannot be real file names (NAME_MAX is 255 bytes); rejecting them bounds the work. */
const MAX_FILENAME_LENGTH = 1024;

// Path separators, C0 controls, DEL and C1 controls.
const FORBIDDEN_CHARS = /[/\\\u0000-\u001f\u007f-\u009f]/;

/** wheel/egg project name: no '-' (it is escaped to '_' in these formats) */
const WHEEL_NAME = /^[A-Za-z0-9_][A-Za-z0-9._]*$/;
/** sdist project name: must not start with '.' or '-' */
const SDIST_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
/** wheel/egg version: any PEP 440-ish characters, no '-' */
const VERSION_CHARS = /^[A-Za-z0-9._+!]+$/;
/** sdist version: may contain '-' (e.g. "1.0-1", "1.0-dev") */
const SDIST_VERSION_CHARS = /^[A-Za-z0-9._+!-]+$/;
const WHEEL_TAG = /^[A-Za-z0-9._]+$/;
const WHEEL_BUILD_TAG = /^[0-9][A-Za-z0-9._]*$/;
const EGG_PYTHON_TAG = /^py[0-9]+(?:\.[0-9]+)*$/i;
const EGG_PLATFORM = /^[A-Za-z0-9._-]+$/;

function lowerAscii(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/**
 * DIST_EXTENSIONS at the end of a name. Case-insensitive without the `u` flag folds ASCII
 * letters only (a non-ASCII character never matches an ASCII one), like lowerAscii.
 */
const DIST_EXTENSION_AT_END = /\.(?:tar\.bz2|tar\.gz|tar\.xz|whl|zip|tgz|egg)$/i;

/** The canonical extension `filename` ends with (ASCII case-insensitive), or null. */
function findExtension(filename: string): string | null {
  // The usual lower-case spelling first: no string made. Then one regex search instead of a
  // slice and lower-casing per extension (a start calls this for every file, twice).
  for (let i = 0; i < DIST_EXTENSIONS.length; i++) if (filename.endsWith(DIST_EXTENSIONS[i])) return DIST_EXTENSIONS[i];
  const at = filename.search(DIST_EXTENSION_AT_END);
  return at === -1 ? null : lowerAscii(filename.slice(at));
}

/**
 * The canonical extension of a distribution file name ('.whl', '.tar.gz', ...; null for none),
 * without parsing the rest: what an archive reader needs to know.
 */
export function distExtension(filename: string): string | null {
  return findExtension(filename);
}

export function isDistFilename(filename: string): boolean {
  return typeof filename === 'string' && findExtension(filename) !== null;
}

export function parseFilename(filename: string): ParsedFilename | null {
  if (typeof filename !== 'string') return null;
  if (filename.length === 0 || filename.length > MAX_FILENAME_LENGTH) return null;
  if (FORBIDDEN_CHARS.test(filename)) return null;
  const extension = findExtension(filename);
  if (extension === null) return null;
  const stem = filename.slice(0, filename.length - extension.length);
  if (extension === '.whl') return parseWheel(filename, stem);
  if (extension === '.egg') return parseEgg(filename, stem);
  if (SDIST_EXTENSIONS.has(extension)) return parseSdist(filename, stem, extension);
  return null;
}

function parseWheel(filename: string, stem: string): ParsedFilename | null {
  // {name}-{version}(-{build})?-{python}-{abi}-{platform}
  const parts = stem.split('-');
  if (parts.length !== 5 && parts.length !== 6) return null;
  const [name, version] = parts;
  const buildTag = parts.length === 6 ? parts[2] : null;
  const [pythonTag, abiTag, platformTag] = parts.slice(-3);
  if (!WHEEL_NAME.test(name) || !VERSION_CHARS.test(version)) return null;
  if (buildTag !== null && !WHEEL_BUILD_TAG.test(buildTag)) return null;
  if (!WHEEL_TAG.test(pythonTag) || !WHEEL_TAG.test(abiTag) || !WHEEL_TAG.test(platformTag)) return null;
  return {
    filename,
    kind: 'wheel',
    packagetype: 'bdist_wheel',
    name,
    project: normalizeName(name),
    version,
    buildTag,
    pythonTag,
    abiTag,
    platformTag,
    extension: '.whl',
  };
}

function parseEgg(filename: string, stem: string): ParsedFilename | null {
  // {name}-{version}(-py{X.Y}(-{platform})?)?  — the platform may itself contain '-'
  // (e.g. "linux-x86_64"); it is validated but not reported (platformTag is wheel-only).
  const parts = stem.split('-');
  if (parts.length < 2) return null;
  const [name, version] = parts;
  if (!WHEEL_NAME.test(name) || !VERSION_CHARS.test(version)) return null;
  let pythonTag = '';
  if (parts.length >= 3) {
    pythonTag = parts[2];
    if (!EGG_PYTHON_TAG.test(pythonTag)) return null;
    if (parts.length >= 4 && !EGG_PLATFORM.test(parts.slice(3).join('-'))) return null;
  }
  return {
    filename,
    kind: 'egg',
    packagetype: 'bdist_egg',
    name,
    project: normalizeName(name),
    version,
    buildTag: null,
    pythonTag,
    abiTag: null,
    platformTag: null,
    extension: '.egg',
  };
}

function parseSdist(filename: string, stem: string, extension: string): ParsedFilename | null {
  /*
   * AMBIGUITY RULE for sdist names. Both the project name and a legacy version
   * may contain '-', so "{name}-{version}" has no unique split. The split point
   * is chosen as follows:
   *   1. the LEFTMOST '-' such that everything after it is a valid PEP 440
   *      version (parseVersion(rest) !== null);
   *   2. otherwise, the leftmost '-' that is immediately followed by a digit;
   *   3. otherwise the file name is not recognised (null).
   * The name (left part) and version (right part) are then validated: both must
   * be non-empty, the name must match [A-Za-z0-9._-] and must not start with
   * '.' or '-'. Examples:
   *   foo-bar-1.0-1.tar.gz   -> name "foo-bar",   version "1.0-1"      (rule 1)
   *   foo-1.0-dev.tar.gz     -> name "foo",       version "1.0-dev"    (rule 1)
   *   foo-2fast-1.0.tar.gz   -> name "foo-2fast", version "1.0"        (rule 1)
   *   pkg-2.0-beta-x.tar.gz  -> name "pkg",       version "2.0-beta-x" (rule 2)
   *   nodigits.tar.gz        -> null                                   (rule 3)
   *   -1.0.tar.gz            -> null (empty name)
   */
  let split = -1;
  for (let i = stem.indexOf('-'); i !== -1; i = stem.indexOf('-', i + 1)) {
    if (parseVersion(stem.slice(i + 1)) !== null) {
      split = i;
      break;
    }
  }
  if (split === -1) {
    for (let i = stem.indexOf('-'); i !== -1; i = stem.indexOf('-', i + 1)) {
      const c = stem.charCodeAt(i + 1);
      if (c >= 48 && c <= 57) {
        split = i;
        break;
      }
    }
  }
  if (split === -1) return null;
  const name = stem.slice(0, split);
  const version = stem.slice(split + 1);
  if (!SDIST_NAME.test(name) || !SDIST_VERSION_CHARS.test(version)) return null;
  return {
    filename,
    kind: 'sdist',
    packagetype: 'sdist',
    name,
    project: normalizeName(name),
    version,
    buildTag: null,
    pythonTag: 'source',
    abiTag: null,
    platformTag: null,
    extension,
  };
}

/**
 * The project name shown until the metadata's Name is known. Wheel and egg file names escape
 * the name (`Foo.Bar` -> `foo_bar`), and so do modern sdists: showing that would flip to the
 * real name once the metadata is read. So: the normalized name, except for an sdist whose file
 * name keeps a spelling that is no escape (`Foo.Bar-1.0.tar.gz`, made by older setuptools).
 */
export function provisionalDisplayName(parsed: ParsedFilename): string {
  if (parsed.kind === 'sdist' && !parsed.name.includes('_')) return parsed.name;
  return parsed.project;
}

/**
 * What indexing takes from a file name: the normalized project name, the version as written,
 * and the project name shown until the metadata's is known (provisionalDisplayName).
 */
export type NameFacts = readonly [project: string, version: string, displayName: string];

/** A listing's description of a name (StoreEntry.described) as NameFacts, if it is one. */
export function asNameFacts(described: readonly string[] | undefined): NameFacts | null {
  return described?.length === 3 ? (described as NameFacts) : null;
}

/**
 * The NameFacts of a distribution file's name, or null for a name that is none. What a store's
 * listing runs where it reads the names (FsStore: in its listing worker, off the main thread):
 * see ListOptions.describe, and scanStore, which names this module.
 */
export function describeName(name: string): NameFacts | null {
  const parsed = parseFilename(name);
  return parsed && [parsed.project, parsed.version, provisionalDisplayName(parsed)];
}

/** A wheel tag component ('py2.py3'): lower-case, its compressed tag set in a canonical order. */
function tagSetKey(tag: string | null): string {
  return tag === null ? '' : [...new Set(lowerAscii(tag).split('.'))].sort().join('.');
}

/** A wheel build tag as pip compares it: its number (leading zeros dropped), then the rest. */
function buildTagKey(tag: string | null): string {
  if (tag === null) return '';
  const m = /^(\d+)(.*)$/.exec(tag);
  return m ? `${m[1].replace(/^0+(?=\d)/, '')}${lowerAscii(m[2])}` : lowerAscii(tag);
}

/**
 * The identity of a distribution file, the same for every spelling of its name that installers
 * take for the same file (PyPI's uniqueness rule): normalized project name, PEP 440-normalized
 * version (1.0 = 1.0.0), and for wheels the build tag and the tag sets, compared as pip does
 * (case-insensitive, compressed sets in any order); the extension is compared case-insensitively
 * (`parsed.extension` is already canonical). `Demo-1.0-py3-none-any.whl`,
 * `demo-1.0.0-py3-none-any.WHL` and `demo-1.0-py3-none-any.whl` have one key.
 */
export function distKey(parsed: ParsedFilename): string {
  const version = versionKey(parsed.version) ?? versionKey(parsed.version.replace(/_/g, '-')) ?? lowerAscii(parsed.version);
  // (eggs are never uploaded; their platform is not parsed, so their whole name stands in)
  const tags =
    parsed.kind === 'sdist'
      ? ''
      : parsed.kind === 'egg'
        ? lowerAscii(parsed.filename)
        : `${buildTagKey(parsed.buildTag)}-${tagSetKey(parsed.pythonTag)}-${tagSetKey(parsed.abiTag)}-${tagSetKey(parsed.platformTag)}`;
  return `${parsed.kind}${parsed.extension}|${parsed.project}|${version}|${tags}`;
}
