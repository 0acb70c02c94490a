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
