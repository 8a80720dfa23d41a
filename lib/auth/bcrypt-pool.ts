// bcrypt comparisons in a worker thread (started on first use, not keeping the process alive),
// so a password check never blocks the server's event loop.
import { Worker } from 'node:worker_threads';

let worker: Worker | null = null;
let nextId = 1;
const pending = new Map<number, (ok: boolean) => void>();

function getWorker(): Worker {
  if (worker) return worker;
  const w = new Worker(new URL('./bcrypt-worker.js', import.meta.url));
  w.unref();
  w.on('message', (m: { id: number; ok: boolean }) => {
    const resolve = pending.get(m.id);
    pending.delete(m.id);
    resolve?.(m.ok);
    if (pending.size === 0) w.unref();
  });
  const fail = () => {
    for (const resolve of pending.values()) resolve(false);
    pending.clear();
    worker = null;
  };
  w.on('error', fail);
  w.on('exit', fail);
  worker = w;
  return w;
}

export function bcryptCompare(password: string, hash: string): Promise<boolean> {
  return new Promise((resolve) => {
    const id = nextId++;
    pending.set(id, resolve);
    const w = getWorker();
    w.ref();
    w.postMessage({ id, password, hash });
  });
}
