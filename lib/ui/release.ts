// What a project page shows about one release that is not in the catalog: the core metadata
// fields (through the JSON API's builder, lib/pypi-json/build.ts, so both views agree) and the
// README rendered to safe HTML. Built once per release (reading the metadata from its archive
// is the only disk access a project page costs) and kept in a bounded LRU keyed by the
// identity of the release's files, so a changed file is never shown with stale details.

import type { DistFile } from '../catalog/catalog.js';
import type { IndexService } from '../catalog/indexer.js';
import type { CoreMetadata } from '../metadata/parse.js';
import type { MetadataSource } from '../metadata/reader.js';
import { info } from '../pypi-json/build.js';
import { Lru } from './lru.js';
import type { renderReadme } from './readme.js';

type Info = Awaited<ReturnType<typeof info>>;

/** The core metadata fields a project page shows (as parsed), plus what the page derives. */
export interface ReleaseDetails
  extends Pick<
    CoreMetadata,
    'summary' | 'author' | 'authorEmail' | 'maintainer' | 'maintainerEmail' | 'license' | 'licenseExpression' | 'homePage' | 'requiresPython' | 'requiresDist' | 'classifiers' | 'keywords'
  > {
  name: string;
  /** Project-URL labels and URLs, the home page first when it is not among them. */
  projectUrls: [string, string][];
  /** Sanitized HTML ('' when the release has no description). */
  readmeHtml: string;
}

export interface ReleaseDetailsDeps {
  indexer: IndexService;
  metadata: MetadataSource<DistFile>;
}

/**
 * The README renderer, loaded with the first release page (markdown-it, sanitize-html and
 * postcss are some 90 modules that most server processes never need).
 */
let readmeRenderer: Promise<typeof renderReadme> | null = null;
const loadReadmeRenderer = (): Promise<typeof renderReadme> => (readmeRenderer ??= import('./readme.js').then((m) => m.renderReadme));

function toDetails(i: Info, render: typeof renderReadme): ReleaseDetails {
  const urls: [string, string][] = Object.entries(i.project_urls ?? {});
  if (i.home_page && !urls.some(([, u]) => u === i.home_page)) urls.unshift(['Homepage', i.home_page]);
  return {
    name: i.name,
    summary: i.summary,
    author: i.author,
    authorEmail: i.author_email,
    maintainer: i.maintainer,
    maintainerEmail: i.maintainer_email,
    license: i.license,
    licenseExpression: i.license_expression,
    homePage: i.home_page,
    projectUrls: urls,
    requiresPython: i.requires_python,
    requiresDist: i.requires_dist ?? [],
    classifiers: i.classifiers,
    keywords: i.keywords,
    readmeHtml: render(i.description, i.description_content_type),
  };
}

function weight(d: ReleaseDetails): number {
  let n = d.readmeHtml.length + 1024;
  for (const c of d.classifiers) n += c.length;
  for (const r of d.requiresDist) n += r.length;
  return n;
}

export class ReleaseDetailsCache {
  private readonly lru: Lru<ReleaseDetails>;
  private readonly pending = new Map<string, Promise<ReleaseDetails>>();

  constructor(
    private readonly deps: ReleaseDetailsDeps,
    maxBytes = 16 * 1024 * 1024,
    maxEntries = 2000,
  ) {
    this.lru = new Lru(maxBytes, maxEntries);
  }

  get stats(): { entries: number; bytes: number } {
    return { entries: this.lru.size, bytes: this.lru.weight };
  }

  private key(files: DistFile[]): string {
    return files.map((f) => `${f.root}\0${f.relPath}\0${f.size}\0${f.mtimeMs}\0${f.metadata ? f.metadata.sha256 : String(f.metadata)}`).join('\n');
  }

  async get(projectName: string, version: string, files: DistFile[]): Promise<ReleaseDetails> {
    const key = this.key(files);
    const hit = this.lru.get(key);
    if (hit) return hit;
    let p = this.pending.get(key);
    if (!p) {
      const ctx = { files, versions: [version], releaseOf: (v: string) => v, baseUrl: '', projectName, indexer: this.deps.indexer, metadata: this.deps.metadata };
      p = Promise.all([info(ctx, version, files), loadReadmeRenderer()]).then(([i, render]) => toDetails(i, render));
      this.pending.set(key, p);
      p.then(
        (details) => {
          this.pending.delete(key);
          this.lru.set(key, details, weight(details));
        },
        () => this.pending.delete(key),
      );
    }
    return p;
  }
}
