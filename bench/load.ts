/**
 * bench/load: many concurrent clients against a real `cachegate serve` child process on the embedded
 * local backend (proxy mode on, rate limits off), mixing POST /v1/presign (upload, download, head)
 * with ~1 MB proxy PUT and GET (/v1/cache/<project>/<key>) on a bounded set of keys.
 *
 *   node bench/load.ts            (200 clients, 60 s after a 10 s warm-up)
 *   node bench/load.ts [--clients 200] [--duration 60] [--warmup 10] [--keys 64] [--size 1048576]
 *                      [--mix upload=20,download=20,head=20,put=20,get=20] [--log-level info]
 *                      [--rate-limit 0|none] [--seed N] [--env NAME=VALUE …(service environment)] [--no-gc]
 *
 * Every proxy GET is checked against what was PUT: each body carries its key and a version number
 * and a pattern derived from them, and the version a GET returns must be one that could be the
 * current one at that moment (not overwritten by a PUT that began after it ended and finished before
 * the GET began). A 404 counts as expected only while no PUT of that key has finished.
 *
 * Reports requests, errors and p50/p90/p99/max latency per kind, the service's RSS
 * (/proc/<pid>/status VmRSS) and V8 heap (its own /metrics) after warm-up, after the run and at
 * the peak, and exits 1 when there was any error or content mismatch, or when RSS after the run is
 * above 1.10 × RSS after warm-up. Results go to bench/results/load-<time>.json.
 *
 * test/integration/load.test.ts runs the same harness (runLoad) short.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, request, type IncomingMessage } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { rng } from '../test/support/rng.ts';

const ROOT = resolve(import.meta.dirname, '..');
const TOKEN = 'glrt-loadloadload0001';
const PROJECT = '7';

export const KINDS = ['presign_upload', 'presign_download', 'presign_head', 'proxy_put', 'proxy_get'] as const;
export type Kind = (typeof KINDS)[number];

export interface LoadOptions {
  clients: number;
  durationSeconds: number;
  warmupSeconds: number;
  /** Distinct keys the proxy PUT/GET and presigns use. */
  keys: number;
  /** Size of a proxy PUT body in bytes; each version varies it by a few KiB below this. */
  objectSize: number;
  /** Relative weights of the request kinds. */
  mix: Record<Kind, number>;
  /** `[cachegate] log_level` of the service (info = one access-log line per request). */
  logLevel: string;
  /** `[cachegate] rate_limit`; undefined leaves the key out of the configuration. */
  rateLimit: number | undefined;
  /** Quiet time before each memory sample, so that finished requests' buffers can be released. */
  settleMs: number;
  /**
   * Before each memory sample, make the service run a full garbage collection (through the inspector,
   * which the service is then started with, on 127.0.0.1 only). Without it an idle process keeps the
   * Buffers of finished requests until its next GC, and RSS measures garbage rather than growth.
   */
  gcBeforeSample: boolean;
  seed: number;
  /** Extra environment of the service process (e.g. MALLOC_ARENA_MAX to study RSS). */
  serviceEnv?: Record<string, string>;
  /** Progress lines (the bench prints them; the test passes them to t.diagnostic). */
  onProgress?: (line: string) => void;
}

export const DEFAULT_OPTIONS: LoadOptions = {
  clients: 200,
  durationSeconds: 60,
  warmupSeconds: 10,
  keys: 64,
  objectSize: 1 << 20,
  mix: { presign_upload: 20, presign_download: 20, presign_head: 20, proxy_put: 20, proxy_get: 20 },
  logLevel: 'info',
  rateLimit: 0,
  settleMs: 2000,
  gcBeforeSample: true,
  seed: 1,
};

export interface KindStats {
  requests: number;
  errors: number;
  /** proxy GET: 404 before any PUT of that key had finished. */
  expected404: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface MemorySample {
  /** VmRSS, after the forced GC when gcBeforeSample. */
  rssBytes: number;
  /** VmRSS before that GC (the same as rssBytes without gcBeforeSample). */
  rssBeforeGcBytes: number;
  heapUsedBytes?: number;
  heapTotalBytes?: number;
  externalBytes?: number;
}

export interface LoadResult {
  options: Omit<LoadOptions, 'onProgress'>;
  seconds: number;
  requestsPerSecond: number;
  kinds: Record<Kind, KindStats>;
  totalRequests: number;
  /** Non-2xx (other than an expected 404), network errors and content mismatches, warm-up included. */
  errors: number;
  warmupErrors: number;
  /** GETs whose bytes were not those of a PUT that could be the current one. */
  contentMismatches: number;
  /** proxy GETs whose body was compared in full. */
  contentChecks: number;
  /** The first few errors, for the report. */
  errorSamples: string[];
  memory: {
    afterWarmup: MemorySample;
    afterRun: MemorySample;
    peakRssBytes: number;
    rssRatio: number;
    /** RSS in MiB every 5 s from the end of warm-up, to tell a plateau from a climb. */
    rssTimelineMiB: number[];
  };
  /** CPU seconds spent during the run by the service and by this load generator (2 cores in all). */
  cpuSeconds: { service: number; client: number };
  /** The service's exit, when it died during the run. */
  serviceExit?: string;
}

// ---------------------------------------------------------------------------------------------
// Bodies: [ "CGLD" | key index u32 | version u32 | size u32 ] + pattern bytes. The pattern of
// version v is a rotation of one random buffer, so each version differs from every other
// everywhere, and checking a body costs memcmp, not a hash.

const HEADER = 16;
const MAGIC = 0x43474c44; // "CGLD"

class Bodies {
  readonly pattern: Buffer;
  readonly objectSize: number;

  constructor(objectSize: number) {
    this.objectSize = objectSize;
    this.pattern = randomBytes(Math.max(objectSize, 4096) + 4099);
  }

  /** Sizes vary with the version (up to 60 KiB below objectSize), so a mixed-up length shows. */
  sizeOf(version: number): number {
    return Math.max(HEADER + 1, this.objectSize - (version % 16) * 4096);
  }

  private offset(key: number, version: number): number {
    return (key * 7919 + version * 4099) % (this.pattern.length - 1);
  }

  make(key: number, version: number): Buffer {
    const size = this.sizeOf(version);
    const buf = Buffer.allocUnsafe(size);
    buf.writeUInt32BE(MAGIC, 0);
    buf.writeUInt32BE(key, 4);
    buf.writeUInt32BE(version, 8);
    buf.writeUInt32BE(size, 12);
    let pos = HEADER;
    let src = this.offset(key, version);
    while (pos < size) {
      const n = Math.min(size - pos, this.pattern.length - src);
      this.pattern.copy(buf, pos, src, src + n);
      pos += n;
      src = 0;
    }
    return buf;
  }

  /** Checks a whole body; returns its version, or a reason it is not a body of this key. */
  check(key: number, body: Buffer): { version: number } | { reason: string } {
    if (body.length < HEADER) return { reason: `body of ${body.length} bytes is shorter than its header` };
    if (body.readUInt32BE(0) !== MAGIC) return { reason: 'body does not start with the load-test header' };
    const k = body.readUInt32BE(4);
    const version = body.readUInt32BE(8);
    const size = body.readUInt32BE(12);
    if (k !== key) return { reason: `body of key ${k} returned for key ${key}` };
    if (size !== this.sizeOf(version) || body.length !== size) return { reason: `version ${version}: ${body.length} bytes, expected ${this.sizeOf(version)}` };
    let pos = HEADER;
    let src = this.offset(key, version);
    while (pos < size) {
      const n = Math.min(size - pos, this.pattern.length - src);
      if (!body.subarray(pos, pos + n).equals(this.pattern.subarray(src, src + n))) return { reason: `version ${version}: bytes differ in ${pos}–${pos + n}` };
      pos += n;
      src = 0;
    }
    return { version };
  }
}

// ---------------------------------------------------------------------------------------------
// What each key may hold. `seq` orders events; a GET that starts after PUT w finished may not
// return a version v whose PUT finished before w started.

interface PutRecord {
  start: number;
  /** undefined while in flight, Infinity when it failed (it may or may not have been stored). */
  end?: number;
}

class KeyStates {
  private seq = 0;
  private readonly puts: Array<Map<number, PutRecord>>;
  private readonly nextVersion: number[];
  /** Highest start seq of a PUT that has finished, per key (-1: none). */
  private readonly maxStartFinished: number[];

  constructor(keys: number) {
    this.puts = Array.from({ length: keys }, () => new Map());
    this.nextVersion = new Array<number>(keys).fill(0);
    this.maxStartFinished = new Array<number>(keys).fill(-1);
  }

  beginPut(key: number): { version: number; rec: PutRecord } {
    const version = ++this.nextVersion[key];
    const rec: PutRecord = { start: ++this.seq };
    this.puts[key].set(version, rec);
    return { version, rec };
  }

  endPut(key: number, rec: PutRecord, ok: boolean): void {
    if (!ok) {
      rec.end = Infinity;
      return;
    }
    rec.end = ++this.seq;
    if (rec.start > this.maxStartFinished[key]) this.maxStartFinished[key] = rec.start;
  }

  beginGet(key: number): number {
    ++this.seq;
    return this.maxStartFinished[key];
  }

  /** undefined when `version` may be what a GET that began with `snapshot` sees. */
  judge(key: number, snapshot: number, version: number): string | undefined {
    const rec = this.puts[key].get(version);
    if (!rec) return `version ${version} of key ${key} was never PUT`;
    if (rec.end !== undefined && rec.end !== Infinity && snapshot > rec.end) {
      return `stale read of key ${key}: version ${version} had been overwritten by a PUT that finished before the GET began`;
    }
    return undefined;
  }

  /** A 404 is right only while no PUT of the key had finished when the GET began. */
  judge404(snapshot: number): string | undefined {
    return snapshot === -1 ? undefined : 'lost write: 404 after a PUT of this key had finished';
  }
}

// ---------------------------------------------------------------------------------------------

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, i)] * 100) / 100;
}

class Latencies {
  private data = new Float64Array(4096);
  length = 0;

  add(ms: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = ms;
  }

  sorted(): Float64Array {
    return this.data.slice(0, this.length).sort();
  }
}

interface Phase {
  counting: boolean;
  requests: Record<Kind, number>;
  errors: Record<Kind, number>;
  expected404: Record<Kind, number>;
  latencies: Record<Kind, Latencies>;
}

function newPhase(counting: boolean): Phase {
  const per = <T>(f: () => T): Record<Kind, T> => Object.fromEntries(KINDS.map((k) => [k, f()])) as Record<Kind, T>;
  return { counting, requests: per(() => 0), errors: per(() => 0), expected404: per(() => 0), latencies: per(() => new Latencies()) };
}

interface Reply {
  status: number;
  body: Buffer;
}

/** One request over the keep-alive agent; resolves with the whole body, rejects on a network error. */
function send(agent: Agent, base: URL, method: string, path: string, headers: Record<string, string | number>, body?: Buffer): Promise<Reply> {
  return new Promise((res, rej) => {
    const req = request({ agent, host: base.hostname, port: base.port, method, path, headers }, (r: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let n = 0;
      r.on('data', (c: Buffer) => {
        chunks.push(c);
        n += c.length;
      });
      r.on('end', () => res({ status: r.statusCode ?? 0, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, n) }));
      r.on('error', rej);
      r.on('aborted', () => rej(new Error('response aborted')));
    });
    req.on('error', rej);
    req.end(body);
  });
}

// ---------------------------------------------------------------------------------------------
// The service as a child process.

interface Service {
  child: ChildProcess;
  url: URL;
  dir: string;
  exit: string | undefined;
  /** ws://127.0.0.1:PORT/… of the service's inspector, when started with it. */
  inspector: string | undefined;
}

function serviceToml(opts: LoadOptions): string {
  return [
    '[cachegate]',
    'log_format = "json"',
    `log_level = "${opts.logLevel}"`,
    'proxy = true',
    `local_signing_key = "load-bench-${randomBytes(8).toString('hex')}"`,
    ...(opts.rateLimit === undefined ? [] : [`rate_limit = ${opts.rateLimit}`]),
    '',
    '[[runners]]',
    '  name = "load"',
    `  token = "${TOKEN}"`,
    '  [runners.cache]',
    '    Type = "local"',
    '',
  ].join('\n');
}

async function startService(opts: LoadOptions): Promise<Service> {
  const dir = await mkdtemp(join(tmpdir(), 'cachegate-load-'));
  await writeFile(join(dir, 'config.toml'), serviceToml(opts));
  const nodeFlags = opts.gcBeforeSample ? ['--inspect=127.0.0.1:0'] : [];
  const child = spawn(process.execPath, [...nodeFlags, 'bin/cachegate.js', 'serve', '--config', join(dir, 'config.toml'), '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')], {
    cwd: ROOT,
    env: { ...process.env, CACHEGATE_CONFIG: '', ...opts.serviceEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const svc: Service = { child, url: new URL('http://127.0.0.1'), dir, exit: undefined, inspector: undefined };
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
    svc.inspector ??= /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]+)/.exec(err)?.[1];
  });
  await new Promise<void>((res, rej) => {
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /listening on (http:\/\/[0-9.:]+)/.exec(out);
      if (m) {
        child.stdout?.off('data', onData);
        child.stdout?.resume(); // keep draining its access log
        svc.url = new URL(m[1]);
        res();
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code, signal) => {
      svc.exit = `exited with ${code ?? signal}: ${err.slice(-2000)}`;
      rej(new Error(`cachegate serve ${svc.exit}\n${out.slice(-2000)}`));
    });
  });
  return svc;
}

async function stopService(svc: Service): Promise<void> {
  if (svc.exit === undefined) {
    const exited = new Promise<void>((res) => svc.child.once('exit', () => res()));
    svc.child.kill('SIGTERM');
    const timer = setTimeout(() => svc.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  await rm(svc.dir, { recursive: true, force: true });
}

/** user + system CPU seconds of a process (/proc/<pid>/stat; clock ticks of 1/100 s on Linux). */
async function cpuOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** One inspector command on a fresh session (Node's global WebSocket). */
function inspectorCall(url: string, method: string): Promise<void> {
  return new Promise((res, rej) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => {
      ws.close();
      rej(new Error(`inspector: no answer to ${method}`));
    }, 30_000);
    ws.onopen = () => ws.send(JSON.stringify({ id: 1, method }));
    ws.onmessage = (ev: MessageEvent) => {
      const msg = JSON.parse(String(ev.data)) as { id?: number; error?: { message: string } };
      if (msg.id !== 1) return;
      clearTimeout(timer);
      ws.close();
      if (msg.error) rej(new Error(`inspector: ${method}: ${msg.error.message}`));
      else res();
    };
    ws.onerror = () => {
      clearTimeout(timer);
      rej(new Error(`inspector: cannot connect to ${url}`));
    };
  });
}

async function memorySample(svc: Service, agent: Agent, gc: boolean, settleMs: number): Promise<MemorySample> {
  const before = await rssOf(svc.child.pid as number);
  if (gc) {
    if (!svc.inspector) throw new Error('the service was not started with an inspector: cannot force a GC');
    await inspectorCall(svc.inspector, 'HeapProfiler.collectGarbage');
    await inspectorCall(svc.inspector, 'HeapProfiler.collectGarbage'); // what the first one finalized
    await new Promise((r) => setTimeout(r, Math.min(settleMs, 500)));
  }
  const sample: MemorySample = { rssBytes: await rssOf(svc.child.pid as number), rssBeforeGcBytes: before };
  try {
    const r = await send(agent, svc.url, 'GET', '/metrics', {});
    const text = r.body.toString('utf8');
    const metric = (name: string): number | undefined => {
      const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(text);
      return m ? Number(m[1]) : undefined;
    };
    sample.heapUsedBytes = metric('cachegate_nodejs_heap_size_used_bytes');
    sample.heapTotalBytes = metric('cachegate_nodejs_heap_size_total_bytes');
    sample.externalBytes = metric('cachegate_nodejs_external_memory_bytes');
  } catch {
    // heap figures are a bonus; RSS is what is judged
  }
  return sample;
}

// ---------------------------------------------------------------------------------------------

export async function runLoad(given: Partial<LoadOptions> = {}): Promise<LoadResult> {
  const opts: LoadOptions = { ...DEFAULT_OPTIONS, ...given, mix: { ...DEFAULT_OPTIONS.mix, ...given.mix } };
  const progress = opts.onProgress ?? (() => undefined);
  const bodies = new Bodies(opts.objectSize);
  const states = new KeyStates(opts.keys);
  const svc = await startService(opts);
  const newAgent = (): Agent => new Agent({ keepAlive: true, maxSockets: opts.clients + 4 });
  let agent = newAgent();
  const auth = `Bearer ${TOKEN}`;
  const errorSamples: string[] = [];
  let contentMismatches = 0;
  let contentChecks = 0;
  let phase = newPhase(false);
  let peakRss = 0;
  let sampling = false;
  const timeline: number[] = [];
  let ticks = 0;

  const totalWeight = KINDS.reduce((s, k) => s + opts.mix[k], 0);
  const pick = (r: number): Kind => {
    let x = r * totalWeight;
    for (const k of KINDS) {
      x -= opts.mix[k];
      if (x < 0) return k;
    }
    return KINDS[KINDS.length - 1];
  };

  const fail = (kind: Kind, what: string): void => {
    phase.errors[kind]++;
    if (errorSamples.length < 20) errorSamples.push(`${kind}: ${what}`);
  };

  const keyPath = (key: number): string => `/v1/cache/${PROJECT}/load/key-${key}`;

  async function one(kind: Kind, key: number): Promise<void> {
    const started = performance.now();
    let ok = true;
    try {
      switch (kind) {
        case 'presign_upload':
        case 'presign_download':
        case 'presign_head': {
          const operation = kind.slice('presign_'.length);
          const body = Buffer.from(JSON.stringify({ operation, key: `load/key-${key}`, projectId: PROJECT }));
          const r = await send(agent, svc.url, 'POST', '/v1/presign', { authorization: auth, 'content-type': 'application/json', 'content-length': body.length }, body);
          if (r.status !== 200) {
            ok = false;
            fail(kind, `${r.status} ${r.body.toString('utf8').slice(0, 200)}`);
          } else {
            const answer = JSON.parse(r.body.toString('utf8')) as { url?: unknown };
            if (typeof answer.url !== 'string') {
              ok = false;
              fail(kind, `200 without url: ${r.body.toString('utf8').slice(0, 200)}`);
            }
          }
          break;
        }
        case 'proxy_put': {
          const { version, rec } = states.beginPut(key);
          const body = bodies.make(key, version);
          let stored = false;
          try {
            const r = await send(agent, svc.url, 'PUT', keyPath(key), { authorization: auth, 'content-type': 'application/octet-stream', 'content-length': body.length }, body);
            stored = r.status === 200;
            if (!stored) {
              ok = false;
              fail(kind, `${r.status} ${r.body.toString('utf8').slice(0, 200)}`);
            }
          } finally {
            states.endPut(key, rec, stored);
          }
          break;
        }
        case 'proxy_get': {
          const snapshot = states.beginGet(key);
          const r = await send(agent, svc.url, 'GET', keyPath(key), { authorization: auth });
          if (r.status === 404) {
            const wrong = states.judge404(snapshot);
            if (wrong) {
              ok = false;
              contentMismatches++;
              fail(kind, wrong);
            } else if (phase.counting) phase.expected404[kind]++;
          } else if (r.status !== 200) {
            ok = false;
            fail(kind, `${r.status} ${r.body.toString('utf8').slice(0, 200)}`);
          } else {
            contentChecks++;
            const checked = bodies.check(key, r.body);
            const wrong = 'reason' in checked ? checked.reason : states.judge(key, snapshot, checked.version);
            if (wrong) {
              ok = false;
              contentMismatches++;
              fail(kind, wrong);
            }
          }
          break;
        }
      }
    } catch (err) {
      ok = false;
      fail(kind, `network error: ${(err as Error).message}`);
    }
    if (phase.counting) {
      phase.requests[kind]++;
      if (ok) phase.latencies[kind].add(performance.now() - started);
    }
  }

  async function drive(seconds: number, seedOffset: number): Promise<void> {
    const deadline = performance.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: opts.clients }, async (_, i) => {
        const r = rng(opts.seed * 1_000_003 + seedOffset * 10_007 + i);
        while (performance.now() < deadline && svc.exit === undefined) {
          await one(pick(r()), Math.floor(r() * opts.keys));
        }
      }),
    );
  }

  const sampler = setInterval(() => {
    if (svc.exit !== undefined) return;
    const tick = ticks++;
    void rssOf(svc.child.pid as number).then((rss) => {
      if (rss > peakRss) peakRss = rss;
      if (sampling && tick % 20 === 0) timeline.push(Math.round(rss / 1048576));
    }, () => undefined);
  }, 250);
  svc.child.once('exit', (code, signal) => {
    svc.exit = `cachegate serve exited during the run with ${code ?? signal}`;
  });

  let result: LoadResult;
  try {
    progress(`service ${svc.url.origin} (pid ${svc.child.pid}); warm-up: ${opts.clients} clients for ${opts.warmupSeconds} s`);
    await drive(opts.warmupSeconds, 1);
    const warmupErrors = KINDS.reduce((s, k) => s + phase.errors[k], 0);
    await new Promise((r) => setTimeout(r, opts.settleMs));
    const afterWarmup = await memorySample(svc, agent, opts.gcBeforeSample, opts.settleMs);
    progress(`after warm-up: RSS ${mib(afterWarmup.rssBytes)} MiB, heap used ${mib(afterWarmup.heapUsedBytes)} MiB; run: ${opts.clients} clients for ${opts.durationSeconds} s`);

    // Fresh connections for the run: the warm-up's may have idled past the server's keep-alive
    // timeout during the memory sample, and reusing one as the server closes it is a spurious reset.
    agent.destroy();
    agent = newAgent();
    phase = newPhase(true);
    peakRss = afterWarmup.rssBytes;
    sampling = true;
    ticks = 0;
    const t0 = performance.now();
    const serviceCpu0 = await cpuOf(svc.child.pid as number);
    const clientCpu0 = process.cpuUsage();
    await drive(opts.durationSeconds, 2);
    const seconds = (performance.now() - t0) / 1000;
    const clientCpu = process.cpuUsage(clientCpu0);
    const cpuSeconds = {
      service: Math.round(((await cpuOf(svc.child.pid as number)) - serviceCpu0) * 10) / 10,
      client: Math.round(((clientCpu.user + clientCpu.system) / 1e6) * 10) / 10,
    };
    const runPhase = phase;
    phase = newPhase(false);
    await new Promise((r) => setTimeout(r, opts.settleMs));
    if (svc.exit !== undefined) throw new Error(svc.exit);
    const afterRun = await memorySample(svc, agent, opts.gcBeforeSample, opts.settleMs);
    if (afterRun.rssBytes > peakRss) peakRss = afterRun.rssBytes;

    const kinds = Object.fromEntries(
      KINDS.map((k) => {
        const s = runPhase.latencies[k].sorted();
        return [k, {
          requests: runPhase.requests[k], errors: runPhase.errors[k], expected404: runPhase.expected404[k],
          p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: percentile(s, 100),
        }];
      }),
    ) as Record<Kind, KindStats>;
    const totalRequests = KINDS.reduce((s, k) => s + kinds[k].requests, 0);
    const runErrors = KINDS.reduce((s, k) => s + kinds[k].errors, 0);
    const { onProgress: _drop, ...shown } = opts;
    result = {
      options: shown,
      seconds: Math.round(seconds * 100) / 100,
      requestsPerSecond: Math.round(totalRequests / seconds),
      kinds,
      totalRequests,
      errors: runErrors + warmupErrors,
      warmupErrors,
      contentMismatches,
      contentChecks,
      errorSamples,
      cpuSeconds,
      memory: {
        afterWarmup, afterRun, peakRssBytes: peakRss,
        rssRatio: Math.round((afterRun.rssBytes / afterWarmup.rssBytes) * 10000) / 10000,
        rssTimelineMiB: timeline,
      },
    };
  } finally {
    clearInterval(sampler);
    agent.destroy();
    await stopService(svc);
  }
  return result;
}

function mib(bytes: number | undefined): string {
  return bytes === undefined ? '?' : (bytes / 1048576).toFixed(1);
}

/** A Markdown table of one result (for the report and docs/performance.md). */
export function formatTable(r: LoadResult): string {
  const lines = [
    '| kind | requests | errors | p50 ms | p90 ms | p99 ms | max ms |',
    '|---|---|---|---|---|---|---|',
    ...KINDS.map((k) => {
      const s = r.kinds[k];
      const extra = s.expected404 > 0 ? ` (+${s.expected404} expected 404)` : '';
      return `| ${k} | ${s.requests}${extra} | ${s.errors} | ${s.p50} | ${s.p90} | ${s.p99} | ${s.max} |`;
    }),
    `| **all** | ${r.totalRequests} (${r.requestsPerSecond}/s) | ${r.errors} | | | | |`,
  ];
  const m = r.memory;
  lines.push(
    '',
    `RSS after warm-up ${mib(m.afterWarmup.rssBytes)} MiB, after the run ${mib(m.afterRun.rssBytes)} MiB (×${m.rssRatio}), peak ${mib(m.peakRssBytes)} MiB` +
      (r.options.gcBeforeSample ? ` (samples after a forced GC; before it ${mib(m.afterWarmup.rssBeforeGcBytes)} and ${mib(m.afterRun.rssBeforeGcBytes)} MiB)` : '') +
      '; ' +
      `V8 heap used ${mib(m.afterWarmup.heapUsedBytes)} → ${mib(m.afterRun.heapUsedBytes)} MiB; ` +
      `content checks ${r.contentChecks}, mismatches ${r.contentMismatches}; ` +
      `CPU during the run: service ${r.cpuSeconds.service} s, load generator ${r.cpuSeconds.client} s (of ${Math.round(r.seconds * 2)} core-seconds).`,
  );
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string', default: String(DEFAULT_OPTIONS.clients) },
      duration: { type: 'string', default: String(DEFAULT_OPTIONS.durationSeconds) },
      warmup: { type: 'string', default: String(DEFAULT_OPTIONS.warmupSeconds) },
      keys: { type: 'string', default: String(DEFAULT_OPTIONS.keys) },
      size: { type: 'string', default: String(DEFAULT_OPTIONS.objectSize) },
      mix: { type: 'string' },
      'log-level': { type: 'string', default: DEFAULT_OPTIONS.logLevel },
      'rate-limit': { type: 'string', default: '0' },
      seed: { type: 'string', default: String(DEFAULT_OPTIONS.seed) },
      env: { type: 'string', multiple: true },
      'no-gc': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const mix = { ...DEFAULT_OPTIONS.mix };
  for (const part of (values.mix ?? '').split(',').filter(Boolean)) {
    const [name, weight] = part.split('=');
    const kind = (KINDS as readonly string[]).includes(name) ? (name as Kind) : (KINDS.find((k) => k.endsWith(`_${name}`)) as Kind | undefined);
    if (!kind || !(Number(weight) >= 0)) throw new Error(`--mix: "${part}" is not KIND=WEIGHT (kinds: ${KINDS.join(', ')})`);
    mix[kind] = Number(weight);
  }
  const opts: Partial<LoadOptions> = {
    clients: Number(values.clients),
    durationSeconds: Number(values.duration),
    warmupSeconds: Number(values.warmup),
    keys: Number(values.keys),
    objectSize: Number(values.size),
    mix,
    logLevel: values['log-level'],
    rateLimit: values['rate-limit'] === 'none' ? undefined : Number(values['rate-limit']),
    seed: Number(values.seed),
    gcBeforeSample: !values['no-gc'],
    serviceEnv: Object.fromEntries((values.env ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])),
    onProgress: (line) => process.stdout.write(line + '\n'),
  };
  const loadBefore = loadavg()[0];
  const r = await runLoad(opts);
  const summary = { date: new Date().toISOString(), node: process.version, cpus: cpus().length, loadAverageBefore: loadBefore, ...r };
  await mkdir(join(ROOT, 'bench/results'), { recursive: true });
  const out = join(ROOT, 'bench/results', `load-${summary.date.slice(0, 19).replace(/:/g, '')}.json`);
  await writeFile(out, JSON.stringify(summary, null, 2) + '\n');
  process.stdout.write(`\n${formatTable(r)}\n\nwritten to ${out}\n`);
  for (const e of r.errorSamples) process.stdout.write(`error: ${e}\n`);
  const problems: string[] = [];
  if (r.errors > 0) problems.push(`${r.errors} errors (${r.warmupErrors} during warm-up)`);
  if (r.contentMismatches > 0) problems.push(`${r.contentMismatches} content mismatches`);
  if (r.memory.afterRun.rssBytes > 1.1 * r.memory.afterWarmup.rssBytes) problems.push(`RSS after the run is ${r.memory.rssRatio} × RSS after warm-up (limit 1.10)`);
  if (problems.length > 0) {
    process.stdout.write(`FAIL: ${problems.join('; ')}\n`);
    return 1;
  }
  process.stdout.write('OK: no errors, RSS within 10% of its post-warm-up value\n');
  return 0;
}

if (import.meta.main) process.exitCode = await main();
