/**
 * Buffered, backpressure-aware writes to any Writable (file, HTTP body, compressor), with the
 * running byte offset the zip writer needs for its central directory.
 */
import type { Writable } from 'node:stream';

const BATCH = 1 << 20;
const MAX_BATCHES = 4;
const EMPTY = Buffer.alloc(0);

export class Sink {
  readonly out: Writable;
  /** Bytes accepted so far (including not yet flushed ones). */
  offset = 0;
  /**
   * Small writes are copied into one batch buffer; a full batch is handed to the Writable and a
   * new one allocated (the Writable may still hold the old one). Few, large allocations keep the
   * resident set small when archiving many small files.
   */
  private batch: Buffer = Buffer.allocUnsafe(BATCH);
  private used = 0;
  private readonly free: Buffer[] = [];
  private allocated = 1;
  private waiter: (() => void) | null = null;
  private error: Error | null = null;
  private readonly onError: (err: Error) => void;

  constructor(out: Writable) {
    this.out = out;
    this.onError = (err: Error) => {
      this.error ??= err;
    };
    out.on('error', this.onError);
  }

  /**
   * Copies the bytes into the batch (the caller may reuse `buf` as soon as this returns) and
   * flushes full batches. Await the result when it is a promise (backpressure).
   */
  write(buf: Buffer): Promise<void> | undefined {
    let off = 0;
    while (off < buf.length) {
      if (this.used === this.batch.length) {
        if (this.used === 0) throw new Error('Sink.write while a flush is pending (missing await)');
        const f = this.flush();
        if (f) {
          const rest = buf.subarray(off);
          return f.then(() => this.write(rest));
        }
        continue;
      }
      const n = Math.min(this.batch.length - this.used, buf.length - off);
      buf.copy(this.batch, this.used, off, off + n);
      this.used += n;
      this.offset += n;
      off += n;
    }
    return undefined;
  }

  /**
   * Makes sure `n` (≤ 1 MiB) contiguous bytes are free in the batch; then region(n) returns them
   * for the caller to fill synchronously.
   */
  reserve(n: number): Promise<void> | undefined {
    if (n > BATCH) throw new Error('Sink.reserve: region too large');
    if (this.used + n <= this.batch.length) return undefined;
    return this.flush();
  }

  region(n: number): Buffer {
    if (this.used + n > this.batch.length) throw new Error('Sink.region without reserve');
    const r = this.batch.subarray(this.used, this.used + n);
    this.used += n;
    this.offset += n;
    return r;
  }

  /** Gives back the unused tail of the last region (when a file turned out shorter). */
  unreserve(n: number): void {
    this.used -= n;
    this.offset -= n;
  }

  static readonly MAX_REGION = BATCH;

  /** Bytes left in the current batch (what region() can give without a flush). */
  get room(): number {
    return this.batch.length - this.used;
  }

  flush(): Promise<void> | undefined {
    if (this.used === 0) return undefined;
    const full = this.batch;
    const buf = full.subarray(0, this.used);
    this.used = 0;
    // Batches are reused once the Writable is done with them (its write callback): at most
    // MAX_BATCHES buffers of 1 MiB serve the whole archive.
    const sent = this.send(buf, () => {
      this.free.push(full);
      const w = this.waiter;
      this.waiter = null;
      w?.();
    });
    const next = this.free.pop() ?? (this.allocated < MAX_BATCHES ? (this.allocated++, Buffer.allocUnsafe(BATCH)) : null);
    if (next) {
      this.batch = next;
      return sent;
    }
    this.batch = EMPTY;
    const wait = new Promise<void>((resolve) => {
      this.waiter = resolve;
    }).then(() => {
      this.batch = this.free.pop()!;
    });
    return sent ? sent.then(() => wait) : wait;
  }

  private send(buf: Buffer, done?: () => void): Promise<void> | undefined {
    if (this.error) return Promise.reject(this.error);
    // The callback runs on success and failure alike (errors surface through `error`).
    if (this.out.write(buf, () => done?.())) return undefined;
    return this.waitDrain();
  }

  private waitDrain(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const out = this.out;
      const done = (err?: Error): void => {
        out.off('drain', onDrain);
        out.off('error', onErr);
        out.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = (): void => done();
      const onErr = (err: Error): void => done(err);
      const onClose = (): void => done(this.error ?? new Error('output closed before the archive was complete'));
      if (this.error) return done(this.error);
      out.on('drain', onDrain);
      out.on('error', onErr);
      out.on('close', onClose);
    });
  }

  /** Flushes and ends the Writable, resolving once it has finished (or rejecting on its error). */
  async end(): Promise<void> {
    await this.flush();
    if (this.error) throw this.error;
    const out = this.out;
    await new Promise<void>((resolve, reject) => {
      const onErr = (err: Error): void => reject(err);
      out.once('error', onErr);
      out.end(() => {
        out.off('error', onErr);
        resolve();
      });
    });
    out.off('error', this.onError);
    if (this.error) throw this.error;
  }
}
