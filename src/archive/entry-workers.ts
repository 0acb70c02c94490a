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
 * The worker is plain JavaScript evaluated from a string: no TypeScript loading in the thread.
 */
import { Worker } from 'node:worker_threads';

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

const WORKER_SOURCE = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const { createRequire } = require('node:module');
const fs = require('node:fs');
const zlib = require('node:zlib');
const BUF = 1 << 20;
const inBuf = Buffer.allocUnsafe(BUF);
const outBuf = Buffer.allocUnsafe(BUF);
const { Z_NO_FLUSH, Z_FINISH } = zlib.constants;
let inflater = null;
let dctx = null;

function readAt(fd, len, pos) {
  let off = 0;
  while (off < len) {
    const n = fs.readSync(fd, inBuf, off, len - off, pos + off);
    if (n === 0) throw new Error('archive is truncated (unexpected end of file)');
    off += n;
  }
  return len;
}

function rawInflater() {
  const s = zlib.createInflateRaw();
  const box = { h: s._handle, state: s._writeState, error: null };
  box.h.onerror = (message) => { box.error = message; };
  return box;
}

function run(job) {
  const { archiveFd, start, csize, method, size, outFd } = job;
  let crc = 0;
  let produced = 0;
  const emit = (buf, n) => {
    if (produced + n > size) throw new Error('more data than the ' + size + ' bytes announced');
    const view = buf.subarray(0, n);
    crc = zlib.crc32(view, crc);
    if (outFd >= 0) {
      let off = 0;
      while (off < n) off += fs.writeSync(outFd, buf, off, n - off, produced + off);
    }
    produced += n;
  };
  let pos = 0;
  if (method === 0) {
    while (pos < csize) {
      const n = readAt(archiveFd, Math.min(BUF, csize - pos), start + pos);
      pos += n;
      emit(inBuf, n);
    }
  } else if (method === 8) {
    inflater = inflater || rawInflater();
    const { h, state } = inflater;
    h.reset();
    inflater.error = null;
    while (pos < csize) {
      const n = readAt(archiveFd, Math.min(BUF, csize - pos), start + pos);
      pos += n;
      const flush = pos === csize ? Z_FINISH : Z_NO_FLUSH;
      let inOff = 0;
      let inLen = n;
      for (;;) {
        h.writeSync(flush, inBuf, inOff, inLen, outBuf, 0, BUF);
        if (inflater.error !== null) throw new Error(inflater.error);
        const availOut = state[0];
        const availIn = state[1];
        if (BUF - availOut > 0) emit(outBuf, BUF - availOut);
        inOff += inLen - availIn;
        inLen = availIn;
        if (availOut !== 0) break;
      }
    }
  } else if (method === 93) {
    if (dctx === null) dctx = new (createRequire(workerData.base)('zstd-napi/binding').DCtx)();
    dctx.reset(1);
    let rest = 0;
    while (pos < csize) {
      const n = readAt(archiveFd, Math.min(BUF, csize - pos), start + pos);
      pos += n;
      let src = inBuf.subarray(0, n);
      for (;;) {
        const [r, p, c] = dctx.decompressStream(outBuf, src);
        rest = r;
        if (p > 0) emit(outBuf, p);
        src = src.subarray(c);
        if (src.length === 0 && p < BUF) break;
        if (p === 0 && c === 0) throw new Error('the zstd data does not decode');
      }
    }
    if (rest !== 0) throw new Error('the zstd data ends inside a frame');
  } else {
    throw new Error('unsupported compression method ' + method);
  }
  return { crc, size: produced };
}

parentPort.on('message', (job) => {
  try {
    parentPort.postMessage({ id: job.id, ...run(job) });
  } catch (err) {
    parentPort.postMessage({ id: job.id, error: err instanceof Error ? err.message : String(err) });
  }
});
`;

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
    // zstd-napi is resolved from this module, wherever the process runs.
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { base: import.meta.url } });
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
