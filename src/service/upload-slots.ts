/**
 * A cap on uploads streaming through the service at once ([cachegate] max_uploads): each holds a
 * socket, a temporary file or a backend connection, and memory for its buffers. One more is refused
 * before its body is read: 503 too_many_uploads with Retry-After (the service is busy; the client did
 * nothing wrong, and the helper retries 5xx).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CacheGateError } from '../errors.ts';
import { DEFAULT_RETRY_AFTER } from './error-response.ts';

export class UploadSlots {
  readonly #max: () => number;
  #inFlight = 0;

  constructor(max: () => number) {
    this.#max = max;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Takes a slot or throws 503; the returned function gives it back (once, however often called). */
  take(): () => void {
    const max = this.#max();
    if (this.#inFlight >= max) {
      throw new CacheGateError('too_many_uploads', 503, `${max} uploads are in progress, the most this service takes at once ([cachegate] max_uploads); retry later`, {
        headers: { 'Retry-After': DEFAULT_RETRY_AFTER },
      });
    }
    this.#inFlight++;
    let held = true;
    return () => {
      if (held) this.#inFlight--;
      held = false;
    };
  }
}

/**
 * The service handles `Expect: 100-continue` itself (server 'checkContinue'), so Node no longer
 * invites every body at once: a route calls this once the request is authorized, and a refused
 * client is answered before it sends a byte of its body.
 */
export function continueIfExpected(req: IncomingMessage, res: ServerResponse | undefined): void {
  if (res && !res.headersSent && req.headers.expect?.toLowerCase() === '100-continue') res.writeContinue();
}
