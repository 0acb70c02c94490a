/**
 * Which bytes of a download are on disk yet, for a verifier that reads the temporary file while it
 * is being written (download() `verify`). Ranged downloads write parts in any order; a waiter for
 * bytes [start, end) is released once every part overlapping them has written that far.
 */
export interface ArrivalRange {
  start: number;
  /** Inclusive. */
  end: number;
  /** Bytes of this range already on disk. */
  done: number;
}

interface Waiter {
  start: number;
  end: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class Arrival {
  readonly size: number;
  private readonly ranges: readonly ArrivalRange[];
  private waiters: Waiter[] = [];
  private failure: { err: unknown } | undefined;

  /** `ranges` are the caller's own part records (sorted by start, covering 0..size-1), read on every update. */
  constructor(size: number, ranges: readonly ArrivalRange[]) {
    this.size = size;
    this.ranges = ranges;
  }

  /** Where each range begins. */
  get starts(): number[] {
    return this.ranges.map((r) => r.start);
  }

  private has(start: number, end: number): boolean {
    if (end <= start) return true;
    for (const r of this.ranges) {
      if (r.end < start) continue;
      if (r.start >= end) break;
      if (r.start + r.done < Math.min(end, r.end + 1)) return false;
    }
    return true;
  }

  ready(start: number, end: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure.err);
    if (this.has(start, end)) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ start, end, resolve, reject }));
  }

  /** Call after bytes were written. */
  update(): void {
    if (this.waiters.length === 0) return;
    const waiting: Waiter[] = [];
    for (const w of this.waiters) {
      if (this.has(w.start, w.end)) w.resolve();
      else waiting.push(w);
    }
    this.waiters = waiting;
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** No more bytes will come: every waiter, now and later, gets `err`. */
  fail(err: unknown): void {
    this.failure ??= { err };
    for (const w of this.waiters) w.reject(this.failure.err);
    this.waiters = [];
  }
}
