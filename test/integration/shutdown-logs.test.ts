/**
 * Log lines are not lost at shutdown: a real `cachegate serve` on an S3 backend that accepts
 * connections and never answers gets a proxy GET (503 after backend_timeout), then SIGTERM right
 * after the answer. The ERROR line and the request line must be on stdout every time, exit 0.
 * Repeated, because the loss was a race (3 runs of ~10 lost them).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';

const BIN = resolve(import.meta.dirname, '../../bin/cachegate.js');
const RUNS = { runner: 10, json: 4 } as const;
const TOKEN = 'glrt-shutdown-logs-0001';

/** A backend that accepts connections and never answers; stop() makes it refuse them from then on. */
async function hangingBackend(): Promise<{ port: number; stop: () => void }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    stop: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

describe('log lines survive SIGTERM', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cachegate-shutdown-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  for (const format of ['runner', 'json'] as const) {
    it(`${format} format: ${RUNS[format]} runs, each with the 503's ERROR and request lines, exit 0`, async () => {
      const cfg = join(dir, `${format}.toml`);
      for (let run = 0; run < RUNS[format]; run++) {
        const backend = await hangingBackend();
        await writeFile(cfg, `[cachegate]\nbackend_timeout = 0.3\nlog_format = "${format}"\n[[runners]]\nname = "r"\ntoken = "${TOKEN}"\n[runners.cache]\nType = "s3"\n` +
          `[runners.cache.s3]\nServerAddress = "127.0.0.1:${backend.port}"\nAccessKey = "AK"\nSecretKey = "SK-not-logged"\nBucketName = "b"\nBucketLocation = "us-east-1"\nInsecure = true\n`);
        const child = spawn(process.execPath, [BIN, 'serve', '--config', cfg, '--listen', '127.0.0.1:0'], { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        const exited = new Promise<number | null>((res) => child.on('exit', res));
        const url = await new Promise<string>((res, rej) => {
          const t = setInterval(() => {
            const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
            if (m) {
              clearInterval(t);
              res(m[1]);
            }
          }, 20);
          setTimeout(() => {
            clearInterval(t);
            rej(new Error(`no listening line: ${out}`));
          }, 20_000);
        });
        const r = await fetch(`${url}/v1/cache/1/k`, { headers: { authorization: `Bearer ${TOKEN}` } });
        await r.text();
        // The backend goes away, so nothing keeps the process alive after SIGTERM: it exits at once,
        // within the log's 200 ms batching interval.
        backend.stop();
        child.kill('SIGTERM');
        assert.equal(r.status, 503);
        assert.equal(await exited, 0, `run ${run}: exit code`);
        const error = format === 'json' ? /"level":"error".*did not answer within 0\.3 s/ : /^ERROR: the s3 backend did not answer within 0\.3 s/m;
        const request = format === 'json' ? /"path":"\/v1\/cache\/1\/k","status":503/ : /^request .*path=\/v1\/cache\/1\/k status=503/m;
        assert.match(out, error, `run ${run}: the ERROR line is missing:\n${out}`);
        assert.match(out, request, `run ${run}: the request line is missing:\n${out}`);
        assert.ok(!out.includes('SK-not-logged'));
      }
    });
  }
});
