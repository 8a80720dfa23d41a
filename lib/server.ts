// Wires the collaborators together, listens, and shuts down gracefully. `startServer` is what
// the CLI and the integration tests call; `createApp` (lib/app.ts) is the pure factory.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { AppDeps } from './app.js';
import type { Config } from './core/config.js';
import { Indexer } from './catalog/indexer.js';
import { YankStore } from './catalog/yank.js';
import { PasswordFile } from './auth/password-file.js';
import type { StreamHook } from './upload/storage.js';
import { FsStore } from './store/fs-store.js';
import type { PackageStore } from './store/types.js';
import type { S3Store } from './store/s3-store.js';
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Route } from './routes.js';
import { prepareUpstreamCache, Upstream } from './upstream/upstream.js';

export interface RunningServer {
  url: string;
  port: number;
  server: http.Server;
  indexer: Indexer;
  /** The collaborators the app was built with. */
  deps: AppDeps;
  /** The route table the app answers (lib/routes.ts). */
  routes: readonly Route[];
  /** Resolves when the initial scan has listed every file. */
  loaded: Promise<void>;
  close(): Promise<void>;
}

/**
 * The S3Store of every S3 root, checked (reachable, the bucket there, access allowed): a store
 * that cannot be used throws StoreStartError (one line for the user). One SDK client for reads
 * and one for writes (streamed bodies cannot be retried by the SDK).
 */
async function openS3Stores(config: Config, log: Logger): Promise<{ stores: Map<string, S3Store>; close(): void }> {
  const stores = new Map<string, S3Store>();
  const roots = config.roots.filter((r) => r.startsWith('s3://'));
  if (!roots.length) return { stores, close: () => {} };
  // Loaded here, not at start: the AWS SDK is most of a server's modules, and local roots never use it.
  const [{ createS3Client, parseS3Url }, { S3Store }] = await Promise.all([import('./store/s3-client.js'), import('./store/s3-store.js')]);
  const client = await createS3Client({ pathStyle: config.s3PathStyle, log });
  const writeClient = await createS3Client({ pathStyle: config.s3PathStyle, maxAttempts: 1, socketTimeoutMs: 120_000, log });
  const close = (): void => {
    for (const s of stores.values()) s.close();
    client.destroy();
    writeClient.destroy();
  };
  try {
    for (const root of roots) {
      const location = parseS3Url(root);
      const tag = createHash('sha256').update(location.id).digest('hex').slice(0, 12);
      const stagingDir = path.join(config.storeCacheDir, 'staging', `${location.bucket}-${tag}`);
      const store = new S3Store({ location, client, writeClient, stagingDir, listIntervalMs: config.s3ListInterval * 1000, log });
      await store.check();
      stores.set(root, store);
    }
  } catch (err) {
    close();
    throw err;
  }
  return { stores, close };
}

/** What the process around the server gives it (the CLI: its heap tuning). */
export interface ServerHooks {
  /** An upload's file passed LARGE_STREAM bytes (lib/upload/storage.ts). */
  onLargeUpload?: StreamHook;
}

export async function startServer(config: Config, log: Logger, hooks: ServerHooks = {}): Promise<RunningServer> {
  if (config.upstream && config.upstreamCache) await prepareUpstreamCache(config.upstreamCache);
  let passwords: PasswordFile | null = null;
  if (config.passwords) {
    passwords = new PasswordFile(config.passwords, { log: log.child({ component: 'passwords' }) });
    await passwords.load();
    passwords.watch();
  }

  // One store per root, in order; the first takes uploads. A root is a directory or an S3 URL.
  const storeLog = log.child({ component: 'store' });
  const s3 = await openS3Stores(config, storeLog);
  const stores: PackageStore[] = config.roots.map((root) => s3.stores.get(root) ?? new FsStore(root, storeLog));
  const indexer = new Indexer(
    {
      stores,
      cacheDir: config.cacheDir,
      remoteCacheDir: config.storeCacheDir,
      workers: config.workers,
      watch: config.poll === null,
      rescanIntervalMs: (config.poll ?? config.rescanInterval) * 1000,
    },
    log.child({ component: 'indexer' }),
  );
  if (config.poll !== null) log.info({ every: config.poll }, 'polling the package directories (no file-system watcher)');
  // The yank list of each root: yanked.txt beside a directory; an S3 root keeps it in the
  // bucket (shared by the replicas). Keyed by the store's id (what DistFile.root holds).
  const yankRoots = stores.map((s, i) => (s3.stores.has(config.roots[i]) ? s.id : config.roots[i]));
  const yankLists = new Map(stores.flatMap((s) => (s.yankList ? [[s.id, s.yankList] as const] : [])));
  const yanks = new YankStore(yankRoots, (root) => indexer.refreshYanks(root), log.child({ component: 'yank' }), yankLists);
  await yanks.load();
  yanks.watch();
  indexer.yanks = yanks;
  // The catalog starts loading before the HTTP side exists: the stores' listings (a worker per
  // large directory) and the digest caches' reads run while the HTTP side's modules load, and
  // the indexing starts once the server listens. It answers while the catalog loads: /health
  // says 503 until then.
  let httpSettled!: () => void;
  const httpReady = new Promise<void>((resolve) => (httpSettled = resolve));
  const loaded = indexer.start({ indexAfter: httpReady });
  loaded.catch(() => {}); // (the caller's: RunningServer.loaded)
  const stopIndex = async (): Promise<void> => {
    yanks.close();
    passwords?.close();
    await indexer.close();
    // What the other replicas should learn from us (the feed) is written before we go.
    await Promise.all([...s3.stores.values()].map((st) => st.flush()));
    s3.close();
  };
  try {
    return await serveHttp(config, log, hooks, { stores, s3, indexer, yanks, yankRoots, yankLists, passwords, loaded, stopIndex });
  } catch (err) {
    await stopIndex().catch(() => {});
    throw err;
  } finally {
    httpSettled();
  }
}

/** What startServer made of the roots (the index side), for the HTTP side. */
interface IndexSide {
  stores: PackageStore[];
  s3: { stores: Map<string, S3Store>; close(): void };
  indexer: Indexer;
  yanks: YankStore;
  yankRoots: string[];
  yankLists: Map<string, NonNullable<PackageStore['yankList']>>;
  passwords: PasswordFile | null;
  loaded: Promise<void>;
  /** Stop what the index side runs (watchers, workers, the caches' last writes). */
  stopIndex: () => Promise<void>;
}

/** Build the app over the index and listen. */
async function serveHttp(config: Config, log: Logger, hooks: ServerHooks, side: IndexSide): Promise<RunningServer> {
  const { stores, s3, indexer, yanks, yankRoots, yankLists, passwords, loaded, stopIndex } = side;
  // Loaded now, while the catalog loads (Express and the rest: ~100 ms of the main thread at a
  // start, the other core listing the package directories meanwhile).
  const [{ createApp, routesOf }, { AuthGuard }, { MetadataReader }, { openIndexed }, { Metrics }, { PageCache }, { FileUploader }, { fastPath }, { requestClasses }, { simplePagesOpen }] = await Promise.all([
    import('./app.js'),
    import('./auth/guard.js'),
    import('./metadata/reader.js'),
    import('./catalog/still-indexed.js'),
    import('./ops/metrics.js'),
    import('./simple/pages.js'),
    import('./upload/uploader.js'),
    import('./simple/fast-path.js'),
    import('./http/request-classes.js'),
    import('./routes.js'),
  ]);
  const catalog = indexer.catalog;
  const metadata = new MetadataReader(openIndexed);
  const storeHealth = s3.stores.size ? () => [...s3.stores.values()].map((s) => s.health()) : null;
  const metrics = config.metrics
    ? new Metrics({ projects: () => catalog.size.projects, files: () => catalog.size.files, backlog: () => indexer.backlog, hashed: () => indexer.filesHashed, ...(storeHealth ? { stores: storeHealth } : {}) })
    : null;
  let upstream: Upstream | null = null;
  try {
    if (config.upstream && config.upstreamCache) upstream = await Upstream.open({ ...config, upstream: config.upstream, upstreamCache: config.upstreamCache }, log.child({ component: 'upstream' }), metrics ? await metrics.registry() : null);
  } catch (err) {
    metrics?.close();
    throw err;
  }
  const pages = new PageCache(catalog, indexer, upstream?.pages ?? null, config.upstreamMerge);
  const auth = new AuthGuard({ authenticate: config.authenticate, authenticator: passwords, anonymousUploads: config.anonymousUploads });
  // Each component logs through its own child logger (the convention: lib/log.ts).
  const httpLog = log.child({ component: 'http' });
  const uploader = new FileUploader(config, { store: stores[0], indexer, metadata, log: log.child({ component: 'upload' }), metrics, onLargeUpload: hooks.onLargeUpload });
  const reloadYanks = async () => {
    await yanks.load();
    for (const root of yankRoots) indexer.refreshYanks(root);
  };
  const deps: AppDeps = { catalog, indexer, pages, metadata, auth, uploader, log: httpLog, metrics, reloadYanks, upstream, storeHealth, yankLists, yankRoots };
  const app = createApp(config, deps);
  // The one exception to the route table, switched by the table's access for /simple/.
  const fast = fastPath(config, { pages, log: httpLog, metrics, enabled: simplePagesOpen(routesOf(app), auth) });

  const server = http.createServer(
    {
      // Requests and responses made with Express's prototypes: see request-classes.ts.
      ...requestClasses(app),
      maxHeaderSize: 16 * 1024,
      requestTimeout: 0, // uploads of large files may take long; slowloris is handled by headersTimeout
      headersTimeout: config.headersTimeoutMs,
      // headersTimeout is enforced when this periodic check runs; keep it tight.
      connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs),
      keepAliveTimeout: 5_000,
    },
    (req, res) => {
      if (!fast(req, res)) app(req, res);
    },
  );
  // A client that stops sending (mid-body) or reading for this long is cut off.
  server.timeout = 120_000;
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) return socket.destroy();
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });

  const listening = new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  loaded.then(() => uploader.sweepLeftovers(), () => {}).catch(() => {});
  /** The HTTP side's own parts (the index side's are stopIndex's), at close or after a failed listen. */
  const stopHttp = async (): Promise<void> => {
    await uploader.close();
    await upstream?.close();
    metrics?.close();
  };
  try {
    await listening;
  } catch (err) {
    await stopHttp();
    throw err;
  }

  const addr = server.address() as AddressInfo;
  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${shownHost}:${addr.port}`;

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      server.close();
      // Idle keep-alive connections go now; busy ones may finish within the bound.
      server.closeIdleConnections();
      const deadline = Date.now() + config.shutdownTimeoutMs;
      while (sockets.size > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        server.closeIdleConnections();
      }
      for (const s of sockets) s.destroy();
      await stopHttp();
      await stopIndex();
    })();
    return closing;
  };
  return { url, port: addr.port, server, indexer, deps, routes: routesOf(app), loaded, close };
}
