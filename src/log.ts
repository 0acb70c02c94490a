/**
 * Logging through pino, in GitLab Runner's three formats:
 *   json   {"level":"info","msg":"…","time":"…",…}           (logrus JSON field names)
 *   text   time="…" level=info msg="…" key=value            (logrus text)
 *   runner msg  key=value, with WARNING:/ERROR: prefixes      (the runner's human format)
 * Fields that could carry a secret are redacted by name as a second line of defence; the first is
 * that no code path logs a token, a signed URL, a SAS or a key.
 */
import { writeSync } from 'node:fs';
import { pino, type Logger, type DestinationStream } from 'pino';
import type { LogFormat, LogLevel } from './config/types.ts';
import { lastIsoMemo } from './iso-time.ts';
import { requestContext, type RequestFacts } from './request-context.ts';

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
  const format = opts.format;
  const logger = format === 'json' ? pino(base, sink as DestinationStream) : pino(base, new LineFormatter(format, sink as NodeJS.WritableStream));
  directSinks.set(logger, { format, write: (line) => (sink as DestinationStream).write(line) });
  return logger;
}

/** The fields of one access-log line (listener.ts): nothing in them can carry a secret. */
export interface AccessFields extends RequestFacts {
  reqId: string;
  method: string;
  path: string;
  status: number;
  ms: number;
}

/** The optional fields, in the order they are written (after ms). */
const FACTS = ['runner', 'project', 'key', 'auth'] as const;

const directSinks = new WeakMap<Logger, { format: LogFormat; write: (line: string) => void }>();

/**
 * Writes the access-log line `request  reqId=… method=… path=… status=… ms=…`: the very line
 * `log.info(fields, 'request')` writes (test/unit/log.test.ts compares the two in every format), but
 * without pino's JSON round trip, which cost more than a tenth of a presign's CPU under load: the
 * fields are known, none needs redaction, so the line is rendered straight from them. A logger not
 * made by createLogger gets log.info.
 */
export function accessLogger(log: Logger): (f: AccessFields) => void {
  const direct = directSinks.get(log);
  if (!direct) return (f) => log.info(f, 'request');
  const { format, write } = direct;
  return (f) => {
    if (log.levelVal > INFO) return;
    const time = nowIso(Date.now());
    if (format === 'json') {
      let facts = '';
      for (const k of FACTS) if (f[k] !== undefined) facts += `,"${k}":${JSON.stringify(f[k])}`;
      write(`{"level":"info","time":"${time}","reqId":${JSON.stringify(f.reqId)},"method":${JSON.stringify(f.method)},"path":${JSON.stringify(f.path)},"status":${f.status},"ms":${f.ms}${facts},"msg":"request"}\n`);
    } else {
      // renderLine's output for these fields, without its generic field loop
      let kv = `reqId=${fmtValue(f.reqId)} method=${fmtValue(f.method)} path=${fmtValue(f.path)} status=${f.status} ms=${f.ms}`;
      for (const k of FACTS) if (f[k] !== undefined) kv += ` ${k}=${fmtValue(f[k])}`;
      write(format === 'text' ? `time=${JSON.stringify(time)} level=info msg="request" ${kv}\n` : `request  ${kv}\n`);
    }
  };
}

const INFO = 30; // pino's numeric level of info

/** pino's isoTime, from the ISO string of the current millisecond. */
const nowIso = lastIsoMemo();
function isoTimeCached(): string {
  return `,"time":"${nowIso(Date.now())}"`;
}

/** A fresh object each call: pino merges the line's fields into it. */
function requestIdField(): object {
  const store = requestContext.getStore();
  return store ? { reqId: store.reqId } : {};
}

/**
 * stdout through sonic-boom, in batches of about 8 KiB, flushed at least every 200 ms and at exit,
 * instead of one write system call per line. The lines are gathered here and handed to sonic-boom
 * a batch at a time: sonic-boom measures the UTF-8 length of its whole pending string on every
 * write, which made each 150-byte line cost 2 µs (measured); a batch of lines costs 0.1 µs a line.
 *
 * At exit nothing asynchronous runs any more: a batch handed to sonic-boom there started an
 * fs.write that never completed, and its flushSync() skips the buffer being written, so the last
 * lines (the 503's ERROR and its request line before a SIGTERM) were lost in about 3 runs of 10.
 * So the exit handler writes what is left itself, synchronously, and `flushLogs()` lets a clean
 * shutdown wait until every line is out.
 */
function bufferedStdout(): DestinationStream {
  const dest = pino.destination({ dest: 1, sync: false, minLength: 0 });
  let lines: string[] = [];
  let pending = 0;
  /** A batch handed to sonic-boom is not written yet ('drain' comes when all are). */
  let busy = false;
  dest.on('drain', () => {
    busy = false;
  });
  const take = (): string => {
    const batch = lines.join('');
    lines = [];
    pending = 0;
    return batch;
  };
  const pass = (): void => {
    if (lines.length === 0) return;
    busy = true;
    dest.write(take());
  };
  setInterval(pass, 200).unref();
  process.once('exit', () => {
    try {
      if (busy) dest.flushSync(); // what sonic-boom still queues (a write under way may be lost: flushLogs() avoids that)
    } catch {
      // nothing more can be done synchronously
    }
    writeAllSync(1, take());
  });
  flushers.add(async () => {
    pass();
    if (busy) await new Promise<void>((resolve) => dest.once('drain', resolve));
  });
  return {
    write(line: string): void {
      lines.push(line);
      pending += line.length;
      if (pending >= BATCH) pass();
    },
  };
}

const flushers = new Set<() => Promise<void>>();

/** Waits until every line logged so far is written (call before a clean exit). */
export async function flushLogs(): Promise<void> {
  await Promise.all([...flushers].map((f) => f()));
}

/** writeSync until all is written; a pipe that is full (EAGAIN) is waited for, briefly, a few times. */
function writeAllSync(fd: number, text: string): void {
  let buf = Buffer.from(text, 'utf8');
  let tries = 0;
  while (buf.length > 0) {
    try {
      buf = buf.subarray(writeSync(fd, buf));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || ++tries > 200) return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}

const BATCH = 8 * 1024;

/**
 * Re-renders pino's JSON lines as logrus text or the runner's format. A plain destination (pino
 * only needs write()), not a stream.Writable: the Writable's buffering and callbacks cost more per
 * line than the rendering (measured: the access log was a tenth of a presign's CPU).
 */
class LineFormatter implements DestinationStream {
  private readonly format: 'text' | 'runner';
  private readonly out: NodeJS.WritableStream;

  constructor(format: 'text' | 'runner', out: NodeJS.WritableStream) {
    this.format = format;
    this.out = out;
  }

  write(text: string): void {
    let rendered = '';
    let from = 0;
    while (from < text.length) {
      let to = text.indexOf('\n', from);
      if (to === -1) to = text.length;
      const line = text.slice(from, to);
      from = to + 1;
      if (line === '') continue;
      try {
        rendered += renderLine(this.format, JSON.parse(line) as Record<string, unknown>) + '\n';
      } catch {
        rendered += line + '\n';
      }
    }
    this.out.write(rendered); // sonic-boom buffers; any other stream queues in order
  }
}

/** One log record as a line of logrus text or of the runner's format (no newline). */
function renderLine(format: 'text' | 'runner', rec: Record<string, unknown>): string {
  const { level, msg, time, ...fields } = rec;
  let kv = '';
  for (const k in fields) kv += `${kv ? ' ' : ''}${k}=${fmtValue(fields[k])}`;
  if (format === 'text') {
    return `time=${JSON.stringify(time)} level=${String(level)} msg=${JSON.stringify(msg ?? '')}${kv ? ' ' + kv : ''}`;
  }
  const prefix = level === 'warn' ? 'WARNING: ' : level === 'error' ? 'ERROR: ' : level === 'fatal' ? 'FATAL: ' : '';
  return `${prefix}${String(msg ?? '')}${kv ? '  ' + kv : ''}`;
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
