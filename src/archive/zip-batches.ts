/**
 * Small files of a zip, compressed in batches by the native addon (native-deflate.ts), as
 * fastzip's one-goroutine-per-CPU compresses whole files: the main thread only lays out a batch
 * (names, and a slot of the stat'ed size per file in its 1 MiB input arena); the job on the
 * threadpool reads the files into their slots, then deflates (and CRC-32s) them into the output
 * arena while the next batch is laid out; batches are written strictly in order. (Reading on the
 * main thread made the threadpool wait on it: 1.13–1.15× GitLab's time on the bench tree's 20,000
 * small files.) Directories, symlinks and empty files ride along in their batch, prepared inline.
 *
 * Memory: (IN_FLIGHT + 1) batches of 1 MiB in, 1 MiB + 4 KiB out and their names (64 KiB, grown
 * for long ones), reused for the whole run; nothing is allocated per file but its small Prepared
 * record.
 */
import { PACK_SLACK, type NativeDeflate } from './native-deflate.ts';
import { METHOD_STORE, type ZipMethod } from './compress.ts';
import { NameList } from './name-list.ts';

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
  /** The file vanished between selection and reading (the caller warns). */
  vanished?: boolean;
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
  readonly results = new Uint32Array(3 * MAX_ITEMS);
  /** The files' names, NUL-terminated, back to back. */
  readonly paths = new NameList();
  items: Item[] = [];
  files = 0;
  used = 0;
  done: Promise<void> | null = null;

  reset(): void {
    this.items = [];
    this.files = 0;
    this.used = 0;
    this.paths.reset();
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
   * Gives file `index` (1 to ARENA bytes, as stat'ed) a slot in the current batch, which must have
   * room (`fits`); the batch's job reads it (at most `size` bytes: a file that grew is cut, as
   * before; one that vanished is reported by `vanished`).
   */
  addFile(index: number, path: string, size: number): void {
    const b = this.batch();
    if (b.used + size > ARENA || b.files === MAX_ITEMS) throw new Error('FileBatches.addFile: batch is full (call fits() first)');
    b.paths.add(path);
    b.lengths[b.files++] = size;
    b.items.push({ index, prepared: null, offset: b.used, length: size });
    b.used += size;
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
      b.done = b.files > 0 ? this.engine.packFiles(this.level, b.input.subarray(0, b.used), b.lengths.subarray(0, b.files), b.output, b.results, b.paths.bytes()) : Promise.resolve();
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
          const crc = b.results[3 * file];
          const packed = b.results[3 * file + 1];
          const read = b.results[3 * file + 2];
          file++;
          const raw = b.input.subarray(item.offset, item.offset + read);
          if (read === 0xffffffff) {
            p = { data: null, method: METHOD_STORE, crc: 0, usize: 0, vanished: true };
          } else if (packed === 0xffffffff) {
            p = { data: raw, method: METHOD_STORE, crc, usize: read };
          } else {
            p = { data: b.output.subarray(outOff, outOff + packed), method: this.method, crc, usize: read };
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
