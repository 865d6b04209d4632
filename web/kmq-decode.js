// Decoding a kmq file for display: on the main thread for small images, else stripe by stripe
// in a small pool of Web Workers (kmq-worker.js), in parallel. Plain ES module; build.mjs can
// also inline it into a classic script (see web/index.html), so it must not use import.meta.
import { plan, decodeStripe, toRGBA, KmqError, FormatError, TruncatedError, ChecksumError, PixelLimitError } from './kmq.js';

/** Coding names by number (FORMAT.md section 2). */
export const CODING_NAMES = ['raw', 'ctx1', 'mix'];

/**
 * Images of at most this many pixels decode on the main thread: a worker round trip (and, for
 * the first image, starting the pool) costs more than decoding 256K pixels.
 */
export const WORKER_MIN_PIXELS = 262144;

let makeWorker = null;
let pool = null;

/**
 * Sets how the pool creates a worker: a function returning a new Worker that runs
 * serveWorker() (kmq-worker.js as a module worker, or a Blob of the inlined source), or null
 * to decode everything on the main thread. Workers already started are kept.
 */
export function setWorkerFactory(factory) {
  makeWorker = factory;
  if (pool) pool.factory = factory;
}

/** The pool size: one worker per core, at most 8 (more only costs memory). */
export function poolSize() {
  const n = (typeof navigator !== 'undefined' && navigator.hardwareConcurrency) || 2;
  return Math.max(1, Math.min(8, n));
}

/** Starts the pool's workers now, so that the first large image does not wait for them. */
export function warmUp() {
  getPool()?.fill(poolSize());
}

function getPool() {
  if (!makeWorker) return null;
  if (!pool) pool = new Pool(makeWorker);
  return pool.broken ? null : pool;
}

/** A worker could not run at all (its script failed to load): decode on the main thread instead. */
class WorkerUnavailable extends Error {}

// One message at a time per worker; stripes are queued and handed to whichever worker is free.
class Pool {
  constructor(factory) {
    this.factory = factory;
    this.workers = [];
    this.idle = [];
    this.queue = [];
    this.jobs = new Map();
    this.nextId = 1;
    this.broken = false;
  }

  fill(n) {
    while (this.workers.length < n && !this.broken) {
      let w;
      try {
        w = this.factory();
      } catch (e) {
        this.fail(e);
        return;
      }
      w.onmessage = (e) => this.done(w, e.data);
      // An error event on the worker itself (not a decoding error, those come as messages)
      // means its script did not load or crashed: stop using workers for this page.
      w.onerror = (e) => {
        e.preventDefault?.();
        this.fail(new Error(e.message || 'worker failed to start'));
      };
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  fail(error) {
    this.broken = true;
    for (const w of this.workers) w.terminate();
    const pending = [...this.jobs.values(), ...this.queue];
    this.workers = []; this.idle = []; this.queue = []; this.jobs.clear();
    for (const job of pending) job.reject(new WorkerUnavailable(String(error && error.message)));
  }

  /** Runs msg on the first free worker; resolves with its reply. An abort drops a queued msg. */
  run(msg, signal) {
    return new Promise((resolve, reject) => {
      const job = { msg, resolve, reject };
      this.queue.push(job);
      signal?.addEventListener('abort', () => {
        const i = this.queue.indexOf(job);
        if (i >= 0) { this.queue.splice(i, 1); reject(signal.reason); }
      }, { once: true });
      this.pump();
    });
  }

  pump() {
    while (this.idle.length && this.queue.length) {
      const job = this.queue.shift();
      const w = this.idle.pop();
      const id = this.nextId++;
      this.jobs.set(id, job);
      w.postMessage({ ...job.msg, id });
    }
  }

  done(w, reply) {
    const job = this.jobs.get(reply.id);
    this.jobs.delete(reply.id);
    this.idle.push(w);
    this.pump();
    if (job) job.resolve(reply);
  }

  /** Tells every worker to drop its copy of a file (its bytes and model). */
  release(key) {
    for (const w of this.workers) w.postMessage({ op: 'release', key });
  }
}

let nextKey = 1;

/**
 * Decodes a kmq file.
 *
 * @param {ArrayBuffer|Uint8Array} bytes the whole file
 * @param {object} [options]
 * @param {number|null} [options.maxPixels] pixel limit, as kmq.js's readHeader
 * @param {boolean} [options.workers=true] false decodes on the main thread whatever the size
 * @param {AbortSignal} [options.signal] abandons the decoding (queued stripes are dropped)
 * @param {(p: object) => void} [options.onPlan] called once the file is validated (D1 to D7),
 *   with kmq.js's plan, before any stripe is decoded
 * @param {(stripe: object, rgba: Uint8ClampedArray) => void} [options.onStripe] called as each
 *   stripe is decoded, in any order, with its RGBA rows (y0 to y1), e.g. to draw it at once
 * @returns {Promise<{plan: object, labels: Uint8Array, bytes: number, decodeMs: number,
 *   workers: number}>} the plan and all labels (width * height), the file's size, the time spent
 *   and how many workers decoded stripes (0: the main thread decoded it all). Rejects with kmq.js's errors (FormatError, ...); when several
 *   stripes are bad it reports the first one in stripe order, as kmq.js's decode does.
 */
export async function decodeKmq(bytes, options = {}) {
  const t0 = performance.now();
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const p = plan(b, { maxPixels: options.maxPixels });
  options.onPlan?.(p);
  const n = p.width * p.height;
  const labels = new Uint8Array(n);
  const workers = options.workers !== false && n > WORKER_MIN_PIXELS ? getPool() : null;
  let used = 0;
  if (workers) {
    try {
      used = await decodeInPool(workers, b, p, labels, options);
    } catch (e) {
      if (!(e instanceof WorkerUnavailable)) throw e;
      decodeHere(b, p, labels, options);
    }
  } else {
    decodeHere(b, p, labels, options);
  }
  return { plan: p, labels, bytes: b.length, decodeMs: performance.now() - t0, workers: used };
}

function decodeHere(b, p, labels, options) {
  for (const st of p.stripes) {
    options.signal?.throwIfAborted();
    const part = labels.subarray(st.y0 * p.width, st.y1 * p.width);
    decodeStripe(b, p, st, part);
    options.onStripe?.(st, toRGBA(part, p.palette, p.channels));
  }
}

async function decodeInPool(workers, b, p, labels, options) {
  const used = Math.min(poolSize(), p.stripes.length);
  workers.fill(used);
  const key = nextKey++;
  // The file's bytes are copied to each message (structured clone, a few ms for a big file):
  // every worker needs them, and a SharedArrayBuffer needs cross-origin isolation, which a page
  // opened from file:// cannot have. A worker keeps the plan of its latest key, so the stripes it
  // decodes of one file share one model.
  const runs = p.stripes.map((st) => workers.run({ op: 'stripe', key, bytes: b, plan: p, s: st.index }, options.signal)
    .then((reply) => {
      if (!reply.ok) throw rebuildError(reply.error);
      options.signal?.throwIfAborted();
      labels.set(reply.labels, st.y0 * p.width);
      options.onStripe?.(st, reply.rgba);
    }));
  const settled = await Promise.allSettled(runs);
  workers.release(key);
  options.signal?.throwIfAborted();
  const bad = settled.find((r) => r.status === 'rejected');
  if (bad) throw bad.reason;
  return used;
}

/**
 * Handles one message in a worker: {op: 'stripe', id, key, bytes, plan, s} decodes stripe s and
 * replies {id, ok: true, labels, rgba} (both transferred) or {id, ok: false, error}.
 * {op: 'release', key} drops the cached file. Used by kmq-worker.js and the inlined viewer.
 */
export function serveWorker(scope) {
  let cached = null; // {key, bytes, plan}: one plan object per file, so its model is reused
  scope.onmessage = (e) => {
    const m = e.data;
    if (m.op === 'release') {
      if (cached && cached.key === m.key) cached = null;
      return;
    }
    if (!cached || cached.key !== m.key) cached = { key: m.key, bytes: m.bytes, plan: m.plan };
    const p = cached.plan;
    try {
      const t0 = performance.now();
      const st = p.stripes[m.s];
      const labels = decodeStripe(cached.bytes, p, st, new Uint8Array(p.width * (st.y1 - st.y0)));
      const t1 = performance.now();
      const rgba = toRGBA(labels, p.palette, p.channels);
      const ms = [t1 - t0, performance.now() - t1]; // decoding, colouring: for profiling
      scope.postMessage({ id: m.id, ok: true, labels, rgba, ms }, [labels.buffer, rgba.buffer]);
    } catch (err) {
      scope.postMessage({ id: m.id, ok: false, error: { name: err.name, message: err.message, rule: err.rule } });
    }
  };
}

const ERRORS = { KmqError, FormatError, TruncatedError, ChecksumError, PixelLimitError };

/** A worker's error as the same kmq.js class (an Error's class does not survive postMessage). */
function rebuildError({ name, message, rule }) {
  const Cls = ERRORS[name];
  if (Cls) return new Cls(message, rule);
  const err = new Error(message);
  err.name = name;
  return err;
}
