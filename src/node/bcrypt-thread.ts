import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * bcrypt on a thread of its own. A check is slow on purpose (~80–200 ms at cost 10); on the event
 * loop, a stranger sending wrong passwords in a loop would hold every scrape of every project
 * behind it. Here the event loop only posts a message and waits for the answer.
 *
 * One thread, shared by every server in the process and started at the first check: on a 2-core
 * machine that leaves a core for the event loop. How many checks may wait for it is bounded by
 * BasicAuthUsers, not here. The thread is unref'd, so it never keeps the process alive.
 */

/** The thread's whole program: the same bcryptjs the event loop would run, loaded by path. */
const PROGRAM = `
const { parentPort, workerData } = require('node:worker_threads');
const bcrypt = require(workerData.bcrypt);
parentPort.on('message', ({ id, password, hash }) => {
  let ok = false;
  try { ok = bcrypt.compareSync(password, hash); } catch {}
  parentPort.postMessage({ id, ok });
});
`;

interface Thread {
  readonly worker: Worker;
  /** Checks posted to this thread, by id, waiting for its answer. */
  readonly waiting: Map<number, (ok: boolean) => void>;
}

let current: Thread | undefined;
let nextId = 0;

function start(): Thread {
  const worker = new Worker(PROGRAM, { eval: true, workerData: { bcrypt: createRequire(import.meta.url).resolve('bcryptjs') } });
  const thread: Thread = { worker, waiting: new Map() };
  worker.unref();
  worker.on('message', ({ id, ok }: { id: number; ok: boolean }) => {
    thread.waiting.get(id)?.(ok === true);
    thread.waiting.delete(id);
  });
  // A thread that dies fails what it held (a failed check is a refusal); the next check starts another.
  const fail = () => {
    if (current === thread) current = undefined;
    for (const settle of thread.waiting.values()) settle(false);
    thread.waiting.clear();
  };
  worker.on('error', fail);
  worker.on('exit', fail);
  return thread;
}

/** Whether `password` matches the bcrypt `hash`, computed off the event loop. */
export function compareOffThread(password: string, hash: string): Promise<boolean> {
  const thread = (current ??= start());
  const id = nextId++;
  const answer = new Promise<boolean>((resolve) => thread.waiting.set(id, resolve));
  thread.worker.postMessage({ id, password, hash });
  return answer;
}
