/**
 * Small files of a zip, compressed in batches by the native addon (native-deflate.ts), as
 * fastzip's one-goroutine-per-CPU compresses whole files: the main thread reads files
 * synchronously into a batch's 1 MiB input arena; a full batch is deflated (and CRC-32'd) on the
 * threadpool into its output arena while the next one fills; batches are written strictly in
 * order. Directories, symlinks and empty files ride along in their batch, prepared inline.
 *
 * Memory: (IN_FLIGHT + 1) batches of 1 MiB in and 1 MiB + 4 KiB out, reused for the whole run;
 * nothing is allocated per file but its small Prepared record.
 */
import { PACK_SLACK, type NativeDeflate } from './native-deflate.ts';
import { readSmallFileSync } from './fsread.ts';
import { METHOD_STORE, type ZipMethod } from './compress.ts';

export const ARENA = 1 << 20;
/** Batches compressing at once (libuv's threadpool has 4 threads; this machine 2 cores). */
const IN_FLIGHT = 3;
const MAX_ITEMS = 4096;

/** An entry ready to write: `data` is valid until its batch is released. */
export interface Prepared {
  /** Null when the entry vanished and is skipped. */
  data: Buffer | null;
  method: number;
  crc: number;
  usize: number;
}

interface Item {
  index: number;
  /** Set for entries prepared inline; files get theirs when the batch is done. */
  prepared: Prepared | null;
  offset: number;
  length: number;
}

class Batch {
  readonly input = Buffer.allocUnsafe(ARENA);
  readonly output = Buffer.allocUnsafe(ARENA + PACK_SLACK);
  readonly lengths = new Uint32Array(MAX_ITEMS);
  readonly results = new Uint32Array(2 * MAX_ITEMS);
  items: Item[] = [];
  files = 0;
  used = 0;
  done: Promise<void> | null = null;

  reset(): void {
    this.items = [];
    this.files = 0;
    this.used = 0;
    this.done = null;
  }
}

export class FileBatches {
  private readonly engine: NativeDeflate;
  private readonly method: ZipMethod;
  private readonly level: number;
  private readonly free: Batch[] = [];
  private readonly queue: Batch[] = [];
  private current: Batch | null = null;

  constructor(engine: NativeDeflate, method: ZipMethod, level: number) {
    this.engine = engine;
    this.method = method;
    this.level = level;
  }

  private batch(): Batch {
    return (this.current ??= this.free.pop() ?? new Batch());
  }

  /** An entry prepared by the caller (directory, symlink, vanished or empty file). */
  addPrepared(index: number, prepared: Prepared): void {
    this.batch().items.push({ index, prepared, offset: 0, length: 0 });
  }

  /**
   * Reads file `index` (1 to ARENA bytes, as stat'ed; fewer if it shrank) into the current batch,
   * which must have room (`fits`). Throws what reading throws (ENOENT when it vanished).
   */
  addFile(index: number, path: string, size: number): void {
    const b = this.batch();
    if (b.used + size > ARENA || b.files === MAX_ITEMS) throw new Error('FileBatches.addFile: batch is full (call fits() first)');
    const data = readSmallFileSync(path, size, b.input.subarray(b.used, b.used + size));
    if (data.buffer !== b.input.buffer) {
      // readSmallFileSync only allocates when the scratch is too small, which cannot happen here
      throw new Error('FileBatches: file read outside its batch');
    }
    b.lengths[b.files++] = data.length;
    b.items.push({ index, prepared: null, offset: b.used, length: data.length });
    b.used += data.length;
  }

  /** True when a file of `size` bytes fits in the current batch. */
  fits(size: number): boolean {
    const b = this.current;
    return b === null || (b.used + size <= ARENA && b.files < MAX_ITEMS);
  }

  /** Sends the current batch to the threadpool; true when the caller should write the oldest. */
  submit(): boolean {
    const b = this.current;
    this.current = null;
    if (b !== null && b.items.length > 0) {
      b.done = b.files > 0 ? this.engine.packFiles(this.level, b.input.subarray(0, b.used), b.lengths.subarray(0, b.files), b.output, b.results) : Promise.resolve();
      b.done.catch(() => {}); // observed in writeOldest
      this.queue.push(b);
    } else if (b !== null) {
      this.free.push(b);
    }
    return this.queue.length >= IN_FLIGHT;
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Waits for the oldest batch and hands its entries, in order, to `write`. */
  async writeOldest(write: (index: number, prepared: Prepared) => Promise<void> | undefined): Promise<void> {
    const b = this.queue.shift();
    if (!b) return;
    try {
      await b.done;
      let file = 0;
      let outOff = 0;
      for (const item of b.items) {
        let p = item.prepared;
        if (p === null) {
          const crc = b.results[2 * file];
          const packed = b.results[2 * file + 1];
          file++;
          const raw = b.input.subarray(item.offset, item.offset + item.length);
          if (packed === 0xffffffff) {
            p = { data: raw, method: METHOD_STORE, crc, usize: item.length };
          } else {
            p = { data: b.output.subarray(outOff, outOff + packed), method: this.method, crc, usize: item.length };
            outOff += packed;
          }
        }
        const w = write(item.index, p);
        if (w) await w;
      }
    } finally {
      b.reset();
      this.free.push(b);
    }
  }

  /** After a failure: nothing in flight may surface as an unhandled rejection. */
  abandon(): void {
    for (const b of this.queue) b.done?.catch(() => {});
  }
}
