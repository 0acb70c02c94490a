/**
 * A scavenge (V8's young-generation collection) every few MiB received: what bounds the download's
 * memory.
 *
 * Why: node:http hands every socket read over as a fresh 64 KiB Buffer, malloc'd outside the V8
 * heap. The Buffer objects are tiny, so they fill the (deliberately small, archive/memory.ts) young
 * generation only after several hundred MB; the only other trigger is V8's external-memory limit,
 * ~64 MB of new external memory. Until one of them fires, every chunk already written to disk stays
 * resident, and in glibc's main arena, whose freed pages are then fragmented and never go back to
 * the system. Measured, a 360 MB ranged download (16 parts) against a local server, nothing else in
 * the process: peak RSS 170–183 MB (brk heap 79–94 MB); with a scavenge every 8 MiB 132–137 MB
 * (brk 41–45 MB), and no slower (1.7–1.8 s against 2.0–3.2 s; docs/transfer.md "Memory bound").
 * A full collection every 32 MiB did not help (167–169 MB): the chunks die young, a scavenge frees
 * them, and it costs well under a millisecond at this heap size.
 *
 * `gc` is not exposed without `--expose-gc` at start-up; setting the flag at run time and reading
 * `gc` from a new context gives the same function (the one V8 installs for the flag), and leaves the
 * main context's globals alone. Where even that is unavailable, the pacer does nothing.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

type Gc = (opts?: { type?: 'minor' | 'major'; execution?: 'sync' }) => void;

let gc: Gc | null | undefined;

function collector(): Gc | null {
  if (gc !== undefined) return gc;
  try {
    v8.setFlagsFromString('--expose-gc');
    const fn: unknown = vm.runInNewContext('gc');
    gc = typeof fn === 'function' ? (fn as Gc) : null;
  } catch {
    gc = null;
  }
  return gc;
}

/**
 * A full collection, between a download and the extraction: the verification's records of the
 * archive (its central directory, ~10 MB of heap for 27,000 entries) and the transfer's buffers
 * are garbage by then, and the extraction would otherwise grow the heap beside them.
 */
export function collectAll(): void {
  collector()?.({ type: 'major' });
}

/** Bytes received between two scavenges. */
export const SCAVENGE_EVERY = 8 * 1024 * 1024;

/** Returns a counter: call it with each amount of bytes received; it scavenges every `every` bytes. */
export function youngGcPacer(every = SCAVENGE_EVERY): (bytes: number) => void {
  const run = collector();
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (run === null || since < every) return;
    since = 0;
    run({ type: 'minor' });
  };
}
