/**
 * Progress: every transfer reports (bytes done, total) through `onProgress`; `createMeter` turns that
 * into a line on stderr every `frequencyMs` (TRANSFER_METER_FREQUENCY, a Go duration such as `5s`;
 * `0` is off; unset means 1 s when stderr is a terminal, off otherwise).
 */
export type ProgressFn = (done: number, total: number) => void;

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration, in milliseconds (`1h2m3.5s`, `500ms`, `0`). */
export function parseGoDuration(text: string): number {
  const s = text.trim();
  if (s === '0' || s === '+0' || s === '-0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
  const body = s.replace(/^[+-]/, '');
  if (body === '') throw new TypeError(`invalid duration ${JSON.stringify(text)}`);
  let total = 0;
  let pos = 0;
  re.lastIndex = 0;
  for (let m = re.exec(body); m !== null; m = re.exec(body)) {
    total += Number(m[1]) * UNITS[m[2]];
    pos = re.lastIndex;
  }
  if (pos !== body.length) throw new TypeError(`invalid duration ${JSON.stringify(text)}`);
  return s.startsWith('-') ? -total : total;
}

/** The meter period in ms, 0 for none. */
export function meterFrequency(value: string | undefined, isTTY: boolean): number {
  if (value === undefined || value.trim() === '') return isTTY ? 1000 : 0;
  return Math.max(0, parseGoDuration(value));
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  for (; v >= 1024 && i < units.length - 1; i++) v /= 1024;
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export interface Meter {
  /** Pass as a transfer's onProgress. */
  onProgress: ProgressFn;
  /** Prints the final line and stops the timer. */
  done(): void;
}

export function createMeter(opts: { label: string; frequencyMs: number; stream?: NodeJS.WritableStream & { isTTY?: boolean }; now?: () => number }): Meter {
  const stream = opts.stream ?? process.stderr;
  const now = opts.now ?? Date.now;
  const started = now();
  let done = 0;
  let total = 0;
  const line = (final: boolean): void => {
    const secs = Math.max((now() - started) / 1000, 0.001);
    const pct = total > 0 ? ` (${Math.floor((done / total) * 100)}%)` : '';
    const text = `${opts.label} ${formatBytes(done)}${total > 0 ? ` / ${formatBytes(total)}` : ''}${pct}, ${formatBytes(Math.round(done / secs))}/s`;
    stream.write(stream.isTTY ? `\r\x1b[K${text}${final ? '\n' : ''}` : `${text}\n`);
  };
  const timer = opts.frequencyMs > 0 ? setInterval(() => line(false), opts.frequencyMs) : undefined;
  timer?.unref();
  return {
    onProgress: (d, t) => {
      done = d;
      total = t;
    },
    done: () => {
      if (timer === undefined) return;
      clearInterval(timer);
      line(true);
    },
  };
}
