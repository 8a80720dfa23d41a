// Access control: which actions need credentials (-a), checking them against the htpasswd
// file (-P) without blocking the event loop, slowing down clients that keep failing, and
// answering in the way pip and twine understand (401 + WWW-Authenticate when credentials are
// missing, so pip asks keyring or prompts; 403 when they are wrong).

import basicAuth from 'basic-auth';
import type { NextFunction, Request, Response } from 'express';
import type { AuthAction } from '../config.js';
import { httpError } from '../errors.js';
import type { PasswordFile } from './htpasswd.js';
import { FailureThrottle } from './throttle.js';

export const REALM = 'pypi-lite';

export interface GuardOptions {
  authenticate: Set<AuthAction>;
  passwords: PasswordFile | null;
  anonymousUploads: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class AuthGuard {
  readonly throttle: FailureThrottle;

  constructor(
    private readonly opts: GuardOptions,
    throttle = new FailureThrottle(),
  ) {
    this.throttle = throttle;
  }

  /** Does this action need credentials? */
  needs(action: AuthAction): boolean {
    return this.opts.authenticate.has(action);
  }

  /** Are uploads possible at all with this configuration? */
  uploadsEnabled(): boolean {
    if (this.needs('update')) return this.opts.passwords !== null;
    return this.opts.anonymousUploads || this.opts.passwords !== null;
  }

  /**
   * Check a request for an action. Resolves with the user name ('' for anonymous access) or
   * rejects with the HttpError to answer.
   */
  async check(req: Request, action: AuthAction): Promise<string> {
    if (action === 'update' && !this.uploadsEnabled()) throw httpError('UPLOADS_DISABLED');
    if (!this.needs(action)) return '';
    const passwords = this.opts.passwords;
    const challenge = { 'WWW-Authenticate': `Basic realm="${REALM}", charset="UTF-8"` };
    const creds = basicAuth.parse(req.headers.authorization ?? '');
    if (!creds) throw httpError('AUTH_REQUIRED', undefined, challenge);
    const client = req.socket.remoteAddress ?? 'unknown';
    const delay = this.throttle.delayFor(client);
    if (delay > 0) await sleep(delay);
    const ok = passwords ? await passwords.verify(creds.name, creds.pass) : false;
    if (!ok) {
      this.throttle.fail(client);
      throw httpError('AUTH_FAILED', `user "${creds.name.slice(0, 64)}"`);
    }
    this.throttle.succeed(client);
    return creds.name;
  }

  /** Express middleware requiring credentials for an action when -a says so. */
  require(action: AuthAction) {
    return (req: Request, _res: Response, next: NextFunction): void => {
      if (!this.needs(action)) return next();
      this.check(req, action).then(
        (user) => {
          req.user = user || undefined;
          next();
        },
        next,
      );
    };
  }
}
