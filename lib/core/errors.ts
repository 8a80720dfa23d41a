// The one catalogue of errors pypi-lite answers with. Every client-visible failure is
// created from here, and the final error handler (lib/http/error-handler.ts) turns it into a
// response whose HTTP reason phrase carries the message (twine prints only the reason).

export const ERRORS = {
  NOT_FOUND: { status: 404, message: 'Not Found' },
  PROJECT_NOT_FOUND: { status: 404, message: 'Project not found' },
  FILE_NOT_FOUND: { status: 404, message: 'File not found' },
  METADATA_NOT_FOUND: { status: 404, message: 'No metadata file for this distribution' },
  NOT_ACCEPTABLE: {
    status: 406,
    message: 'Not Acceptable: use application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html or text/html',
  },
  METHOD_NOT_ALLOWED: { status: 405, message: 'Method Not Allowed' },
  RANGE_NOT_SATISFIABLE: { status: 416, message: 'Range Not Satisfiable' },
  AUTH_REQUIRED: { status: 401, message: 'Authentication required' },
  AUTH_FAILED: { status: 403, message: 'Invalid username or password' },
  UPLOADS_DISABLED: {
    status: 403,
    message: 'Uploads are disabled: start pypi-lite with -P <htpasswd file> (see `pypi-lite passwd`), or -a . -P . to allow anonymous uploads',
  },
  BAD_REQUEST: { status: 400, message: 'Bad Request' },
  UNSUPPORTED_ACTION: { status: 400, message: 'Unsupported :action' },
  BAD_PROTOCOL_VERSION: { status: 400, message: 'Unsupported protocol_version: only 1 is supported' },
  MISSING_FIELD: { status: 400, message: 'Missing required field' },
  MISSING_CONTENT: { status: 400, message: 'No file uploaded in the "content" field' },
  INVALID_FILENAME: { status: 400, message: 'Invalid filename' },
  INVALID_EXTENSION: { status: 400, message: 'Invalid file extension: use .whl, .tar.gz or .zip' },
  FILETYPE_MISMATCH: { status: 400, message: 'filetype does not match the file extension' },
  NAME_MISMATCH: { status: 400, message: 'Filename does not match the project name' },
  VERSION_MISMATCH: { status: 400, message: 'Filename does not match the version' },
  INVALID_NAME: { status: 400, message: 'Invalid project name' },
  INVALID_VERSION: { status: 400, message: 'Invalid version' },
  DIGEST_MISMATCH: { status: 400, message: 'Digest mismatch: the uploaded file does not match its digest' },
  BAD_MULTIPART: { status: 400, message: 'Malformed multipart/form-data request' },
  TOO_MANY_FIELDS: { status: 400, message: 'Too many form fields' },
  FIELD_TOO_LARGE: { status: 400, message: 'A form field is too large' },
  FORM_TOO_LARGE: { status: 413, message: 'Form fields too large' },
  UNEXPECTED_FILE: { status: 400, message: 'Unexpected file field: only "content" and "gpg_signature" are accepted' },
  INVALID_DISTRIBUTION: { status: 400, message: 'Invalid distribution' },
  FILE_EXISTS: { status: 409, message: 'File already exists' },
  SDIST_EXISTS: { status: 400, message: 'Only one sdist may be uploaded per release' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'Upload too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Uploads must be multipart/form-data' },
  TOO_MANY_REQUESTS: { status: 429, message: 'Too many failed attempts, slow down' },
  REQUEST_TIMEOUT: { status: 408, message: 'Request Timeout' },
  URI_TOO_LONG: { status: 414, message: 'URI Too Long' },
  NOT_READY: { status: 503, message: 'Catalog is still loading' },
  STORE_UNAVAILABLE: { status: 503, message: 'Package store unavailable' },
  UPSTREAM_UNAVAILABLE: { status: 502, message: 'Upstream index unavailable' },
  UPSTREAM_TIMEOUT: { status: 504, message: 'Upstream index timed out' },
  UPSTREAM_BAD_RESPONSE: { status: 502, message: 'Upstream index sent an unusable response' },
  UPSTREAM_FILE_MISMATCH: { status: 502, message: 'Upstream file does not match the sha256 its page listed' },
  INTERNAL: { status: 500, message: 'Internal Server Error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class HttpError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, detail?: string, headers: Record<string, string> = {}) {
    const base = ERRORS[code].message;
    super(detail ? `${base}: ${detail}` : base);
    this.code = code;
    this.status = ERRORS[code].status;
    this.headers = headers;
  }
}

export function httpError(code: ErrorCode, detail?: string, headers?: Record<string, string>): HttpError {
  return new HttpError(code, detail, headers);
}

/** A reason phrase must be latin-1 without CR/LF/control characters; keep it short. */
export function toReasonPhrase(message: string): string {
  const cleaned = message.replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/[^\u0020-\u00ff]/g, '?');
  return cleaned.length > 300 ? `${cleaned.slice(0, 297)}...` : cleaned;
}
