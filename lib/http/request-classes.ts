// The server's request and response classes: Node's, with Express's prototypes as their
// instances' own. Express gives every request it handles its own prototypes
// (Object.setPrototypeOf on req and res); a changed prototype is a changed hidden class, and
// Node's http code, shared by every request the process serves (the fast path's pages
// included), then runs polymorphic. Measured: a project page cost ~45 µs of CPU before Express
// had answered anything and ~70 µs once it had answered the start-up's /health polls. With
// these classes Express finds each object already of its kind and changes nothing.

import http from 'node:http';

/** What Express sets on requests and responses (express.Express has both). */
export interface PrototypeHolder {
  request: object;
  response: object;
}

/** Make `target` what holder[key] is (its prototype and own properties), and put it there. */
function adopt(holder: PrototypeHolder, key: 'request' | 'response', target: object): void {
  const current = holder[key];
  Reflect.setPrototypeOf(target, Reflect.getPrototypeOf(current));
  Object.defineProperties(target, Object.getOwnPropertyDescriptors(current));
  holder[key] = target;
}

/** Classes for http.createServer({ IncomingMessage, ServerResponse }) whose instances Express takes as they are. */
export function requestClasses(app: PrototypeHolder) {
  class AppRequest extends http.IncomingMessage {}
  class AppResponse<R extends http.IncomingMessage = http.IncomingMessage> extends http.ServerResponse<R> {}
  adopt(app, 'request', AppRequest.prototype);
  adopt(app, 'response', AppResponse.prototype);
  return { IncomingMessage: AppRequest, ServerResponse: AppResponse };
}
