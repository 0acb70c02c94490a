/**
 * The tar writer's small files read ahead on the threadpool by the native addon (`readFiles`), in
 * batches of up to 1 MiB, a few batches ahead of the writer: the main thread then only writes
 * headers and copies the data into the sink. Before, it opened, read and closed each of the bench
 * tree's 20,000 small files itself, and the frame thread waited (docs/archive.md "Session 7" and
 * "Session 8"). Without the addon the writer reads them itself, as before.
 *
 * Memory: IN_FLIGHT + 1 arenas of 1 MiB and their names, reused; nothing allocated per file.
 */
import type { NativeDeflate } from './native-deflate.ts';
import type { SourceEntry } from './entry.ts';
import { NameList } from './name-list.ts';

const ARENA = 1 << 20;
const IN_FLIGHT = 3;
const MAX_ITEMS = 4096;
const VANISHED = 0xffffffff;

class Batch {
  readonly input = Buffer.allocUnsafe(ARENA);
  readonly lengths = new Uint32Array(MAX_ITEMS);
  readonly results = new Uint32Array(3 * MAX_ITEMS);
  readonly paths = new NameList();
  /** Entry indices, their offsets in `input`. */
  readonly indices: number[] = [];
  readonly offsets: number[] = [];
  used = 0;
  taken = 0;
  done: Promise<void> = Promise.resolve();

  reset(): void {
    this.indices.length = 0;
    this.offsets.length = 0;
    this.used = 0;
    this.paths.reset();
    this.taken = 0;
  }

  add(index: number, path: string, size: number): void {
    this.paths.add(path);
    this.lengths[this.indices.length] = size;
    this.indices.push(index);
    this.offsets.push(this.used);
    this.used += size;
  }
}

export class TarReadAhead {
  private readonly engine: NativeDeflate;
  private readonly entries: readonly SourceEntry[];
  private readonly eligible: (i: number) => boolean;
  private readonly free: Batch[] = [];
  private readonly queue: Batch[] = [];
  private next = 0;

  /** `eligible(i)`: entry i is a file of 1 byte to 1 MiB that the writer will take with take(i), in order. */
  constructor(engine: NativeDeflate, entries: readonly SourceEntry[], eligible: (i: number) => boolean) {
    this.engine = engine;
    this.entries = entries;
    this.eligible = eligible;
    this.fill(); // reading starts while the writer is still at the entries before
  }

  private fill(): void {
    while (this.queue.length < IN_FLIGHT && this.next < this.entries.length) {
      const b = this.free.pop() ?? new Batch();
      for (; this.next < this.entries.length; this.next++) {
        if (!this.eligible(this.next)) continue;
        const e = this.entries[this.next];
        if (b.used + e.size > ARENA || b.indices.length === MAX_ITEMS) break;
        b.add(this.next, e.absPath, e.size);
      }
      if (b.indices.length === 0) {
        this.free.push(b);
        return;
      }
      const n = b.indices.length;
      b.done = this.engine.readFiles(b.input.subarray(0, b.used), b.lengths.subarray(0, n), b.results.subarray(0, 3 * n), b.paths.bytes());
      b.done.catch(() => {}); // observed in take
      this.queue.push(b);
    }
  }

  /**
   * The bytes of entry `i` as read (at most its stat'ed size; fewer: it shrank), or null when it
   * vanished. Valid until the next take(). Entries must be taken in order.
   */
  async take(i: number): Promise<Buffer | null> {
    const head = this.queue[0];
    if (head && head.taken === head.indices.length) {
      // the caller is done with the last file of the oldest batch: its arena reads the next files
      this.queue.shift();
      head.reset();
      this.free.push(head);
    }
    this.fill();
    const b = this.queue[0];
    if (!b || b.indices[b.taken] !== i) throw new Error(`TarReadAhead.take(${i}): not the next file read ahead`);
    await b.done;
    const k = b.taken++;
    const read = b.results[3 * k + 2];
    if (read === VANISHED) return null;
    return b.input.subarray(b.offsets[k], b.offsets[k] + read);
  }

  /** After a failure: nothing in flight may surface as an unhandled rejection. */
  abandon(): void {
    for (const b of this.queue) b.done.catch(() => {});
  }
}
