/**
 * Logging through pino, in GitLab Runner's three formats:
 *   json   {"level":"info","msg":"…","time":"…",…}           (logrus JSON field names)
 *   text   time="…" level=info msg="…" key=value            (logrus text)
 *   runner msg  key=value, with WARNING:/ERROR: prefixes      (the runner's human format)
 * Fields that could carry a secret are redacted by name as a second line of defence; the first is
 * that no code path logs a token, a signed URL, a SAS or a key.
 */
import { Writable } from 'node:stream';
import { pino, type Logger, type DestinationStream } from 'pino';
import type { LogFormat, LogLevel } from './config/types.ts';
import { requestContext } from './request-context.ts';

export type { Logger };

const REDACT = [
  'token', 'authorization', 'Authorization', 'url', 'signature', 'secretKey', 'SecretKey', 'accountKey', 'AccountKey',
  'privateKey', 'PrivateKey', 'sessionToken', 'SessionToken', 'env', 'headers.authorization',
]; // top-level names only: wildcard paths cost ~3% of a presign's CPU, and nothing logs nested secrets

const PINO_LEVEL: Record<LogLevel, string> = { trace: 'trace', debug: 'debug', info: 'info', warn: 'warn', error: 'error', fatal: 'fatal', panic: 'fatal' };

export interface LogOptions {
  format: LogFormat;
  level: LogLevel;
  /** Where lines go; default stdout. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(opts: LogOptions): Logger {
  const out = opts.destination ?? process.stdout;
  const base = {
    level: PINO_LEVEL[opts.level],
    base: undefined,
    messageKey: 'msg',
    redact: { paths: REDACT, censor: '[REDACTED]' },
    formatters: { level: (label: string) => ({ level: label }) },
    timestamp: isoTimeCached,
    // Every line written while a request is served carries its id.
    mixin: requestIdField,
  };
  const sink: NodeJS.WritableStream | DestinationStream = out === process.stdout ? bufferedStdout() : out;
  if (opts.format === 'json') return pino(base, sink as DestinationStream);
  return pino(base, new LineFormatter(opts.format, sink as NodeJS.WritableStream));
}

/**
 * pino's isoTime, rendered once per millisecond: under load many lines share a millisecond, and
 * formatting a Date is a third of a log line's cost (measured).
 */
let lastMs = -1;
let lastTime = '';
function isoTimeCached(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

/** A fresh object each call: pino merges the line's fields into it. */
function requestIdField(): object {
  const store = requestContext.getStore();
  return store ? { reqId: store.reqId } : {};
}

/**
 * stdout through sonic-boom, batching lines up to 8 KiB and flushing at least every 200 ms (and at
 * exit), instead of one write system call per line (several µs of a presign under load).
 */
function bufferedStdout(): DestinationStream {
  const dest = pino.destination({ dest: 1, sync: false, minLength: 8 * 1024 });
  setInterval(() => dest.flush(() => undefined), 200).unref();
  process.once('exit', () => {
    try {
      dest.flushSync();
    } catch {
      // a write in flight at exit: nothing more can be done synchronously
    }
  });
  return dest;
}

/** Re-renders pino's JSON lines as logrus text or the runner's format. */
class LineFormatter extends Writable {
  private readonly format: 'text' | 'runner';
  private readonly out: NodeJS.WritableStream;

  constructor(format: 'text' | 'runner', out: NodeJS.WritableStream) {
    super({ decodeStrings: false });
    this.format = format;
    this.out = out;
  }

  override _write(chunk: string | Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    let rendered = '';
    for (const line of text.split('\n')) {
      if (line === '') continue;
      try {
        rendered += this.render(JSON.parse(line) as Record<string, unknown>) + '\n';
      } catch {
        rendered += line + '\n';
      }
    }
    if (isSonicBoom(this.out)) {
      this.out.write(rendered); // buffered by sonic-boom; it takes no callback
      cb();
    } else {
      this.out.write(rendered, cb as (err?: Error | null) => void);
    }
  }

  private render(rec: Record<string, unknown>): string {
    const { level, msg, time, ...fields } = rec;
    const kv = Object.entries(fields).map(([k, v]) => `${k}=${fmtValue(v)}`).join(' ');
    if (this.format === 'text') {
      return `time=${JSON.stringify(time)} level=${String(level)} msg=${JSON.stringify(msg ?? '')}${kv ? ' ' + kv : ''}`;
    }
    const prefix = level === 'warn' ? 'WARNING: ' : level === 'error' ? 'ERROR: ' : level === 'fatal' ? 'FATAL: ' : '';
    return `${prefix}${String(msg ?? '')}${kv ? '  ' + kv : ''}`;
  }
}

function isSonicBoom(s: NodeJS.WritableStream): boolean {
  return typeof (s as unknown as { flushSync?: unknown }).flushSync === 'function';
}

function fmtValue(v: unknown): string {
  if (typeof v === 'string') return /^[A-Za-z0-9_.:/@+-]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/** A logger that drops everything (tests, one-shot commands). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
