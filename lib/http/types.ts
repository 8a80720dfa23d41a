// Fields pypi-lite adds to Express's request object.
declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Short request id, echoed in logs and 500 answers. */
      id: string;
      /** The authenticated user, if any. */
      user?: string;
      /** Route label for metrics. */
      routeName?: string;
    }
  }
}
export {};
