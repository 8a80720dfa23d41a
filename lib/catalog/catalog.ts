// The in-memory index of every distribution file under the package roots. It knows nothing
// of HTTP or of the file system: the indexer feeds it, the routes read it. Lookups are O(1)
// (by URL path, by project, by file name); every change tells listeners which project changed,
// so rendered pages are invalidated per project.

import type { MetadataSummary } from '../metadata/types.js';
import type { FileIdentity, PackageStore } from '../store/types.js';
import { distKey, parseFilename, type NameFacts, type ParsedFilename } from './filename.js';
import { normalizeName } from '../core/names.js';
import { compareVersions } from './version.js';
import { columns, CTIME, DEV, HAS_IDENTITY, HAS_SHA, INO, MD_KNOWN, MD_SERVABLE, MD_SIZE, MD_SOME, MTIME, SIZE } from './file-columns.js';

export interface Yank {
  reason: string;
}

export type { FileIdentity };

/** A file is (store, key): `store` holds it under the storage key `relPath`. */
export interface DistFile {
  /** The id of the store (root) the file lives in (FsStore: its absolute directory). */
  root: string;
  /** The storage key: path relative to the root, '/'-separated; also the path under /packages/. */
  relPath: string;
  /** The store to open, read or remove the file through (an absolute path is the store's business). */
  store: PackageStore;
  filename: string;
  parsed: ParsedFilename;
  /** Normalized project name (the metadata's Name when known, else the filename's). */
  project: string;
  /** The project name as written by its author (metadata Name, else the filename). */
  displayName: string;
  version: string;
  size: number;
  mtimeMs: number;
  /**
   * Device, inode and ctime of the file when it was indexed (always set by the indexer). The
   * download route refuses a path that now leads to another file (e.g. through a directory
   * swapped for a symbolic link).
   */
  identity?: FileIdentity;
  /** Object stores: the object's ETag when it was indexed, instead of an identity (opens and copies insist on it; recall/record are keyed by it). */
  etag?: string;
  /** null until hashed. */
  sha256: string | null;
  /** undefined: not read yet; null: no usable metadata; else the summary. */
  metadata: MetadataSummary | null | undefined;
  /** Why the metadata could not be read (for logs and the JSON API), if it could not. */
  metadataError?: string;
  yank: Yank | null;
}

/**
 * The DistFile the indexer keeps for every file: the fields that cost memory are derived on
 * demand (the file name from the key, its parse from the file name) or kept in the shared
 * typed-array rows of `columns` (size, times, identity, both digests: see file-columns.ts),
 * so that a file costs one small object plus its key. Only for keys whose last segment
 * parseFilename accepts.
 */
export class IndexedFile implements DistFile {
  project: string;
  displayName: string;
  version: string;
  etag?: string;
  metadataError?: string = undefined;
  yank: Yank | null = null;
  /** The metadata's Name, Version and Requires-Python (shared strings; when the row says MD_SOME). */
  private mdName: string | null = null;
  private mdVersion: string | null = null;
  private mdRequiresPython: string | null = null;
  /** This file's row in `columns`. */
  private readonly row: number;
  /** Where the file is in its project's ProjectFiles (-1: in none). */
  projectSlot = -1;

  /** `name`: the facts of the file name (its project and version are the file's until its metadata says otherwise). */
  constructor(
    readonly store: PackageStore,
    readonly relPath: string,
    name: NameFacts,
    size: number,
    mtimeMs: number,
  ) {
    this.project = name[0];
    this.displayName = name[0];
    this.version = name[1];
    this.row = columns.take();
    columns.set(this.row, SIZE, size);
    columns.set(this.row, MTIME, mtimeMs);
  }

  get root(): string {
    return this.store.id;
  }

  get filename(): string {
    return this.relPath.slice(this.relPath.lastIndexOf('/') + 1);
  }

  get parsed(): ParsedFilename {
    const p = parseFilename(this.filename);
    if (!p) throw new Error(`not a distribution file name: ${this.filename}`);
    return p;
  }

  get size(): number {
    return columns.get(this.row, SIZE);
  }

  set size(v: number) {
    columns.set(this.row, SIZE, v);
  }

  get mtimeMs(): number {
    return columns.get(this.row, MTIME);
  }

  set mtimeMs(v: number) {
    columns.set(this.row, MTIME, v);
  }

  get identity(): FileIdentity | undefined {
    const r = this.row;
    if (!columns.has(r, HAS_IDENTITY)) return undefined;
    return { dev: columns.get(r, DEV), ino: columns.get(r, INO), ctimeMs: columns.get(r, CTIME) };
  }

  set identity(id: FileIdentity | undefined) {
    const r = this.row;
    columns.mark(r, HAS_IDENTITY, id !== undefined);
    if (!id) return;
    columns.set(r, DEV, id.dev);
    columns.set(r, INO, id.ino);
    columns.set(r, CTIME, id.ctimeMs);
  }

  get sha256(): string | null {
    return columns.has(this.row, HAS_SHA) ? columns.hex(this.row, 0) : null;
  }

  set sha256(hex: string | null) {
    if (hex !== null && !columns.setHex(this.row, 0, hex)) throw new RangeError(`not a sha256 digest: ${hex}`);
    columns.mark(this.row, HAS_SHA, hex !== null);
  }

  get hasSha256(): boolean {
    return columns.has(this.row, HAS_SHA);
  }

  /** Copy the sha256 in as 32 bytes (from a cache record: no hex string made). */
  setSha256Bytes(src: Buffer, at: number): void {
    columns.setBytes(this.row, 0, src, at);
    columns.mark(this.row, HAS_SHA, true);
  }

  /** Set the metadata summary from its digest's 32 bytes (a cache record: no hex string made). */
  setMetadataBytes(src: Buffer, shaAt: number, size: number, name: string | null, version: string | null, requiresPython: string | null, servable: boolean): void {
    columns.setBytes(this.row, 1, src, shaAt);
    this.keepMetadata(size, name, version, requiresPython, servable);
  }

  /** A summary's flags, size and strings (its digest is already in the row). */
  private keepMetadata(size: number, name: string | null, version: string | null, requiresPython: string | null, servable: boolean): void {
    const r = this.row;
    columns.mark(r, MD_KNOWN | MD_SOME, true);
    columns.mark(r, MD_SERVABLE, servable);
    columns.set(r, MD_SIZE, size);
    this.mdName = name;
    this.mdVersion = version;
    this.mdRequiresPython = requiresPython;
  }

  get metadata(): MetadataSummary | null | undefined {
    const r = this.row;
    if (!columns.has(r, MD_KNOWN)) return undefined;
    if (!columns.has(r, MD_SOME)) return null;
    return {
      sha256: columns.hex(r, 1),
      size: columns.get(r, MD_SIZE),
      name: this.mdName,
      version: this.mdVersion,
      requiresPython: this.mdRequiresPython,
      servable: columns.has(r, MD_SERVABLE),
    };
  }

  set metadata(md: MetadataSummary | null | undefined) {
    const r = this.row;
    if (md) {
      if (!columns.setHex(r, 1, md.sha256)) throw new RangeError(`not a sha256 digest: ${md.sha256}`);
      this.keepMetadata(md.size, md.name, md.version, md.requiresPython, md.servable);
      return;
    }
    // null: read, no usable metadata; undefined: not read yet.
    columns.mark(r, MD_KNOWN, md === null);
    columns.mark(r, MD_SOME | MD_SERVABLE, false);
    columns.set(r, MD_SIZE, 0);
    this.mdName = this.mdVersion = this.mdRequiresPython = null;
  }

  /** Are the digest and the metadata known (without making either)? */
  get digested(): boolean {
    return columns.has(this.row, HAS_SHA) && columns.has(this.row, MD_KNOWN);
  }

  /** The metadata's Name, if a summary is known (without making the summary). */
  get metadataName(): string | null {
    return columns.has(this.row, MD_SOME) ? this.mdName : null;
  }

  /** The catalog no longer holds this file: its row is reused once nothing else does. */
  released(): void {
    columns.releaseWhenUnreachable(this, this.row);
  }
}

/** Are the file's digest and metadata known? (An IndexedFile answers without making strings.) */
export function isDigested(f: DistFile): boolean {
  return f instanceof IndexedFile ? f.digested : f.sha256 !== null && f.metadata !== undefined;
}

/** The metadata's Name, if a summary is known. */
export function metadataNameOf(f: DistFile): string | null {
  return f instanceof IndexedFile ? f.metadataName : (f.metadata?.name ?? null);
}

/** Is the file's digest known? */
export function hasDigest(f: DistFile): boolean {
  return f instanceof IndexedFile ? f.hasSha256 : f.sha256 !== null;
}

/** Where a DistFile that is no IndexedFile (tests) is in its project's list. */
const otherSlots = new WeakMap<DistFile, number>();

function slotOf(f: DistFile): number {
  return f instanceof IndexedFile ? f.projectSlot : (otherSlots.get(f) ?? -1);
}

function setSlot(f: DistFile, slot: number): void {
  if (f instanceof IndexedFile) f.projectSlot = slot;
  else otherSlots.set(f, slot);
}

/**
 * The files of one project, in the order they were added. An array, not a Map by key: at a
 * million files a Map per project cost 1.8 s of a warm start (the table of a random project
 * for every file listed), an array 0.7 s. A file knows its position, so a removal is O(1):
 * the slot is emptied, and the array compacted once half of it is empty.
 */
export class ProjectFiles implements Iterable<DistFile> {
  private items: (DistFile | undefined)[] = [];
  private live = 0;

  get size(): number {
    return this.live;
  }

  add(f: DistFile): void {
    setSlot(f, this.items.length);
    this.items.push(f);
    this.live++;
  }

  /** Take the file out (false: it is not in this list). */
  delete(f: DistFile): boolean {
    const i = slotOf(f);
    if (i < 0 || this.items[i] !== f) return false;
    this.items[i] = undefined;
    setSlot(f, -1);
    this.live--;
    if (this.items.length > 16 && this.live < this.items.length / 2) this.compact();
    return true;
  }

  *values(): IterableIterator<DistFile> {
    for (const f of this.items) if (f !== undefined) yield f;
  }

  [Symbol.iterator](): IterableIterator<DistFile> {
    return this.values();
  }

  private compact(): void {
    const next: DistFile[] = [];
    for (const f of this.items) {
      if (f === undefined) continue;
      setSlot(f, next.length);
      next.push(f);
    }
    this.items = next;
  }
}

export interface Project {
  name: string;
  displayName: string;
  /** The project's files (the catalog's fileAt finds one by its key). */
  files: ProjectFiles;
  /** Bumped on every change to the project, used for page ETags/caches. */
  generation: number;
  /** Newest mtime among files (for Last-Modified of pages). */
  lastModifiedMs: number;
}

/** The distinct version strings of some files, in PEP 440 order (ties by string: deterministic). */
export function versionsIn(files: Iterable<DistFile>): string[] {
  const set = new Set<string>();
  for (const f of files) set.add(f.version);
  return [...set].sort((a, b) => compareVersions(a, b) || (a < b ? -1 : a > b ? 1 : 0));
}

export type ChangeListener = (project: string) => void;

/**
 * What the routes, pages and the UI read of the index: lookups and change notices, no writes
 * (the indexer and the uploader write through the Catalog itself). AppDeps holds this.
 */
export type CatalogView = Pick<Catalog, 'generation' | 'size' | 'onChange' | 'fileAt' | 'project' | 'projects' | 'filesOf' | 'versionsOf'>;

export class Catalog {
  private readonly projectsByName = new Map<string, Project>();
  private readonly byRelPath = new Map<string, DistFile>();
  private readonly listeners = new Set<ChangeListener>();
  private rootGeneration = 0;
  private fileCount = 0;

  get generation(): number {
    return this.rootGeneration;
  }

  get size(): { projects: number; files: number } {
    return { projects: this.projectsByName.size, files: this.fileCount };
  }

  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The file served at /packages/<relPath>, if any. */
  fileAt(relPath: string): DistFile | undefined {
    return this.byRelPath.get(relPath);
  }

  project(name: string): Project | undefined {
    return this.projectsByName.get(name);
  }

  projects(): IterableIterator<Project> {
    return this.projectsByName.values();
  }

  /** Every file of a project, newest version first, then by file name. */
  filesOf(project: Project): DistFile[] {
    return [...project.files.values()].sort(
      (a, b) => compareVersions(b.version, a.version) || (a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : 0),
    );
  }

  /**
   * Versions of a project, ascending (PEP 440 order): the set of the files' version strings,
   * exactly as each file states it, so that every file's version is in the list (PEP 700).
   */
  versionsOf(project: Project): string[] {
    return versionsIn(project.files.values());
  }

  /** A file of this project with this basename (in any subdirectory), if any. */
  findByFilename(projectName: string, filename: string): DistFile | undefined {
    const p = this.projectsByName.get(projectName);
    if (!p) return undefined;
    for (const f of p.files.values()) if (f.filename === filename) return f;
    return undefined;
  }

  /**
   * A file of this project that installers take for the same distribution as `parsed`, under
   * any spelling of its name (same `distKey`: `Demo-1.0.0-py3-none-any.WHL` finds
   * `demo-1.0-py3-none-any.whl`); the exact file name first. O(files of the project).
   */
  findSameDistribution(projectName: string, parsed: ParsedFilename): DistFile | undefined {
    const p = this.projectsByName.get(projectName);
    if (!p) return undefined;
    const key = distKey(parsed);
    let same: DistFile | undefined;
    for (const f of p.files.values()) {
      if (f.filename === parsed.filename) return f;
      if (same === undefined && distKey(f.parsed) === key) same = f;
    }
    return same;
  }

  /**
   * Add or replace a file. When two roots hold the same relative path, the first one added
   * keeps serving it (roots are scanned in order). `named`: the listed project of that name,
   * if the caller looked it up (since the catalog last changed).
   */
  upsert(file: DistFile, named?: Project): void {
    const existing = this.byRelPath.get(file.relPath);
    if (existing && existing.root !== file.root) return;
    if (existing) this.detach(existing);
    this.byRelPath.set(file.relPath, file);
    this.fileCount++;
    // (`named` is still the listed project unless the detach above removed it.)
    let p = !existing && named !== undefined && named.name === file.project ? named : this.projectsByName.get(file.project);
    if (!p) {
      p = { name: file.project, displayName: file.displayName, files: new ProjectFiles(), generation: 0, lastModifiedMs: 0 };
      this.projectsByName.set(file.project, p);
      this.rootGeneration++;
    }
    p.files.add(file);
    // One copy of the names per project, not per file (same contents).
    file.project = p.name;
    if (file.displayName === p.displayName) file.displayName = p.displayName;
    if (metadataNameOf(file) && p.displayName !== file.displayName) {
      p.displayName = file.displayName;
      this.rootGeneration++;
    }
    if (file.mtimeMs > p.lastModifiedMs) p.lastModifiedMs = file.mtimeMs;
    this.touch(p);
    if (existing && existing.project !== file.project) this.emit(existing.project);
  }

  /** Remove the file at relPath if it comes from this root. Returns the removed file. */
  remove(root: string, relPath: string): DistFile | undefined {
    const existing = this.byRelPath.get(relPath);
    if (!existing || existing.root !== root) return undefined;
    this.detach(existing);
    this.emit(existing.project);
    return existing;
  }

  /** Every file under a directory prefix of a root (for a removed directory). */
  filesUnder(root: string, relDir: string): DistFile[] {
    const prefix = relDir === '' ? '' : `${relDir}/`;
    const out: DistFile[] = [];
    for (const f of this.byRelPath.values()) if (f.root === root && f.relPath.startsWith(prefix)) out.push(f);
    return out;
  }

  /** Every file of one root (for cache writes). */
  *filesOfRoot(root: string): IterableIterator<DistFile> {
    for (const f of this.byRelPath.values()) if (f.root === root) yield f;
  }

  /** Mark a project changed after a file's hash, metadata or yank state was filled in. */
  changed(file: DistFile): void {
    // (A file the catalog serves at its key is in its project's list.)
    const p = this.byRelPath.get(file.relPath) === file ? this.projectsByName.get(file.project) : undefined;
    if (p) this.touch(p);
  }

  /** Move a file to the project named by its metadata (metadata wins over the filename); project: normalizeName(displayName), if the caller has it. */
  regroup(file: DistFile, displayName: string, project = normalizeName(displayName)): void {
    if (project === file.project) {
      if (file.displayName !== displayName) {
        file.displayName = displayName;
        const p = this.projectsByName.get(project);
        if (p && p.displayName !== displayName) {
          p.displayName = displayName;
          this.rootGeneration++;
        }
        this.changed(file);
      }
      return;
    }
    if (this.byRelPath.get(file.relPath) !== file) return;
    this.detach(file);
    file.project = project;
    file.displayName = displayName;
    this.upsert(file);
  }

  private detach(file: DistFile): void {
    this.byRelPath.delete(file.relPath);
    if (file instanceof IndexedFile) file.released();
    this.fileCount--;
    const p = this.projectsByName.get(file.project);
    if (!p) return;
    p.files.delete(file);
    if (p.files.size === 0) {
      this.projectsByName.delete(file.project);
      this.rootGeneration++;
    } else {
      p.generation++;
    }
  }

  private touch(p: Project): void {
    p.generation++;
    this.emit(p.name);
  }

  private emit(project: string): void {
    for (const l of this.listeners) l(project);
  }
}
