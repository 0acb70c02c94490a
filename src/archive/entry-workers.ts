/**
 * Large zip entries decoded by worker threads: each worker reads the entry's bytes from the archive
 * (pread on the archive's fd), inflates (or zstd-decodes, or copies) them into one reused buffer,
 * computes the CRC-32, and writes them with pwrite to the fd the main thread opened through the
 * SafeWriter (none when only verifying). Everything is synchronous inside the worker, so it runs
 * beside the main thread's small files instead of taking turns with them on the event loop.
 *
 * Why (bench zip, 3 × 100 MiB entries among 20,000 small files): as node:zlib streams on the
 * threadpool, every 1 MiB step of a large entry waited for the main loop's next real I/O (1.45 s per
 * entry while small files were written, 0.4 s alone), and its fresh 1 MiB input and output buffers
 * caused a mark-compact every 50–100 ms. Memory per worker: 1 MiB in + 1 MiB out + its isolate.
 *
 * The thread's code is entry-worker.ts (started through worker-start.ts). With the native addon,
 * stored and deflated entries are decoded by its inflateFile on the threadpool instead (no isolate;
 * zip-reader.ts): these threads then start only for zstd entries.
 */
import type { Worker } from 'node:worker_threads';
import { startWorker } from './worker-start.ts';

export interface EntryJob {
  /** The archive's file descriptor (shared by the threads of the process). */
  archiveFd: number;
  /** Offset of the compressed data, its length, the zip method, the uncompressed size. */
  start: number;
  csize: number;
  method: number;
  size: number;
  /** Where to write the data (at offset 0), or -1 to only check it. */
  outFd: number;
}

export interface EntryResult {
  crc: number;
  /** Bytes produced (never more than size + one buffer; the caller compares with size). */
  size: number;
}

interface Slot {
  worker: Worker;
  busy: boolean;
}

/** Up to `max` worker threads, started on first use; jobs beyond them wait in order. */
export class EntryWorkers {
  private readonly max: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Array<() => void> = [];
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (r: EntryResult) => void; reject: (e: Error) => void }>();

  constructor(max = 2) {
    this.max = max;
  }

  private spawn(): Slot {
    const worker = startWorker(new URL('./entry-worker.ts', import.meta.url), null);
    worker.on('message', (m: { id: number; crc?: number; size?: number; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(m.error));
      else p.resolve({ crc: m.crc ?? 0, size: m.size ?? 0 });
    });
    worker.on('error', (err) => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
    const slot = { worker, busy: false };
    this.slots.push(slot);
    return slot;
  }

  private async acquire(): Promise<Slot> {
    for (;;) {
      const free = this.slots.find((s) => !s.busy) ?? (this.slots.length < this.max ? this.spawn() : undefined);
      if (free) {
        free.busy = true;
        return free;
      }
      await new Promise<void>((resolve) => this.queue.push(resolve));
    }
  }

  async run(job: EntryJob): Promise<EntryResult> {
    const slot = await this.acquire();
    try {
      const id = this.nextId++;
      return await new Promise<EntryResult>((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        slot.worker.postMessage({ id, ...job });
      });
    } finally {
      slot.busy = false;
      this.queue.shift()?.();
    }
  }

  /** Stops the threads (after every job has settled). */
  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }
}
