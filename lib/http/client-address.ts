// Who the client is: the socket's address, or, behind trusted reverse proxies (--trust-proxy),
// the address they forwarded in X-Forwarded-For. One rule, with Express's `trust proxy`
// semantics (it is the same module, proxy-addr), shared by Express (req.ip, used by the
// failure throttle), the access log and the fast path in front of Express.

import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';

/** --trust-proxy: off, trust everything, a hop count, or addresses/subnets/names. */
export type TrustProxy = boolean | number | string[];

export type TrustFunction = proxyaddr.TrustFunction;

/**
 * Parse a --trust-proxy value: "false"/"off"/"0"/"" (off), "true" (trust every hop), a hop
 * count, or a comma list of addresses, CIDR subnets and the names loopback, linklocal and
 * uniquelocal. Throws an Error with a message for the user on anything else.
 */
export function parseTrustProxy(value: string | undefined): TrustProxy {
  const v = (value ?? '').trim();
  const lower = v.toLowerCase();
  if (lower === '' || lower === 'false' || lower === 'off' || lower === 'no') return false;
  if (lower === 'true' || lower === 'on' || lower === 'yes') return true;
  if (/^\d+$/.test(v)) {
    const hops = Number(v);
    if (!Number.isSafeInteger(hops)) throw new Error(`--trust-proxy: hop count "${v}" is too large`);
    return hops === 0 ? false : hops;
  }
  const list = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  try {
    proxyaddr.compile(list);
  } catch (err) {
    throw new Error(`--trust-proxy: ${(err as Error).message} (use a hop count, or addresses/subnets such as loopback,10.0.0.0/8)`, { cause: err });
  }
  return list;
}

/** The trust function for a --trust-proxy value (what Express compiles `trust proxy` into). */
export function compileTrust(trust: TrustProxy): TrustFunction {
  if (trust === true) return () => true;
  if (trust === false) return () => false;
  if (typeof trust === 'number') return (_addr, hop) => hop < trust;
  return proxyaddr.compile(trust);
}

/** The client's address under this trust rule (equal to Express's req.ip with `trust proxy` set to it). */
export function clientAddress(req: IncomingMessage, trust: TrustFunction): string {
  return proxyaddr(req, trust) ?? req.socket.remoteAddress ?? 'unknown';
}
