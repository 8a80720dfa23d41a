// Fields pypi-lite adds to Express's request object (a module augmentation of the interface
// that express's Request extends).
declare module 'express-serve-static-core' {
  interface Request {
    /** Short request id, echoed in logs and 500 answers. */
    id: string;
    /** The authenticated user, if any. */
    user?: string;
    /** Route label for metrics. */
    routeName?: string;
  }
}
export {};
