// Types for proxy-addr (the module behind Express's `trust proxy`; it ships no types and
// @types/proxy-addr is not installed). Only what lib/http/client-address.ts uses.
declare module 'proxy-addr' {
  import type { IncomingMessage } from 'node:http';

  type TrustFunction = (addr: string, hop: number) => boolean;

  /** The client address: the nearest address in the forwarding chain that is not trusted. */
  function proxyaddr(req: IncomingMessage, trust: TrustFunction): string | undefined;

  namespace proxyaddr {
    export type { TrustFunction };
    /** Compile addresses, subnets and the names loopback, linklocal, uniquelocal; throws TypeError on a bad one. */
    export function compile(val: string | string[]): TrustFunction;
  }

  export = proxyaddr;
}
