/**
 * How long an adapter waits for its backend (docs/faults.md), shared by every adapter. No SDK here:
 * each adapter hands these bounds to its client (connect and socket timeouts, retries) and wraps its
 * calls in bounded(), an UploadWatch or an idleGuard(), so that a backend that is down, hangs or
 * crawls costs a request a known time and ends as a 503 `backend_unavailable` saying what failed.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { backendUnavailable, type CacheGateError } from '../src/errors.ts';

export const TIMEOUTS = {
  /** Opening a TCP connection to the backend. */
  connectMs: 3_000,
  /**
   * One call without a body to stream (readiness, HEAD, GetBucketLocation, AssumeRole, a user
   * delegation key, signBlob, base credentials), retries included; for a GET, until the answer's
   * headers; for a PUT, after the last byte (plus the bytes still in flight, see minBytesPerSecond).
   */
  callMs: 4_000,
  /** A transfer (proxy GET or PUT body) during which no byte moves: the socket or stream is failed. */
  idleMs: 30_000,
  /** Once an upload body has ended, the bytes still buffered must reach the backend at least this fast. */
  minBytesPerSecond: 1024 * 1024,
  /** Tries of one call (the first included) when the backend answers 5xx or the connection fails. */
  attempts: 3,
} as const;

/** Seconds for messages: 4000 → '4', 4004 → '4', 5250 → '5.3'. */
const seconds = (ms: number): string => String(Math.round(ms / 100) / 10);

export function timedOut(what: string, ms: number): CacheGateError {
  return backendUnavailable(`${what}: no answer within ${seconds(ms)} s`);
}

/**
 * Runs `fn` with an AbortSignal and gives up after `ms`: the signal aborts the backend request and
 * the returned promise rejects with a 503 naming `what`. The bound ends when `fn` settles, so a
 * GET's body may stream on afterwards (its socket or an idleGuard bounds it then).
 */
export async function bounded<T>(what: string, ms: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = timedOut(what, ms);
      reject(err);
      controller.abort(err);
    }, ms);
  });
  const call = Promise.resolve().then(() => fn(controller.signal));
  call.catch(() => undefined); // a failure after the deadline is nobody's business
  try {
    return await Promise.race([call, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Bounds an upload streamed to the backend, which lasts as long as the client takes to send it, so
 * no fixed deadline fits. Instead:
 *  - no byte from the client and none confirmed by the backend for idleMs → abort;
 *  - once the client's body has ended, the backend must confirm within callMs plus the time the
 *    bytes still in flight take at minBytesPerSecond.
 * Pass `signal` to the backend request; `failure` is set when the watch fired.
 */
export class UploadWatch {
  readonly signal: AbortSignal;
  failure: CacheGateError | undefined;
  readonly #what: string;
  readonly #controller = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #ended = false;

  constructor(what: string) {
    this.#what = what;
    this.signal = this.#controller.signal;
    this.#arm(TIMEOUTS.idleMs, `${what}: no progress for ${seconds(TIMEOUTS.idleMs)} s`);
  }

  /** Bytes moved (from the client, or confirmed by the backend): the idle clock starts over. */
  progress(): void {
    if (!this.#ended) this.#arm(TIMEOUTS.idleMs, `${this.#what}: no progress for ${seconds(TIMEOUTS.idleMs)} s`);
  }

  /** The client's body has ended; `pendingBytes` are received but not yet confirmed by the backend. */
  ended(pendingBytes: number): void {
    if (this.#ended) return;
    this.#ended = true;
    const ms = TIMEOUTS.callMs + Math.ceil((Math.max(0, pendingBytes) / TIMEOUTS.minBytesPerSecond) * 1000);
    this.#arm(ms, `${this.#what}: no answer within ${seconds(ms)} s after the last byte`);
  }

  /** Stop watching (the call settled). */
  done(): void {
    clearTimeout(this.#timer);
  }

  #arm(ms: number, message: string): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.failure = backendUnavailable(message);
      this.#controller.abort(this.failure);
    }, ms);
  }
}

/**
 * Passes a download body through, and fails it when the backend sends nothing for `ms` while the
 * reader is waiting for bytes (an empty buffer here); a reader that is slow itself is not counted.
 */
export function idleGuard(what: string, ms: number = TIMEOUTS.idleMs): Transform {
  let timer: NodeJS.Timeout | undefined;
  const guard: Transform = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      arm();
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      clearTimeout(timer);
      cb();
    },
  });
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (guard.readableLength > 0) arm(); // the reader has not taken what it has: its slowness
      else guard.destroy(backendUnavailable(`${what}: the body stalled for ${seconds(ms)} s`));
    }, ms);
  };
  guard.on('close', () => clearTimeout(timer));
  arm();
  return guard;
}
