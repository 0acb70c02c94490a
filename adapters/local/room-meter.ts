/**
 * Passes an upload's bytes on to the store once room is made for them: each chunk is counted as
 * reserved and the store evicts for it (`claim`) before it is written. A chunk that no eviction can
 * make room for (the bound is taken by other uploads in progress and by open readers) fails the
 * upload with 507 and Retry-After. So the bytes on disk stay under max_size while uploads arrive,
 * and a declared length that never comes evicts nothing.
 */
import { Transform, type TransformCallback } from 'node:stream';

export class RoomMeter extends Transform {
  private readonly claim: (bytes: number) => void;

  /** `claim` reserves the bytes and evicts for them, or throws (insufficient_storage). */
  constructor(claim: (bytes: number) => void) {
    super({ highWaterMark: 1 << 20 });
    this.claim = claim;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.claim(chunk.length);
    } catch (err) {
      cb(err as Error);
      return;
    }
    cb(null, chunk);
  }
}
