// Access control: which actions need credentials (-a), checking them against the htpasswd
// file (-P) without blocking the event loop, slowing down clients that keep failing, and
// answering in the way pip and twine understand (401 + WWW-Authenticate when credentials are
// missing, so pip asks keyring or prompts; 403 when they are wrong).
//
// The rules, decided here and nowhere else:
// - `update` is every request that changes state (uploads, remove_pkg, yank, unyank and any
//   route added later): with a password file it ALWAYS needs a valid user, whatever -a says.
//   Anonymous writes exist only without a password file and with the explicit `-a . -P .`.
//   createApp applies requireWrites() to every request that is not GET or HEAD, so a new
//   write route is protected even if it forgets to call check(req, 'update') itself.
// - `list` guards what reveals names and versions (Simple API, /, /metrics, counts in /health);
//   `download` guards what reveals file contents or metadata (files, .metadata, the JSON API,
//   which needs `list` as well).

import basicAuth from 'basic-auth';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { AuthAction } from '../core/config.js';
import { httpError } from '../core/errors.js';
import type { Authenticator } from './authenticator.js';
import { FailureThrottle } from './throttle.js';

export const REALM = 'pypi-lite';

export interface GuardOptions {
  authenticate: Set<AuthAction>;
  /** Who checks credentials (the password file, -P); null: nobody can log in. */
  authenticator: Authenticator | null;
  anonymousUploads: boolean;
}

/** Methods that only read; every other method is a write (`update`). */
export function isReadMethod(method: string | undefined): boolean {
  return method === 'GET' || method === 'HEAD';
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The access rules as the routes use them (AuthGuard is the implementation; it checks users
 * through an Authenticator).
 */
export interface AccessPolicy {
  /** Does this action need credentials under this configuration? */
  needs(action: AuthAction): boolean;
  /** The user allowed to do this, after asking for or checking credentials; throws the 401/403. */
  check(req: Request, action: AuthAction): Promise<string>;
  /** A middleware that lets a request through only with these actions allowed. */
  require(...actions: AuthAction[]): RequestHandler;
  /** A middleware that asks every write (any method but GET/HEAD) for a user when there is a password file. */
  requireWrites(): RequestHandler;
}

export class AuthGuard implements AccessPolicy {
  readonly throttle: FailureThrottle;
  /** Users already authenticated for a request, so that several checks cost one verification. */
  private readonly verified = new WeakMap<object, string>();

  constructor(
    private readonly opts: GuardOptions,
    throttle = new FailureThrottle(),
  ) {
    this.throttle = throttle;
  }

  /** Does this action need credentials? Writes always do when a password file is configured. */
  needs(action: AuthAction): boolean {
    if (action === 'update' && this.opts.authenticator !== null) return true;
    return this.opts.authenticate.has(action);
  }

  /**
   * Are uploads possible at all with this configuration? With a password file, for its users;
   * without one, only when anonymous uploads were asked for explicitly (`-a . -P .`).
   */
  uploadsEnabled(): boolean {
    if (this.opts.authenticator !== null) return true;
    return this.opts.anonymousUploads && !this.opts.authenticate.has('update');
  }

  /**
   * Check a request for an action. Resolves with the user name ('' for anonymous access) or
   * rejects with the HttpError to answer.
   */
  async check(req: Request, action: AuthAction): Promise<string> {
    if (action === 'update' && !this.uploadsEnabled()) throw httpError('UPLOADS_DISABLED');
    if (!this.needs(action)) return '';
    const known = this.verified.get(req);
    if (known !== undefined) return known;
    const authenticator = this.opts.authenticator;
    const challenge = { 'WWW-Authenticate': `Basic realm="${REALM}", charset="UTF-8"` };
    const creds = basicAuth.parse(req.headers.authorization ?? '');
    if (!creds) throw httpError('AUTH_REQUIRED', undefined, challenge);
    // req.ip follows --trust-proxy (the same rule as the access log); unit tests pass bare objects.
    const client = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const delay = this.throttle.delayFor(client);
    if (delay > 0) await sleep(delay);
    const ok = authenticator ? await authenticator.verify(creds.name, creds.pass) : false;
    if (!ok) {
      this.throttle.fail(client);
      throw httpError('AUTH_FAILED', `user "${creds.name.slice(0, 64)}"`);
    }
    this.throttle.succeed(client);
    this.verified.set(req, creds.name);
    return creds.name;
  }

  /**
   * Express middleware requiring credentials for each of the actions that -a protects.
   * `update` is always checked: check() also refuses writes when uploads are disabled.
   */
  require(...actions: AuthAction[]): RequestHandler {
    return (req: Request, _res: Response, next: NextFunction): void => {
      const needed = actions.filter((a) => a === 'update' || this.needs(a));
      if (needed.length === 0) return next();
      // One verification covers them all (check() remembers the user for this request).
      this.check(req, needed[0]).then(
        (user) => {
          req.user = user || undefined;
          next();
        },
        next,
      );
    };
  }

  /**
   * Express middleware for the whole app: a request that may change state (any method but
   * GET and HEAD) needs a valid user whenever a password file is configured. Without one the
   * route decides (uploads disabled, or anonymous with `-a . -P .`).
   */
  requireWrites(): RequestHandler {
    return (req: Request, res: Response, next: NextFunction): void => {
      if (isReadMethod(req.method) || this.opts.authenticator === null) return next();
      this.require('update')(req, res, next);
    };
  }
}
