/**
 * A large file's data in a zip, deflated by the native addon with the reads on the threadpool:
 * each 1 MiB block is read, CRC-32'd and deflated (or stored, when its sample says so) by one job
 * (`packBlockAt`), up to `parallel` at once, and written in order; the main thread only joins the
 * CRCs and copies the output into the sink. Before, the main thread read each block itself
 * (one await per block, in turn) and ran its CRC, so the blocks of the bench tree's 100 MiB
 * binaries mostly had one job in flight (docs/archive.md "Session 8").
 *
 * A file that shrinks is cut where its read came up short (the stream is ended with an empty final
 * stored block); one that grows is cut at its stat'ed size, as readBlocks does.
 * Memory: `parallel` input blocks and as many outputs of blockBound(block), reused.
 */
import type { NativeDeflate } from './native-deflate.ts';
import type { Sink } from './sink.ts';

/** An empty final stored block: ends a deflate stream whose blocks so far were not final. */
const END = Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff]);

interface Job {
  input: Buffer;
  output: Buffer;
  want: number;
  last: boolean;
  done: Promise<[number, number, number]>;
}

export class NativeFileStreamer {
  private readonly engine: NativeDeflate;
  private readonly level: number;
  private readonly block: number;
  private readonly parallel: number;
  private readonly inputs: Buffer[] = [];
  private readonly outputs: Buffer[] = [];

  constructor(engine: NativeDeflate, level: number, block: number, parallel: number) {
    this.engine = engine;
    this.level = level;
    this.block = block;
    this.parallel = parallel;
  }

  /** Writes `fd`'s first `size` bytes (or fewer, if it shrank) as deflate to `sink`. */
  async write(fd: number, size: number, sink: Sink): Promise<{ crc: number; usize: number }> {
    const jobs: Job[] = [];
    let next = 0;
    let crc = 0;
    let usize = 0;
    let ended = false;
    const submit = (): void => {
      const want = Math.min(this.block, size - next);
      const input = this.inputs.pop() ?? Buffer.allocUnsafe(this.block);
      const output = this.outputs.pop() ?? Buffer.allocUnsafe(this.engine.blockBound(this.block));
      const last = next + want >= size;
      const done = this.engine.packBlockAt(this.level, fd, next, input.subarray(0, want), output, last);
      done.catch(() => {}); // observed below, in order
      jobs.push({ input, output, want, last, done });
      next += want;
    };
    try {
      while (jobs.length > 0 || (next < size && !ended)) {
        while (!ended && next < size && jobs.length < this.parallel) submit();
        const job = jobs[0];
        const [blockCrc, n, read] = await job.done;
        jobs.shift();
        if (!ended) {
          crc = this.engine.crc32Combine(crc, blockCrc, read);
          usize += read;
          const w = sink.write(job.output.subarray(0, n));
          if (w) await w;
          if (read < job.want) {
            // shrank: this block ends the data; later blocks (read past the end) are dropped
            ended = true;
            if (!job.last) await sink.write(END);
          }
        }
        this.inputs.push(job.input);
        this.outputs.push(job.output);
      }
      return { crc, usize };
    } finally {
      // after a failure: nothing in flight may surface as an unhandled rejection, nor reuse its buffers
      for (const j of jobs) j.done.catch(() => {});
    }
  }
}
