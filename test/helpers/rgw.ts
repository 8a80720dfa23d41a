// A real S3 engine for the object-storage tests and `npm run bench -- --s3`: a throwaway
// single-node Ceph cluster (one monitor, one OSD whose objects live in its RAM: memstore) and
// the RADOS Gateway on 127.0.0.1, built from nothing in a temporary directory in ~1.5 s.
// `npm run deps:system` installs the Debian packages (radosgw ceph-mon ceph-osd ceph-common).
//
//   const rgw = await startRgw();           // rgw.env: AWS_ENDPOINT_URL, keys, region
//   await rgw.createBucket('b');
//   await rgw.stopGateway(); await rgw.startGateway();   // the store down and back, data kept
//   await rgw.stop();                                    // kill everything, remove the directory
//
// Also a command for people: `node dist/test/helpers/rgw.js [PORT]` starts one, prints the
// `export AWS_...` lines, and stops it on Ctrl-C.
//
// Settings that matter (measured, see the README's object-storage notes): messenger v2 only,
// bound to 127.0.0.1 in a port range of our own; pool size 1; fast paxos proposals (pool
// creation); beast with tcp_nodelay (else ~40 ms per kept-alive GET); radosgw started only
// after the OSD is up (else a ~5 s stall on its first pool operations).

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promises as fsp, existsSync, openSync, closeSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

const run = promisify(execFile);

const BINARIES = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'ceph-authtool', 'monmaptool'];
export const RGW_ACCESS_KEY = 'PYPILITETESTKEY00001';
export const RGW_SECRET_KEY = 'pypilitetestsecret0000000000000000000001';
export const RGW_REGION = 'us-east-1';

/** Why the engine cannot run here (a missing program), or null when it can. */
export function rgwUnavailable(): string | null {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).concat(['/usr/bin', '/usr/sbin', '/bin', '/sbin']);
  const missing = BINARIES.filter((b) => !dirs.some((d) => d && existsSync(path.join(d, b))));
  return missing.length ? `Ceph RADOS Gateway not installed (missing ${missing.join(', ')}; run \`npm run deps:system\`)` : null;
}

export interface Rgw {
  endpoint: string;
  /** The variables a pypi-lite process (or the AWS CLI) needs to reach it. */
  env: Record<string, string>;
  dir: string;
  /** An SDK client set up as this engine needs (path style, checksums only when required). */
  client(): S3Client;
  createBucket(name: string): Promise<void>;
  /** Stop the gateway only (the store is down; objects stay in the OSD). */
  stopGateway(): Promise<void>;
  /** Start the gateway again; resolves when S3 answers. */
  startGateway(): Promise<void>;
  /** Kill every daemon and remove the directory. */
  stop(): Promise<void>;
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A base port with base..base+19 free (the cluster's messengers use the range above the S3 port). */
async function freeRange(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 2000) * 20;
    let ok = true;
    for (let p = base; p < base + 20 && ok; p++) ok = await portFree(p);
    if (ok) return base;
  }
  throw new Error('no free range of 20 ports for the S3 engine');
}

function config(dir: string, fsid: string, port: number): string {
  return `[global]
fsid = ${fsid}
mon_host = [v2:127.0.0.1:${port + 1}]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv4 = true
ms_bind_ipv6 = false
ms_bind_msgr1 = false
ms_bind_msgr2 = true
ms_bind_port_min = ${port + 2}
ms_bind_port_max = ${port + 19}
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
keyring = ${dir}/keyring
log_file = ${dir}/log/$name.log
mon_cluster_log_file = ${dir}/log/cluster.log
admin_socket = ${dir}/run/$name.asok
pid_file = ${dir}/run/$name.pid
run_dir = ${dir}/run
crash_dir = ${dir}/crash
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
mon_warn_on_insecure_global_id_reclaim_allowed = false
mon_max_pg_per_osd = 1000
mon_data_avail_warn = 2
mon_data_avail_crit = 1
mgr_initial_modules =

[mon]
mon_data = ${dir}/mon.$id
paxos_propose_interval = 0.05
paxos_min_wait = 0.01

[osd]
osd_data = ${dir}/osd.$id
osd_journal = ${dir}/osd.$id/journal
osd_objectstore = memstore
memstore_device_bytes = ${process.env.RGW_MEMSTORE_BYTES ?? String(4 * 1024 ** 3)}
osd_op_num_shards = 2
osd_op_num_threads_per_shard = 1

[client.rgw]
rgw_frontends = beast endpoint=127.0.0.1:${port} tcp_nodelay=1
rgw_data = ${dir}/rgw
rgw_thread_pool_size = 32
rgw_crypt_require_ssl = false
rgw_gc_obj_min_wait = 60
rgw_gc_processor_period = 60
`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function tail(file: string, lines = 15): Promise<string> {
  try {
    return (await fsp.readFile(file, 'utf8')).split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

async function answers(endpoint: string): Promise<boolean> {
  try {
    const r = await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(2000) });
    await r.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

/**
 * For a suite's before(): the engine, or the suite skipped with the reason printed (the engine
 * is not installed here; `npm run deps:system` installs it).
 */
export async function startRgwOrSkip(ctx: Mocha.Context): Promise<Rgw> {
  const why = rgwUnavailable();
  if (why) {
    console.log(`      skipped: ${why}`);
    ctx.skip();
  }
  return startRgw();
}

/**
 * Start an engine; one more try on fresh ports if the first fails (a port of the range taken
 * between the check and the bind, a daemon that died on a busy machine), saying why.
 */
export async function startRgw(opts: { port?: number; timeoutMs?: number } = {}): Promise<Rgw> {
  try {
    return await startRgwOnce(opts);
  } catch (err) {
    if (opts.port !== undefined) throw err;
    console.error(`      S3 engine did not start, trying again on other ports: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    return startRgwOnce(opts);
  }
}

async function startRgwOnce(opts: { port?: number; timeoutMs?: number }): Promise<Rgw> {
  const why = rgwUnavailable();
  if (why) throw new Error(why);
  const port = opts.port ?? (await freeRange());
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pypi-lite-rgw-'));
  const conf = path.join(dir, 'ceph.conf');
  const endpoint = `http://127.0.0.1:${port}`;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const daemons = new Map<string, ChildProcess>();
  const cephEnv = { ...process.env, CEPH_CONF: conf };

  for (const d of ['mon.a', 'osd.0', 'rgw', 'log', 'run', 'crash']) await fsp.mkdir(path.join(dir, d));
  const fsid = randomUUID();
  await fsp.writeFile(conf, config(dir, fsid, port));
  const kr = path.join(dir, 'keyring');
  const authtool = (args: string[]) => run('ceph-authtool', args, { env: cephEnv });
  await authtool(['--create-keyring', kr, '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
  await authtool([kr, '--gen-key', '-n', 'client.admin', '--cap', 'mon', 'allow *', '--cap', 'osd', 'allow *', '--cap', 'mgr', 'allow *']);
  await authtool([kr, '--gen-key', '-n', 'osd.0', '--cap', 'mon', 'allow profile osd', '--cap', 'mgr', 'allow profile osd', '--cap', 'osd', 'allow *']);
  await authtool([kr, '--gen-key', '-n', 'client.rgw', '--cap', 'mon', 'allow rw', '--cap', 'mgr', 'allow rw', '--cap', 'osd', 'allow rwx']);

  const start = (name: string, cmd: string, args: string[]): ChildProcess => {
    const out = openSync(path.join(dir, 'log', `${name}.out`), 'a');
    const child = spawn(cmd, [...args, '-c', conf, '-f'], { env: cephEnv, stdio: ['ignore', out, out], detached: true });
    closeSync(out);
    child.unref();
    daemons.set(name, child);
    return child;
  };
  const kill = async (name: string): Promise<void> => {
    const child = daemons.get(name);
    daemons.delete(name);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      process.kill(-(child.pid ?? 0), 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
    await Promise.race([gone, sleep(10_000)]);
  };
  const stopAll = async (): Promise<void> => {
    await Promise.all([...daemons.keys()].map(kill));
  };
  const fail = async (what: string): Promise<never> => {
    const logs = await Promise.all(['mon.a.out', 'osd.0.out', 'rgw.out', 'osd.0.log', 'client.rgw.log'].map(async (f) => `--- ${f}\n${await tail(path.join(dir, 'log', f))}`));
    await stopAll();
    await fsp.rm(dir, { recursive: true, force: true });
    throw new Error(`S3 engine: ${what}\n${logs.join('\n')}`);
  };
  // Each wait has its own deadline: startGateway() may be called long after the start.
  const waitFor = async (what: string, ok: () => Promise<boolean>): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!(await ok())) {
      for (const [name, child] of daemons) if (child.exitCode !== null || child.signalCode !== null) await fail(`${name} exited while waiting for ${what}`);
      if (Date.now() > deadline) await fail(`timed out waiting for ${what}`);
      await sleep(50);
    }
  };

  try {
    await run('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${port + 1}]`, path.join(dir, 'monmap')], { env: cephEnv });
    await run('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', path.join(dir, 'monmap'), '--keyring', kr], { env: cephEnv });
    start('mon.a', 'ceph-mon', ['-i', 'a']);
    const osdUuid = randomUUID();
    await run('ceph-osd', ['-c', conf, '-i', '0', '--mkfs', '--osd-uuid', osdUuid, '--no-mon-config'], { env: cephEnv });
    await run('ceph', ['-c', conf, '--connect-timeout', '30', 'osd', 'new', osdUuid, '0'], { env: cephEnv });
    start('osd.0', 'ceph-osd', ['-i', '0']);
  } catch (e) {
    await fail(`setting up the cluster failed: ${e instanceof Error ? e.message : String(e)}`);
  }
  const osdLog = path.join(dir, 'log', 'osd.0.log');
  await waitFor('osd.0 up', async () => (await tail(osdLog, 10_000)).includes('state: booting -> active'));

  const startGateway = async (): Promise<void> => {
    start('rgw', 'radosgw', ['-n', 'client.rgw']);
    await waitFor('the S3 endpoint', () => answers(endpoint));
  };
  await startGateway();
  try {
    await run('radosgw-admin', ['-c', conf, '-n', 'client.admin', 'user', 'create', '--uid=pypi-lite-test', '--display-name=pypi-lite test', `--access-key=${RGW_ACCESS_KEY}`, `--secret=${RGW_SECRET_KEY}`], { env: cephEnv });
  } catch (e) {
    await fail(`creating the S3 user failed: ${e instanceof Error ? e.message : String(e)}`);
  }

  const env = { AWS_ENDPOINT_URL: endpoint, AWS_ACCESS_KEY_ID: RGW_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: RGW_SECRET_KEY, AWS_REGION: RGW_REGION };
  const client = (): S3Client =>
    new S3Client({
      endpoint,
      region: RGW_REGION,
      credentials: { accessKeyId: RGW_ACCESS_KEY, secretAccessKey: RGW_SECRET_KEY },
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  return {
    endpoint,
    env,
    dir,
    client,
    async createBucket(name) {
      const c = client();
      try {
        await c.send(new CreateBucketCommand({ Bucket: name }));
      } finally {
        c.destroy();
      }
    },
    stopGateway: () => kill('rgw'),
    startGateway,
    async stop() {
      await stopAll();
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}

// `node dist/test/helpers/rgw.js [PORT]`: one engine for manual checks, stopped on Ctrl-C.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const port = process.argv[2] ? Number(process.argv[2]) : undefined;
  const t0 = Date.now();
  const rgw = await startRgw({ port });
  for (const [k, v] of Object.entries(rgw.env)) process.stdout.write(`export ${k}=${v}\n`);
  process.stderr.write(`S3 engine ready in ${Date.now() - t0} ms (${rgw.dir}); Ctrl-C stops it\n`);
  const stop = () => void rgw.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  setInterval(() => undefined, 1 << 30);
}
