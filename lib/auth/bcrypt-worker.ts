// Worker thread for bcrypt comparisons: bcryptjs is pure JavaScript, and even its "async"
// compare runs in ~100 ms slices on the calling thread. Here it runs off the event loop.
import bcrypt from 'bcryptjs';
import { parentPort } from 'node:worker_threads';

/** Whether `password` matches `hash`; a malformed hash matches nothing. */
function matches(password: string, hash: string): boolean {
  try {
    return bcrypt.compareSync(password, hash);
  } catch {
    return false;
  }
}

parentPort?.on('message', (msg: { id: number; password: string; hash: string }) => {
  parentPort?.postMessage({ id: msg.id, ok: matches(msg.password, msg.hash) });
});
