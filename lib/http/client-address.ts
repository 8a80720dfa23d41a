// Who the client is: the socket's address, or, behind trusted reverse proxies (--trust-proxy),
// the address they forwarded in X-Forwarded-For. One rule, with Express's `trust proxy`
// semantics (it is the same module, proxy-addr), shared by Express (req.ip, used by the
// failure throttle), the access log and the fast path in front of Express.

import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';
import type { TrustProxy } from '../core/config.js';

export type TrustFunction = proxyaddr.TrustFunction;

/** No proxy is trusted (the default): the client is the socket's peer. */
const TRUST_NONE: TrustFunction = () => false;

/** The trust function for a --trust-proxy value (what Express compiles `trust proxy` into). */
export function compileTrust(trust: TrustProxy): TrustFunction {
  if (trust === true) return () => true;
  if (trust === false) return TRUST_NONE;
  if (typeof trust === 'number') return (_addr, hop) => hop < trust;
  return proxyaddr.compile(trust);
}

/** The client's address under this trust rule (equal to Express's req.ip with `trust proxy` set to it). */
export function clientAddress(req: IncomingMessage, trust: TrustFunction): string {
  // What proxy-addr answers when no hop is trusted, without parsing X-Forwarded-For.
  if (trust === TRUST_NONE) return req.socket.remoteAddress ?? 'unknown';
  return proxyaddr(req, trust) ?? req.socket.remoteAddress ?? 'unknown';
}
