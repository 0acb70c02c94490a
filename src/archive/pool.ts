/**
 * Bounded look-ahead for the writers and readers: at most `maxTasks` entries and `maxBytes` bytes
 * in flight. This is what bounds memory (see docs/archive.md).
 */
export class Budget {
  readonly maxTasks: number;
  readonly maxBytes: number;
  tasks = 0;
  bytes = 0;
  private waiters: Array<() => void> = [];

  constructor(maxTasks: number, maxBytes: number) {
    this.maxTasks = maxTasks;
    this.maxBytes = maxBytes;
  }

  /** True when a task of `bytes` may start now (a lone task may always start, however large). */
  fits(bytes: number): boolean {
    if (this.tasks === 0) return true;
    return this.tasks < this.maxTasks && this.bytes + bytes <= this.maxBytes;
  }

  async acquire(bytes: number): Promise<void> {
    while (!this.fits(bytes)) await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.tasks++;
    this.bytes += bytes;
  }

  release(bytes: number): void {
    this.tasks--;
    this.bytes -= bytes;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/**
 * The writers' look-ahead: entries after the one being written are prepared (read, compressed) in
 * the background as far as a Budget allows, and taken back strictly in order. Entries that `skip`
 * accepts (streamed or written inline) are left to the caller.
 */
export class ReadAhead<T> {
  private readonly entries: readonly { size: number }[];
  private readonly budget: Budget;
  private readonly skip: (i: number) => boolean;
  private readonly prepare: (i: number) => Promise<T>;
  private readonly pending = new Map<number, Promise<T>>();
  private ahead = 0;

  constructor(entries: readonly { size: number }[], budget: Budget, skip: (i: number) => boolean, prepare: (i: number) => Promise<T>) {
    this.entries = entries;
    this.budget = budget;
    this.skip = skip;
    this.prepare = prepare;
  }

  /** Starts preparing entries from `from` on, while the budget allows. */
  fill(from: number): void {
    if (this.ahead < from) this.ahead = from;
    while (this.ahead < this.entries.length) {
      if (this.skip(this.ahead)) {
        this.ahead++;
        continue;
      }
      const cost = this.entries[this.ahead].size;
      if (!this.budget.fits(cost)) break;
      this.budget.tasks++;
      this.budget.bytes += cost;
      const p = this.prepare(this.ahead);
      p.catch(() => {}); // observed when its turn comes
      this.pending.set(this.ahead, p);
      this.ahead++;
    }
  }

  /** The prepared entry `i` (started by fill); frees its share of the budget and prepares further. */
  async take(i: number): Promise<T> {
    const p = this.pending.get(i)!;
    this.pending.delete(i);
    let value: T;
    try {
      value = await p;
    } finally {
      this.budget.tasks--;
      this.budget.bytes -= this.entries[i].size;
    }
    this.fill(i + 1);
    return value;
  }

  /** After a failure: nothing still in flight may surface as an unhandled rejection. */
  abandon(): void {
    for (const p of this.pending.values()) p.catch(() => {});
  }
}

/** Collects the first error of background tasks and lets the driver wait for all of them. */
export class TaskGroup {
  private running = new Set<Promise<void>>();
  error: unknown = null;

  add(task: Promise<void>): void {
    const p = task.then(
      () => {
        this.running.delete(p);
      },
      (err: unknown) => {
        this.running.delete(p);
        this.error ??= err;
      },
    );
    this.running.add(p);
  }

  throwIfFailed(): void {
    if (this.error !== null) throw this.error;
  }

  /** Waits for every running task, ignoring their errors (used on the error path). */
  async settle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  async wait(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running]);
    this.throwIfFailed();
  }
}

/**
 * Lets a loop of synchronous work (small files written with sync calls) give the event loop a turn
 * every few milliseconds. Without it the completions of threadpool work started by background
 * tasks (reads, inflates, writes of large entries) wait for the loop's next real I/O: measured on the
 * bench zip, the large entries took 1.45 s each while the loop ran and 0.4 s after it.
 */
export class Yielder {
  private last = performance.now();
  private readonly everyMs: number;

  constructor(everyMs = 2) {
    this.everyMs = everyMs;
  }

  /** A promise to await when a turn is due, else undefined (no allocation on the fast path). */
  due(): Promise<void> | undefined {
    const now = performance.now();
    if (now - this.last < this.everyMs) return undefined;
    this.last = now;
    return new Promise((resolve) => setImmediate(resolve));
  }
}
