/**
 * The blocks of a large zip entry deflated by the native addon on the threadpool (no worker
 * threads, no isolates): each 1 MiB block is compressed independently (no dictionary from the
 * block before: 0.3 % larger on this project's node_modules binaries, measured with
 * bench/deflate-engines.ts) and all but the last end byte-aligned and not final, so their
 * concatenation is one ordinary deflate stream. Same interface as BlockCompressor.
 *
 * Memory: output buffers of blockBound(1 MiB), one per block in flight, reused.
 *
 * The addon stores a block (level 0) whose 64 KiB sample deflates to more than 70 % (docs/archive.md
 * "Deflate engines").
 */
import type { CompressedBlock } from './block-workers.ts';
import type { NativeDeflate } from './native-deflate.ts';

export class NativeBlocks {
  private readonly engine: NativeDeflate;
  private readonly level: number;
  private readonly outSize: number;
  private readonly outs: Buffer[] = [];

  constructor(engine: NativeDeflate, level: number, blockSize: number) {
    this.engine = engine;
    this.level = level;
    this.outSize = engine.blockBound(blockSize);
  }

  begin(): void {}

  async compress(block: Buffer, last: boolean): Promise<CompressedBlock> {
    const out = this.outs.pop() ?? Buffer.allocUnsafe(this.outSize);
    let n: number;
    try {
      [, n] = await this.engine.packBlock(this.level, block, out, last);
    } catch (err) {
      this.outs.push(out);
      throw new Error(`compressing a block failed: ${(err as Error).message}`);
    }
    return { data: out.subarray(0, n), block, release: () => void this.outs.push(out) };
  }

  async close(): Promise<void> {
    this.outs.length = 0;
  }
}
