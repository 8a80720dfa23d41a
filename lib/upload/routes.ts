// The legacy upload API as twine, uv publish, poetry and flit speak it: POST multipart/form-data
// to / or /legacy/ (answered directly: twine refuses redirects). Credentials are checked before
// the body is read (the route table, lib/routes.ts, declares these paths with `update`); the
// body streams to a temp file through multer; every failure is a 4xx whose reason phrase
// carries the message.

import type { Request, RequestHandler, Response } from 'express';
import type multer from 'multer';
import type { Writable } from 'node:stream';
import type { Config } from '../core/config.js';
import { HttpError, httpError } from '../core/errors.js';
import { FieldBudget, FormGuard, UPLOAD_FORM_LIMITS, boundaryOf, largestFieldLimit } from './form-guard.js';
import type { StoredFileInfo } from './storage.js';
import type { UploadForm, UploadService } from './uploader.js';

export type Uploader = UploadService;

/** Room for the form fields around the file in a multipart body. */
const FORM_OVERHEAD = 8 * 1024 * 1024;

type Body = Record<string, unknown>;

/** multer (and busboy under it), loaded with the first upload: most server processes never take one. */
let multerModule: typeof multer | null = null;
const loadMulter = async (): Promise<typeof multer> => (multerModule ??= (await import('multer')).default);

/** The first string value of a form field ('' and 'UNKNOWN' count as absent). */
export function field(body: Body, key: string): string | null {
  const v = body[key];
  const s = Array.isArray(v) ? v.find((x): x is string => typeof x === 'string') : typeof v === 'string' ? v : undefined;
  if (s === undefined) return null;
  const t = s.trim();
  return t === '' || t === 'UNKNOWN' ? null : t;
}

/** Every string value of a repeated field. */
export function fieldList(body: Body, key: string): string[] {
  const v = body[key];
  const all = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return all.filter((x): x is string => typeof x === 'string' && x.trim() !== '' && x.trim() !== 'UNKNOWN');
}

function multerToHttp(err: unknown, limit: number): HttpError {
  if (err instanceof HttpError) return err;
  if (multerModule && err instanceof multerModule.MulterError) {
    switch (err.code) {
      case 'LIMIT_FILE_SIZE':
        return httpError('PAYLOAD_TOO_LARGE', `limit is ${limit} bytes`);
      case 'LIMIT_PART_COUNT':
      case 'LIMIT_FIELD_COUNT':
      case 'LIMIT_FILE_COUNT':
        return httpError('TOO_MANY_FIELDS');
      case 'LIMIT_FIELD_VALUE':
      case 'LIMIT_FIELD_KEY':
        return httpError('FIELD_TOO_LARGE', err.field);
      case 'LIMIT_UNEXPECTED_FILE':
        return httpError('UNEXPECTED_FILE', err.field);
      default:
        return httpError('BAD_MULTIPART', err.message);
    }
  }
  const msg = err instanceof Error ? err.message : String(err);
  return httpError('BAD_MULTIPART', msg);
}

export function uploadRoutes(config: Config, deps: { uploader: Uploader }) {
  const formLimits = UPLOAD_FORM_LIMITS;
  /** The guard of each request being parsed (made by multer's streamHandler), and how a failed guard is answered. */
  const guards = new WeakMap<Request, FormGuard>();
  const failures = new WeakMap<Request, (err: unknown) => void>();
  const options: multer.Options & { streamHandler: (req: Request, busboy: Writable) => void } = {
    storage: deps.uploader.storage,
    // busboy would otherwise cut "../evil-1.0.tar.gz" or "a\b.whl" down to its last segment and
    // the upload would be accepted under another name; keep it whole so validateForm refuses it.
    preservePath: true,
    limits: {
      fileSize: config.maxUploadSize,
      files: 2,
      fields: 200,
      parts: 210,
      // What busboy buffers of one field at most; each field's own limit and the total are
      // enforced by the FormGuard as the bytes arrive.
      fieldSize: largestFieldLimit(formLimits),
      fieldNameSize: 200,
      headerPairs: 200,
    },
    // multer >= 2.5 feeds busboy through this: request -> FormGuard -> busboy.
    streamHandler: (req, busboy) => {
      const boundary = boundaryOf(req.headers['content-type']);
      if (boundary === null) {
        req.pipe(busboy); // busboy refuses it
        return;
      }
      const guard = new FormGuard(boundary, formLimits, busboy);
      guards.set(req, guard);
      // The content file busboy reports while the guard holds its part is written by the guard.
      deps.uploader.storage.divertFrom(req, guard);
      guard.once('error', (err: Error) => {
        busboy.destroy(err);
        failures.get(req)?.(err);
      });
      // Stop feeding a busboy that has finished or failed (multer then drains the request).
      const stop = () => {
        req.unpipe(guard);
        // A file it was still writing is incomplete: its temp file goes (see abandon).
        guard.destroy();
      };
      busboy.once('error', stop);
      busboy.once('close', stop);
      // The same limits on the fields as busboy parsed them, should the guard have misread
      // the structure of some odd body: memory stays bounded by busboy's fieldSize either way.
      const parsed = new FieldBudget(formLimits);
      busboy.on('field', (name: unknown, value: unknown) => {
        if (typeof name !== 'string' || typeof value !== 'string') return;
        const bytes = Buffer.byteLength(value);
        const err = parsed.over(name, bytes) ?? parsed.add(bytes);
        if (err) guard.reject(err);
      });
      req.pipe(guard);
    },
  };
  let loadedParser: RequestHandler | null = null;
  const loadParser = async (): Promise<RequestHandler> =>
    (loadedParser ??= (await loadMulter())(options).fields([
      { name: 'content', maxCount: 1 },
      { name: 'gpg_signature', maxCount: 1 },
    ]));

  const parse = async (req: Request, res: Response): Promise<void> => parseWith(await loadParser(), req, res);
  const parseWith = (parser: RequestHandler, req: Request, res: Response): Promise<void> =>
    new Promise((resolve, reject) => {
      // A field over its limit: answer now, while the client may still be sending, once the
      // temp file (if the file came first) is gone. multer's own abort follows unawaited.
      failures.set(req, (err: unknown) => {
        void deps.uploader.storage.abandon(req).then(() => reject(multerToHttp(err, config.maxUploadSize)));
      });
      parser(req, res, (err?: unknown) => {
        if (!err) return resolve();
        // multer removed the files it knew of; a file the guard was diverting goes too.
        guards.get(req)?.destroy();
        void deps.uploader.storage.abandon(req).then(() => reject(multerToHttp(err, config.maxUploadSize)));
      });
    });

  return async (req: Request, res: Response): Promise<void> => {
    // Refusals before the body is read are answered at once; the error handler then drains
    // the body (bounded) so that the client, still sending, can read the answer.
    if (!req.is('multipart/form-data')) throw httpError('UNSUPPORTED_MEDIA_TYPE');
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > config.maxUploadSize + FORM_OVERHEAD) throw httpError('PAYLOAD_TOO_LARGE', `limit is ${config.maxUploadSize} bytes`);

    await parse(req, res);
    const body = (req.body ?? {}) as Body;
    const files = (req.files ?? {}) as Record<string, (Express.Multer.File & Partial<StoredFileInfo>)[]>;
    const content = files.content?.[0];
    const stored = content?.digests ?? null;
    // Every temp file of this request is gone before the answer goes out (a client that reads
    // the root right after its 200 finds nothing half-written).
    let reply: string;
    try {
      const action = field(body, ':action') ?? (typeof req.query[':action'] === 'string' ? req.query[':action'] : null);
      const protocol = field(body, 'protocol_version');
      if (protocol !== null && protocol !== '1') throw httpError('BAD_PROTOCOL_VERSION', protocol.slice(0, 20));
      const name = field(body, 'name');
      const version = field(body, 'version');
      if (action === 'remove_pkg') {
        if (!name || !version) throw httpError('MISSING_FIELD', 'name and version');
        const removed = await deps.uploader.remove(name, version);
        if (!removed.length) throw httpError('FILE_NOT_FOUND', `${name} ${version}`);
        reply = `Removed ${removed.join(', ')}\n`;
      } else {
        if (action !== 'file_upload') throw httpError('UNSUPPORTED_ACTION', action === null ? 'missing' : action.slice(0, 40));
        if (!name) throw httpError('MISSING_FIELD', 'name');
        if (!version) throw httpError('MISSING_FIELD', 'version');
        if (!content || !stored) throw httpError('MISSING_CONTENT');
        const form: UploadForm = {
          name,
          version,
          filetype: field(body, 'filetype'),
          filename: content.originalname ?? '',
          sha256Digest: field(body, 'sha256_digest'),
          md5Digest: field(body, 'md5_digest'),
          blake2Digest: field(body, 'blake2_256_digest'),
        };
        const outcome = await deps.uploader.accept(form, stored);
        const storedAs = outcome.file && outcome.file.filename !== form.filename ? ` (replaced ${outcome.file.filename}, kept under that name)` : '';
        reply = outcome.status === 'identical' ? `${form.filename} was already uploaded with identical content\n` : `OK: ${form.filename}${storedAs}\n`;
      }
    } finally {
      // The stored file when it was not moved into place (identical, refused, remove_pkg), and
      // any other temp file of this request.
      await deps.uploader.storage.abandon(req);
    }
    res.type('text/plain').send(reply);
  };
}
