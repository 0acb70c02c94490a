/**
 * The blocks of a large zip entry deflated by the native addon on the threadpool (no worker
 * threads, no isolates): each 1 MiB block is compressed independently (no dictionary from the
 * block before: 0.3 % larger on this project's node_modules binaries, measured with
 * bench/deflate-engines.ts) and all but the last end byte-aligned and not final, so their
 * concatenation is one ordinary deflate stream. Same interface as BlockCompressor.
 *
 * Memory: output buffers of blockBound(1 MiB), one per block in flight, reused.
 *
 * A block that deflates to more than STORE_ABOVE of its size (data without repeats, where deflate
 * only gains its Huffman coding) switches the rest of its entry to stored deflate blocks (level 0,
 * a copy): on the bench tree's 6-bit-entropy binaries libdeflate level 1 gets 0.77 at ~3x the CPU
 * time of everything else, and GitLab's klauspost level 1 stores them whole (docs/archive.md
 * "Deflate engines"). Compressed images, archives and random data cost no deflate time either.
 */
const STORE_ABOVE = 0.7;
import type { CompressedBlock } from './block-workers.ts';
import type { NativeDeflate } from './native-deflate.ts';

export class NativeBlocks {
  private readonly engine: NativeDeflate;
  private readonly level: number;
  private readonly outSize: number;
  private readonly outs: Buffer[] = [];
  /** Level for the current entry's next blocks: this.level, or 0 once a block did not compress. */
  private entryLevel: number;
  private entry = 0;

  constructor(engine: NativeDeflate, level: number, blockSize: number) {
    this.engine = engine;
    this.level = level;
    this.outSize = engine.blockBound(blockSize);
    this.entryLevel = level;
  }

  begin(): void {
    this.entryLevel = this.level;
    this.entry++;
  }

  async compress(block: Buffer, last: boolean): Promise<CompressedBlock> {
    const out = this.outs.pop() ?? Buffer.allocUnsafe(this.outSize);
    let n: number;
    const level = this.entryLevel;
    const entry = this.entry;
    try {
      [, n] = await this.engine.packBlock(level, block, out, last);
      if (level > 0 && entry === this.entry && n > STORE_ABOVE * block.length) this.entryLevel = 0;
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
