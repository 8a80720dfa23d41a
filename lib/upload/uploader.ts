// The upload domain logic, free of HTTP: validate a finished temp file against the form,
// put it into the upload store atomically (put-if-absent: of concurrent uploads of one name
// exactly one wins), and add it to the catalog before the response goes out. Also `remove_pkg`.

import { createReadStream } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../core/config.js';
import type { DistFile } from '../catalog/catalog.js';
import type { UploadIndex } from '../catalog/indexer.js';
import { distKey, parseFilename, type ParsedFilename } from '../catalog/filename.js';
import { isValidProjectName, normalizeName } from '../core/names.js';
import { parseVersion, versionKey, versionsEqual } from '../catalog/version.js';
import { httpError } from '../core/errors.js';
import { Digester, type Digests } from '../core/digests.js';
import { isCorruptArchive } from '../metadata/archive-errors.js';
import { extractMetadata } from '../metadata/extract.js';
import { archiveKindOf, type ExtractResult, type MetadataSummary } from '../metadata/types.js';
import type { MetadataSource } from '../metadata/reader.js';
import { summarizeMetadata } from '../metadata/summary.js';
import type { MetricsService } from '../ops/metrics.js';
import type { PackageStore, StoreEntry } from '../store/types.js';
import { TempFileStorage, sweepTempFiles, type StoredUpload, type StreamHook } from './storage.js';

export interface UploadForm {
  name: string;
  version: string;
  filetype: string | null;
  filename: string;
  sha256Digest: string | null;
  md5Digest: string | null;
  blake2Digest: string | null;
}

export type UploadOutcome = { status: 'created' | 'identical' | 'replaced'; file: DistFile | undefined };

const ALLOWED_EXTENSIONS = ['.whl', '.tar.gz', '.zip'] as const;

/** Checks that need only the form (run before the body is trusted). Throws HttpError. */
export function validateForm(form: UploadForm): { extension: string } {
  const { filename } = form;
  if (filename === '' || filename.length > 255 || /[/\\\u0000-\u001f\u007f]/.test(filename) || filename.startsWith('.')) {
    throw httpError('INVALID_FILENAME', JSON.stringify(filename.slice(0, 100)));
  }
  const lower = filename.toLowerCase();
  const extension = ALLOWED_EXTENSIONS.find((e) => lower.endsWith(e));
  if (!extension) throw httpError('INVALID_EXTENSION', filename);
  if (form.filetype !== null) {
    const expected = extension === '.whl' ? 'bdist_wheel' : 'sdist';
    if (form.filetype !== expected) throw httpError('FILETYPE_MISMATCH', `${filename} is not a ${form.filetype}`);
  }
  if (!isValidProjectName(form.name)) throw httpError('INVALID_NAME', JSON.stringify(form.name.slice(0, 100)));
  if (!parseVersion(form.version)) throw httpError('INVALID_VERSION', `${JSON.stringify(form.version.slice(0, 100))} is not a valid PEP 440 version`);
  const parsed = parseFilename(filename);
  if (!parsed) throw httpError('INVALID_FILENAME', `${filename} is not a valid ${extension === '.whl' ? 'wheel' : 'sdist'} file name`);
  if (parsed.project !== normalizeName(form.name)) throw httpError('NAME_MISMATCH', `${filename} is not a file of ${form.name}`);
  if (!versionsEqual(parsed.version.replace(/_/g, '-'), form.version) && !versionsEqual(parsed.version, form.version)) {
    throw httpError('VERSION_MISMATCH', `${filename} is not version ${form.version}`);
  }
  return { extension };
}

/** The lock key of a release: normalized project, PEP 440-normalized version (5.0 = 5.0.0). */
function releaseKey(project: string, version: string): string {
  return `${project}|${versionKey(version) ?? version}`;
}

interface Checked {
  parsed: ParsedFilename;
  extracted: ExtractResult;
  summary: MetadataSummary | null;
  metadataError: string | undefined;
}

function digestMismatch(sent: string | null, actual: string): boolean {
  return sent !== null && sent.trim().toLowerCase() !== actual;
}

/** What the upload routes use: temp files for the form, then accept or remove. */
export interface UploadService {
  readonly storage: TempFileStorage;
  accept(form: UploadForm, stored: StoredUpload): Promise<UploadOutcome>;
  remove(name: string, version: string): Promise<string[]>;
  close(): Promise<void>;
}

export class FileUploader implements UploadService {
  /** The store uploads go to (the first root). */
  readonly store: PackageStore;
  readonly storage: TempFileStorage;
  /** Releases (project|version key) being changed right now: a second upload to one waits. */
  private readonly inProgress = new Map<string, Promise<unknown>>();

  constructor(
    private readonly config: Config,
    private readonly deps: { store: PackageStore; indexer: UploadIndex; metadata: MetadataSource<DistFile>; log: Logger; metrics: MetricsService | null; onLargeUpload?: StreamHook },
  ) {
    this.store = deps.store;
    this.storage = new TempFileStorage(this.store.stagingDir, config.maxUploadSize, deps.onLargeUpload ?? null);
  }

  /**
   * Remove the temp files an interrupted upload left (a crash). The server calls this once the
   * catalog is loaded: it reads the whole staging directory (a root of a million files), which
   * would slow the start-up it does not belong to.
   */
  async sweepLeftovers(): Promise<void> {
    const n = await sweepTempFiles(this.store.stagingDir);
    if (n) this.deps.log.warn({ removed: n }, 'removed temp files left by an interrupted upload');
  }

  /** Validate the stored temp file and move it into place. Always consumes the temp file. */
  async accept(form: UploadForm, stored: StoredUpload): Promise<UploadOutcome> {
    try {
      const checked = await this.check(form, stored);
      // Placement (the uniqueness checks, then link or rename, then the catalog) is serialized
      // per release: concurrent uploads of one release under different spellings of a file
      // name, or of two sdists, see each other's result. Other releases are not held up.
      const result = await this.serialize(releaseKey(checked.parsed.project, form.version), () => this.place(form, stored, checked));
      this.deps.metrics?.upload(result.status === 'identical' ? 'identical' : 'accepted', stored.size);
      return result;
    } catch (err) {
      this.deps.metrics?.upload('rejected');
      throw err;
    } finally {
      await this.storage.discard(stored.tempPath);
    }
  }

  private async serialize<T>(key: string, fn: () => Promise<T>): Promise<T> {
    // No await between the last check and the set: the next waiter sees this holder.
    while (this.inProgress.has(key)) await this.inProgress.get(key)!.catch(() => {});
    const p = fn();
    this.inProgress.set(key, p);
    try {
      return await p;
    } finally {
      this.inProgress.delete(key);
    }
  }

  /** Everything that needs only the form and the bytes: run before the release's lock is taken. */
  private async check(form: UploadForm, stored: StoredUpload): Promise<Checked> {
    validateForm(form);
    if ((form.md5Digest && !stored.md5) || (form.blake2Digest && !stored.blake2b256)) {
      // The digest fields came after the file in the form: hash the temp file again.
      Object.assign(stored, await digestFile(stored.tempPath, { md5: Boolean(form.md5Digest), blake2b256: Boolean(form.blake2Digest) }));
    }
    if (digestMismatch(form.sha256Digest, stored.sha256)) throw httpError('DIGEST_MISMATCH', 'sha256_digest');
    if (form.md5Digest && digestMismatch(form.md5Digest, stored.md5 ?? '')) throw httpError('DIGEST_MISMATCH', 'md5_digest');
    if (form.blake2Digest && digestMismatch(form.blake2Digest, stored.blake2b256 ?? '')) throw httpError('DIGEST_MISMATCH', 'blake2_256_digest');
    if (stored.size === 0) throw httpError('INVALID_DISTRIBUTION', 'the file is empty');

    const parsed = parseFilename(form.filename)!;
    const kind = archiveKindOf(parsed);
    // The metadata reader opens the archive the way pip will (bounded: entry counts, sizes,
    // compression ratios, a timeout): a file that is not the archive its extension says is
    // refused here, as is a wheel without METADATA or metadata without Name or Version.
    const extracted = await extractMetadata(stored.tempPath, kind);
    if (!extracted.ok) {
      // A wheel must have readable METADATA. An sdist must be the archive its extension says;
      // one whose PKG-INFO is missing or beyond the reader's limits is accepted as before.
      if (kind === 'wheel' || isCorruptArchive(extracted.code)) {
        throw httpError('INVALID_DISTRIBUTION', `${form.filename}: ${extracted.error}`);
      }
      return { parsed, extracted, summary: null, metadataError: extracted.error };
    }
    const summary = summarizeMetadata(extracted.bytes, kind);
    const label = kind === 'wheel' ? 'METADATA' : 'PKG-INFO';
    if (!summary.name) throw httpError('INVALID_DISTRIBUTION', `${form.filename}: ${label} has no Name`);
    if (!summary.version) throw httpError('INVALID_DISTRIBUTION', `${form.filename}: ${label} has no Version`);
    if (normalizeName(summary.name) !== parsed.project) {
      throw httpError('NAME_MISMATCH', `the metadata inside ${form.filename} names the project "${summary.name}"`);
    }
    if (!versionsEqual(summary.version, form.version)) {
      throw httpError('VERSION_MISMATCH', `the metadata inside ${form.filename} says version ${summary.version}`);
    }
    return { parsed, extracted, summary, metadataError: undefined };
  }

  /** Runs under the release's lock. */
  private async place(form: UploadForm, stored: StoredUpload, checked: Checked): Promise<UploadOutcome> {
    const { parsed, extracted, summary, metadataError } = checked;
    const catalog = this.deps.indexer.catalog;
    // Uniqueness is by distribution, not by spelling: Demo-1.0.0-py3-none-any.WHL is the file
    // demo-1.0-py3-none-any.whl for pip, so it may not sneak in beside it.
    const existing = catalog.findSameDistribution(parsed.project, parsed);
    if (existing) {
      const sameName = existing.filename === form.filename;
      // A file not hashed yet (just dropped in, or being rehashed) is compared by its bytes.
      const identical =
        sameName &&
        (existing.sha256 === stored.sha256 || (existing.sha256 === null && existing.root === this.store.id && (await sameDigest(this.store, existing.relPath, stored.sha256))));
      if (identical) return { status: 'identical', file: existing };
      if (!this.config.overwrite) throw httpError('FILE_EXISTS', sameName ? form.filename : `${form.filename} (as ${existing.filename})`);
    } else if (parsed.kind === 'sdist') {
      const project = catalog.project(parsed.project);
      const other = project && [...project.files.values()].find((f) => f.parsed.kind === 'sdist' && versionsEqual(f.version, form.version));
      if (other) throw httpError('SDIST_EXISTS', `${other.filename} is already the sdist of ${form.name} ${form.version}`);
    }

    // --overwrite with another spelling replaces the existing file (under its key): never a
    // second file of one distribution. The store makes the bytes durable before they become
    // visible, and of two racing puts of one key exactly one is created.
    const key = existing && existing.root === this.store.id ? existing.relPath : form.filename;
    const source = { path: stored.tempPath };
    let status: UploadOutcome['status'] = 'created';
    let entry: StoreEntry;
    if (existing && this.config.overwrite) {
      entry = await this.store.put(key, source);
      status = 'replaced';
    } else {
      // Across replicas on one bucket (stores that take claims), the rules above also hold
      // for uploads this server has not seen yet: the distribution and the release's sdist are
      // claimed in the bucket before the put. A claim whose put never happens expires.
      const held = await this.store.claim?.(claimNames(parsed), key);
      if (held && !held.granted) {
        const holder = held.key.slice(held.key.lastIndexOf('/') + 1);
        if (held.name.startsWith('sdist:')) throw httpError('SDIST_EXISTS', `${holder} is already the sdist of ${form.name} ${form.version}`);
        throw httpError('FILE_EXISTS', `${form.filename} (as ${holder})`);
      }
      const put = await this.store.putIfAbsent(key, source);
      if (put.created) entry = put.entry;
      else {
        // Stored but not yet (or no longer) in the index: compare bytes via the digest.
        const same = await sameDigest(this.store, key, stored.sha256);
        if (same) return { status: 'identical', file: catalog.findByFilename(parsed.project, form.filename) };
        if (!this.config.overwrite) throw httpError('FILE_EXISTS', form.filename);
        entry = await this.store.put(key, source);
        status = 'replaced';
      }
    }
    this.storage.settled(stored.tempPath);
    const file = this.deps.indexer.addUploaded(this.store, entry, { sha256: stored.sha256, md5: stored.md5, blake2b256: stored.blake2b256 }, summary, metadataError);
    if (file && extracted.ok) this.deps.metadata.remember(file, extracted.bytes);
    this.deps.log.info({ file: form.filename, stored: key.slice(key.lastIndexOf('/') + 1), project: parsed.project, version: form.version, bytes: stored.size, status }, 'upload accepted');
    return { status, file };
  }

  /** `:action=remove_pkg`: delete every file of a release. Returns the removed file names. */
  async remove(name: string, version: string): Promise<string[]> {
    return this.serialize(releaseKey(normalizeName(name), version), () => this.removeRelease(name, version));
  }

  private async removeRelease(name: string, version: string): Promise<string[]> {
    const project = this.deps.indexer.catalog.project(normalizeName(name));
    if (!project) return [];
    const doomed = [...project.files.values()].filter((f) => versionsEqual(f.version, version));
    const removed: string[] = [];
    for (const f of doomed) {
      await f.store.remove(f.relPath);
      await f.store.release?.(claimNames(f.parsed), f.relPath);
      this.deps.indexer.forget(f);
      removed.push(f.filename);
    }
    if (removed.length) this.deps.log.info({ project: project.name, version, files: removed }, 'release removed');
    return removed;
  }

  async close(): Promise<void> {
    await this.storage.removeAll();
  }
}

async function digestFile(file: string, want: { md5?: boolean; blake2b256?: boolean } = {}): Promise<Digests> {
  const d = await Digester.create(want);
  for await (const chunk of createReadStream(file)) d.update(chunk as Buffer);
  return d.digest();
}

/** The uniqueness claims of a file (PackageStore.claim): its distribution, and an sdist's release. */
export function claimNames(parsed: ParsedFilename): string[] {
  const names = [`dist:${distKey(parsed)}`];
  if (parsed.kind === 'sdist') names.push(`sdist:${releaseKey(parsed.project, parsed.version)}`);
  return names;
}

/** Does the stored file at key have this sha256? (false: gone meanwhile, or other bytes) */
async function sameDigest(store: PackageStore, key: string, sha256: string): Promise<boolean> {
  const obj = await store.open(key);
  if (!obj) return false;
  try {
    const d = await Digester.create();
    for await (const chunk of obj.stream()) d.update(chunk as Buffer);
    return d.digest().sha256 === sha256;
  } finally {
    await obj.close();
  }
}
