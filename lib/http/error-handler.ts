// The one final error handler: every error ends here. Known errors (HttpError) answer with
// their status and a reason phrase carrying the message (twine prints only the reason); an
// unexpected error is logged with the request id and answered 500 with that id, and the
// process keeps serving. Errors from body parsers and multer are mapped to client errors.

import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { HttpError, httpError, toReasonPhrase } from '../core/errors.js';

interface StatusLike {
  status?: unknown;
  statusCode?: unknown;
  expose?: unknown;
  message?: unknown;
  type?: unknown;
}

/** Map errors thrown by libraries (http-errors style objects with a 4xx status) to HttpError. */
export function toHttpError(err: unknown): HttpError | null {
  if (err instanceof HttpError) return err;
  const e = err as StatusLike | null;
  const status = typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : 0;
  if (status >= 400 && status < 500) {
    const msg = typeof e?.message === 'string' ? e.message : undefined;
    if (status === 413) return httpError('PAYLOAD_TOO_LARGE', msg);
    if (status === 415) return httpError('UNSUPPORTED_MEDIA_TYPE', msg);
    return httpError('BAD_REQUEST', msg);
  }
  return null;
}

/** How long the unread rest of a request body is still read (and discarded) after an error answer. */
const DRAIN_MS = 15_000;

/**
 * Answer at once, then read and discard what is left of the request body before the
 * connection may close. Closing a socket that still has unread data makes TCP reset the
 * connection, and a client still sending (requests/twine, Node, hyper) then reports
 * "connection reset" / EPIPE instead of our 4xx. Reading on lets it finish sending and read
 * the answer; a body that has not ended within DRAIN_MS is cut off.
 */
function answerThenDrain(req: Request, res: Response, answer: () => void): void {
  if (req.complete || req.readableEnded || req.destroyed) return answer();
  if (res.getHeader('Connection') === 'close') res.removeHeader('Connection');
  if (!res.shouldKeepAlive) {
    // The client asked to close after this exchange (`Connection: close`, HTTP/1.0): Node closes
    // the socket as soon as the answer is written, unread body and all, so the reset would come
    // right away. There, read the body first (bounded) and answer after.
    let answered = false;
    const go = () => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      answer();
    };
    const timer = setTimeout(go, DRAIN_MS);
    req.once('end', go);
    req.once('close', go);
    req.once('error', go);
    req.resume();
    return;
  }
  answer();
  const timer = setTimeout(() => req.socket.destroy(), DRAIN_MS);
  timer.unref();
  const stop = () => clearTimeout(timer);
  req.once('end', stop);
  req.once('close', stop);
  req.once('error', stop);
  req.resume();
}

export function sendError(req: Request, res: Response, err: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  answerThenDrain(req, res, () => writeError(req, res, err));
}

function writeError(req: Request, res: Response, err: HttpError): void {
  const message = err.message;
  if (res.headersSent || res.destroyed) return;
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res.statusCode = err.status;
  res.statusMessage = toReasonPhrase(message);
  const body = `${err.status} ${message}\n`;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('Cache-Control', 'no-store');
  res.end(req.method === 'HEAD' ? undefined : body);
}

export function errorHandler(log: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const known = toHttpError(err);
    if (known) {
      // 502/504: another server's failure (the upstream index), said in the answer and logged by
      // the upstream component; one line without a stack here. Other 5xx are ours: with the stack.
      if (known.status === 502 || known.status === 504) log.warn({ reqId: req.id, code: known.code, reason: known.message }, 'upstream failure answered');
      else if (known.status >= 500) log.error({ err, reqId: req.id }, known.message);
      sendError(req, res, known);
      return;
    }
    log.error({ err, reqId: req.id, method: req.method, path: req.path }, 'unexpected error');
    sendError(req, res, httpError('INTERNAL', `request id ${req.id}`));
  };
}
