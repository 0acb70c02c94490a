/**
 * Buffered, backpressure-aware writes to any Writable (file, HTTP body, compressor), with the
 * running byte offset the zip writer needs for its central directory.
 */
import type { Writable } from 'node:stream';

const BATCH = 1 << 20;

export class Sink {
  readonly out: Writable;
  /** Bytes accepted so far (including not yet flushed ones). */
  offset = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private error: Error | null = null;
  private readonly onError: (err: Error) => void;

  constructor(out: Writable) {
    this.out = out;
    this.onError = (err: Error) => {
      this.error ??= err;
    };
    out.on('error', this.onError);
  }

  /** Queues bytes; flushes when a batch is full. Await the result. */
  write(buf: Buffer): Promise<void> | undefined {
    if (buf.length === 0) return undefined;
    this.offset += buf.length;
    if (buf.length >= BATCH / 4 && this.pendingBytes === 0) return this.send(buf);
    this.pending.push(buf);
    this.pendingBytes += buf.length;
    if (this.pendingBytes >= BATCH) return this.flush();
    return undefined;
  }

  flush(): Promise<void> | undefined {
    if (this.pendingBytes === 0) return undefined;
    const buf = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    return this.send(buf);
  }

  private send(buf: Buffer): Promise<void> | undefined {
    if (this.error) return Promise.reject(this.error);
    if (this.out.write(buf)) return undefined;
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
