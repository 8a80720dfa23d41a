// Worker thread for bcrypt comparisons: bcryptjs is pure JavaScript, and even its "async"
// compare runs in ~100 ms slices on the calling thread. Here it runs off the event loop.
import bcrypt from 'bcryptjs';
import { parentPort } from 'node:worker_threads';

parentPort?.on('message', (msg: { id: number; password: string; hash: string }) => {
  let ok = false;
  try {
    ok = bcrypt.compareSync(msg.password, msg.hash);
  } catch {
    ok = false;
  }
  parentPort?.postMessage({ id: msg.id, ok });
});
