/**
 * Decoding a local tar.zst file in a worker thread, so that zstd runs beside the main thread's
 * tar parsing and file creation (as `tar -I zstd` runs zstd in its own process) instead of before
 * each of its steps. Four 1 MiB buffers go back and forth (transferred, never copied or
 * reallocated): the worker fills one, the main thread reads it, and hands it back once the
 * consumer asks for the chunk after next (the contract of zstdDecodeFile). libzstd checks every
 * frame's checksum as in the main-thread path (zstd.ts).
 *
 * The thread's code is zstd-decode-worker.ts (started through worker-start.ts).
 */
import { startWorker } from './worker-start.ts';

const BUFFERS = 4;
const BUFFER_SIZE = 1 << 20;

type Message = { buf: ArrayBuffer; len: number } | { end: true } | { error: string; io?: boolean };

export async function* zstdDecodeInWorker(path: string, onCorrupt: (message: string, cause?: unknown) => Error): AsyncGenerator<Buffer> {
  const worker = startWorker(new URL('./zstd-decode-worker.ts', import.meta.url), { path });
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
