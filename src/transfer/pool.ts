/** Runs `fn` over `items` with at most `concurrency` in flight; the first failure stops the rest. */
export async function runPool<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, signal: AbortSignal, worker: number) => Promise<void>,
  parent?: AbortSignal,
): Promise<void> {
  const stop = new AbortController();
  const signal = parent ? AbortSignal.any([parent, stop.signal]) : stop.signal;
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async (w: number): Promise<void> => {
    while (failure === undefined && next < items.length && !signal.aborted) {
      const item = items[next++];
      try {
        await fn(item, signal, w);
      } catch (err) {
        if (failure === undefined) {
          failure = { err };
          stop.abort();
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, (_v, w) => worker(w)));
  if (failure !== undefined) throw failure.err;
  parent?.throwIfAborted();
}
