/**
 * A cap on uploads streaming through the service at once ([cachegate] max_uploads): each holds a
 * socket, a temporary file or a backend connection, and memory for its buffers. One more waits for a
 * slot, first come first served, up to [cachegate] upload_wait seconds, before its body is invited or
 * read; it is refused 503 too_many_uploads with Retry-After when the wait runs out, or at once when
 * WAITING_PER_SLOT × max_uploads uploads already wait (a flood is answered quickly, and what a waiting
 * upload holds is its socket and parsed headers, plus what its client sent unasked: Node reads at most
 * a highWaterMark of body ahead). 503 rather than 429: the service is busy, the client did nothing
 * wrong, and the helper and S3 SDKs retry it after Retry-After.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CacheGateError } from '../errors.ts';
import { DEFAULT_RETRY_AFTER } from './error-response.ts';

/** Uploads that may wait per slot of max_uploads. */
export const WAITING_PER_SLOT = 4;

export interface SlotLimits {
  max: number;
  /** Seconds an upload waits for a slot (0 = refused at once). */
  waitSeconds: number;
}

export const slotLimits = (l: { maxUploads: number; uploadWait: number }): SlotLimits => ({ max: l.maxUploads, waitSeconds: l.uploadWait });

interface Waiter {
  grant: (release: () => void) => void;
}

export class UploadSlots {
  readonly #limits: () => SlotLimits;
  #inFlight = 0;
  readonly #queue: Waiter[] = [];

  constructor(limits: () => SlotLimits) {
    this.#limits = limits;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * A slot: at once when one is free, else after waiting in line. The returned function gives it back
   * (once, however often called). `gone` closing (the client went away) leaves the line.
   */
  take(gone?: Pick<ServerResponse, 'once' | 'off'>): Promise<() => void> {
    const { max, waitSeconds } = this.#limits();
    if (this.#inFlight < max && this.#queue.length === 0) return Promise.resolve(this.#hold());
    if (waitSeconds <= 0 || this.#queue.length >= WAITING_PER_SLOT * max) return Promise.reject(busy(max));
    return new Promise((resolve, reject) => {
      const leave = (err: Error): void => {
        clearTimeout(timer);
        gone?.off('close', onGone);
        const i = this.#queue.indexOf(waiter);
        if (i !== -1) this.#queue.splice(i, 1);
        reject(err);
      };
      const onGone = (): void => leave(new CacheGateError('too_many_uploads', 503, 'the client went away while its upload waited for a slot'));
      const waiter: Waiter = {
        grant: (release) => {
          clearTimeout(timer);
          gone?.off('close', onGone);
          resolve(release);
        },
      };
      const timer = setTimeout(() => leave(busy(max, waitSeconds)), waitSeconds * 1000);
      gone?.once('close', onGone);
      this.#queue.push(waiter);
    });
  }

  #hold(): () => void {
    this.#inFlight++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#inFlight--;
      this.#handOn();
    };
  }

  /** A freed slot goes to the first in line (a reload may have lowered max: then it stays free). */
  #handOn(): void {
    if (this.#queue.length === 0 || this.#inFlight >= this.#limits().max) return;
    (this.#queue.shift() as Waiter).grant(this.#hold());
  }
}

function busy(max: number, waited?: number): CacheGateError {
  const why = waited === undefined ? `${max} uploads are in progress and as many as may wait are waiting` : `${max} uploads were in progress for the ${waited} s this one waited`;
  return new CacheGateError('too_many_uploads', 503, `${why} ([cachegate] max_uploads, upload_wait); retry later`, {
    headers: { 'Retry-After': DEFAULT_RETRY_AFTER },
  });
}

/**
 * The service handles `Expect: 100-continue` itself (server 'checkContinue'), so Node no longer
 * invites every body at once: a route calls this once the request is authorized, and a refused
 * client is answered before it sends a byte of its body.
 */
export function continueIfExpected(req: IncomingMessage, res: ServerResponse | undefined): void {
  if (res && !res.headersSent && req.headers.expect?.toLowerCase() === '100-continue') res.writeContinue();
}
