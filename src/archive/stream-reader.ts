/**
 * Pulls exact byte counts out of an async iterable of chunks (a decompressor's output).
 */
import { CorruptArchiveError } from './safe-writer.ts';

export class StreamReader {
  private readonly it: AsyncIterator<Buffer>;
  private cur: Buffer = Buffer.alloc(0);
  private off = 0;
  private ended = false;
  /** Total bytes consumed. */
  position = 0;

  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    const { value, done } = await this.it.next();
    if (done) {
      this.ended = true;
      return false;
    }
    const rest = this.cur.length - this.off;
    this.cur = rest > 0 ? Buffer.concat([this.cur.subarray(this.off), value]) : value;
    this.off = 0;
    return true;
  }

  /** Exactly n bytes, or null at a clean end of stream (no byte available); throws when cut short. */
  async read(n: number): Promise<Buffer | null> {
    while (this.cur.length - this.off < n) {
      if (!(await this.pull())) {
        if (this.cur.length - this.off === 0) return null;
        throw new CorruptArchiveError('archive is truncated (unexpected end of data)');
      }
    }
    const out = this.cur.subarray(this.off, this.off + n);
    this.off += n;
    this.position += n;
    return out;
  }

  /** n bytes as chunks; throws when the stream ends first. */
  async *take(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.cur.length - this.off === 0 && !(await this.pull())) {
        throw new CorruptArchiveError('archive is truncated (unexpected end of data)');
      }
      const k = Math.min(left, this.cur.length - this.off);
      const out = this.cur.subarray(this.off, this.off + k);
      this.off += k;
      this.position += k;
      left -= k;
      yield out;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.take(n));
  }

  /** Stops the source early (its `finally` runs: a decoder worker ends, a file closes). */
  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.it.return?.();
  }

  /** Drains the rest of the source (to surface decompressor errors such as a bad checksum). */
  async drain(): Promise<number> {
    let extra = this.cur.length - this.off;
    this.off = this.cur.length;
    while (await this.pull()) {
      extra += this.cur.length - this.off;
      this.off = this.cur.length;
    }
    return extra;
  }
}
