// What the index keeps of a core metadata file: its digest, size and the few fields the
// Simple API needs. The bytes themselves stay in the archive and are re-read on demand.

import { hash } from 'node:crypto';
import { parseSummaryFields, sdistMetadataIsStatic } from './parse.js';
import type { ArchiveKind, MetadataSummary } from './types.js';

export function summarizeMetadata(bytes: Buffer, kind: ArchiveKind): MetadataSummary {
  // Runs for every file at a cold start: only the fields kept are parsed (same answers as
  // parseMetadata), and the one-shot hash() spares a Hash object per file.
  const md = parseSummaryFields(bytes);
  // PEP 658: wheels always; sdists only when their metadata is static (Metadata-Version >= 2.2).
  const servable = kind === 'wheel' || ((kind === 'tar.gz' || kind === 'zip' || kind === 'tgz') && sdistMetadataIsStatic(md));
  return {
    sha256: hash('sha256', bytes, 'hex'),
    size: bytes.length,
    name: md.name,
    version: md.version,
    requiresPython: md.requiresPython,
    servable,
  };
}
