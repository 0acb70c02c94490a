/**
 * Decoding a local tar.zst file in a worker thread, so that zstd runs beside the main thread's
 * tar parsing and file creation (as `tar -I zstd` runs zstd in its own process) instead of before
 * each of its steps. Four 1 MiB buffers go back and forth (transferred, never copied or
 * reallocated): the worker fills one, the main thread reads it, and hands it back once the
 * consumer asks for the chunk after next (the contract of zstdDecodeFile). libzstd checks every
 * frame's checksum as in the main-thread path (zstd.ts).
 *
 * The worker is plain JavaScript evaluated from a string: no TypeScript loading in the thread.
 */
import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { createRequire } = require('node:module');
const { DCtx } = createRequire(workerData.base)('zstd-napi/binding');
const free = [];
let wake = null;
parentPort.on('message', (ab) => {
  free.push(ab);
  if (wake) { const w = wake; wake = null; w(); }
});
async function take() {
  while (free.length === 0) await new Promise((resolve) => { wake = resolve; });
  return Buffer.from(free.shift());
}
(async () => {
  let fd = -1;
  try {
    fd = fs.openSync(workerData.path, 'r');
    const input = Buffer.allocUnsafe(1 << 20);
    const d = new DCtx();
    let out = await take();
    let fill = 0;
    let pos = 0;
    let inFrame = false;
    let any = false;
    for (;;) {
      const n = fs.readSync(fd, input, 0, input.length, pos);
      if (n === 0) break;
      pos += n;
      any = true;
      let src = input.subarray(0, n);
      for (;;) {
        const [ret, p, c] = d.decompressStream(out.subarray(fill), src);
        fill += p;
        src = src.subarray(c);
        inFrame = ret !== 0;
        if (fill === out.length) {
          const ab = out.buffer;
          parentPort.postMessage({ buf: ab, len: fill }, [ab]);
          out = await take();
          fill = 0;
          continue;
        }
        if (src.length === 0) break;
        if (p === 0 && c === 0) throw new Error('the zstd data does not decode');
      }
    }
    if (fill > 0) parentPort.postMessage({ buf: out.buffer, len: fill }, [out.buffer]);
    if (!any) parentPort.postMessage({ error: 'empty file' });
    else if (inFrame) parentPort.postMessage({ error: 'unexpected end of data inside a zstd frame (truncated?)' });
    else parentPort.postMessage({ end: true });
  } catch (err) {
    parentPort.postMessage({ error: err instanceof Error ? err.message : String(err), io: typeof err?.code === 'string' && err.code.startsWith('E') });
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
})();
`;

const BUFFERS = 4;
const BUFFER_SIZE = 1 << 20;

type Message = { buf: ArrayBuffer; len: number } | { end: true } | { error: string; io?: boolean };

export async function* zstdDecodeInWorker(path: string, onCorrupt: (message: string, cause?: unknown) => Error): AsyncGenerator<Buffer> {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, base: import.meta.url } });
  const inbox: Message[] = [];
  let wake: (() => void) | null = null;
  let failure: Error | null = null;
  const notify = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  worker.on('message', (m: Message) => {
    inbox.push(m);
    notify();
  });
  worker.on('error', (err) => {
    failure = err;
    notify();
  });
  for (let i = 0; i < BUFFERS; i++) {
    const ab = new ArrayBuffer(BUFFER_SIZE);
    worker.postMessage(ab, [ab]);
  }
  // The two chunks last yielded: the consumer may still read the older one.
  const held: ArrayBuffer[] = [];
  try {
    for (;;) {
      while (inbox.length === 0 && failure === null) await new Promise<void>((resolve) => (wake = resolve));
      if (failure !== null) throw failure;
      const m = inbox.shift()!;
      if ('end' in m) return;
      if ('error' in m) {
        if (m.io) throw new Error(m.error);
        throw onCorrupt(m.error);
      }
      if (held.length === 2) {
        const back = held.shift()!;
        worker.postMessage(back, [back]);
      }
      held.push(m.buf);
      yield Buffer.from(m.buf, 0, m.len);
    }
  } finally {
    await worker.terminate();
  }
}
