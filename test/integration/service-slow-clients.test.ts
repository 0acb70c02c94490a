/**
 * Slow and idle clients (issue 14.5): a stalled upload is cut and leaves no temporary file, headers
 * that never end are cut, a refused upload is answered before its body is read (also with
 * Expect: 100-continue), uploads in flight are capped, and idle connections cannot take /healthz away
 * under a low descriptor limit (a real `cachegate serve` under `prlimit --nofile`).
 * No timing is asserted: each wait is for an event, bounded only by the test's own timeout.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestService, type TestService } from '../support/service.ts';

const TOKEN = 'glrt-slowclient-0001';
const BIN = resolve(import.meta.dirname, '../../bin/cachegate.js');
const RUNNER = `[[runners]]\nname = "r"\ntoken = "${TOKEN}"\n[runners.cache]\nType = "local"\n`;

/** A raw connection: what was received, and a promise for its close. */
interface Raw {
  socket: Socket;
  received: () => string;
  closed: Promise<void>;
}

/** Every raw connection a test opened, destroyed after each suite so that no server waits on one. */
const opened: Socket[] = [];

function open(url: string, first: string): Promise<Raw> {
  const { hostname, port } = new URL(url);
  return new Promise((res, rej) => {
    const socket = connect(Number(port), hostname, () => {
      opened.push(socket);
      socket.write(first);
      res({ socket, received: () => text, closed });
    });
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', () => undefined);
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.once('error', rej);
  });
}

const putHead = (path: string, length: number, extra = ''): string =>
  `PUT ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${length}\r\n${extra}\r\n`;

async function tempFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else if (e.name.startsWith('.tmp-')) found.push(e.name);
    }
  };
  await walk(dir);
  return found;
}

/** Waits until `check` holds, polling; gives up after 60 s (a guard against a hang, not a timing claim). */
async function until(check: () => Promise<boolean> | boolean, what = 'condition'): Promise<void> {
  const giveUp = Date.now() + 60_000;
  while (!(await check())) {
    if (Date.now() > giveUp) assert.fail(`still waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('slow and idle clients', { timeout: 120_000 }, () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ toml: `[cachegate]\nidle_timeout = 1\nheaders_timeout = 1\n${RUNNER}` });
  });
  after(async () => {
    for (const s of opened) s.destroy();
    await svc?.stop();
  });

  it('uploads that stop sending (proxy and /v1/blob) are cut, and leave no temporary file', async () => {
    const auth = `Authorization: Bearer ${TOKEN}\r\n`;
    const presigned = await fetch(`${svc.url}/v1/presign`, {
      method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ operation: 'upload', key: 'stalled-blob', projectId: '1' }),
    }).then((r) => r.json() as Promise<{ url: string; headers: Record<string, string> }>);
    const blobPath = presigned.url.slice(svc.url.length);
    const signed = Object.entries(presigned.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    const conns = await Promise.all([
      open(svc.url, putHead('/v1/cache/1/stalled-1', 1_000_000, auth) + 'x'.repeat(70_000)),
      open(svc.url, putHead('/v1/cache/1/stalled-2', 1_000_000, auth) + 'x'.repeat(10)),
      open(svc.url, putHead(blobPath, 1_000_000, signed) + 'x'.repeat(70_000)),
    ]);
    await Promise.all(conns.map((c) => c.closed)); // they stall, and the service cuts them
    await until(async () => (await tempFiles(svc.dataDir)).length === 0, 'no temporary file');
    for (const path of ['/v1/cache/1/stalled-1', '/v1/cache/1/stalled-2', blobPath.replace(/\?.*/, '')]) {
      await until(() => svc.logs.some((l) => l.includes(`"path":"${path}","status":499`)), `${path} under way, then cut`);
    }
    const get = await fetch(`${svc.url}/v1/cache/1/stalled-1`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(get.status, 404, 'nothing stored');
  });

  it('headers that never end are cut', async () => {
    const c = await open(svc.url, 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    await c.closed;
    assert.doesNotMatch(c.received(), / 200 /);
  });

  it('an unauthenticated PUT is answered 401 before its body is sent, and the connection is closed', async () => {
    const c = await open(svc.url, putHead('/v1/cache/1/k', 50_000_000));
    await c.closed;
    assert.match(c.received(), /^HTTP\/1\.1 401 /);
    assert.match(c.received(), /connection: close/i);
  });

  it('with Expect: 100-continue, a refused upload gets its 401/403 and never a "100 Continue"; an authorized one is invited', async () => {
    const unauth = await open(svc.url, putHead('/v1/cache/1/k', 50_000_000, 'Expect: 100-continue\r\n'));
    await unauth.closed;
    assert.match(unauth.received(), /^HTTP\/1\.1 401 /);
    const badSig = await open(svc.url, putHead('/v1/blob/runner/x/project/1/k?X-Cachegate-Expires=1', 50_000_000, 'Expect: 100-continue\r\n'));
    await badSig.closed;
    assert.match(badSig.received(), /^HTTP\/1\.1 403 /);
    const ok = await open(svc.url, putHead('/v1/cache/1/invited', 5, `Authorization: Bearer ${TOKEN}\r\nExpect: 100-continue\r\n`));
    await until(() => ok.received().length > 0);
    assert.match(ok.received(), /^HTTP\/1\.1 100 Continue/);
    ok.socket.write('hello');
    await until(() => / 200 /.test(ok.received()));
    ok.socket.destroy();
  });
});

describe('a cap on uploads in flight', { timeout: 120_000 }, () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ toml: `[cachegate]\nmax_uploads = 3\nupload_wait = 1\n${RUNNER}` });
  });
  after(async () => {
    for (const s of opened) s.destroy();
    await svc?.stop();
  });

  it('over max_uploads, one more upload waits upload_wait for a slot, then is refused with 503 too_many_uploads and Retry-After, before its body', async () => {
    const auth = `Authorization: Bearer ${TOKEN}\r\n`;
    const held = await Promise.all([1, 2, 3].map((i) => open(svc.url, putHead(`/v1/cache/1/held-${i}`, 1000, auth) + 'x')));
    await until(async () => (await tempFiles(svc.dataDir)).length === 3);
    const res = await fetch(`${svc.url}/v1/cache/1/one-more`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}` }, body: 'abc' });
    assert.equal(res.status, 503);
    assert.ok(res.headers.get('retry-after'));
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'too_many_uploads');
    for (const h of held) h.socket.write('y'.repeat(999)); // the held uploads finish …
    await until(() => held.every((h) => / 200 /.test(h.received())));
    for (const h of held) h.socket.destroy();
    const again = await fetch(`${svc.url}/v1/cache/1/one-more`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}` }, body: 'abc' });
    assert.equal(again.status, 200, '… and their slots are free again');
  });
});

describe('idle connections under a low descriptor limit', { timeout: 120_000 }, () => {
  let dir: string;
  let child: ChildProcess;
  let url: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cachegate-fd-'));
    const cfg = join(dir, 'config.toml');
    // Long header timeout: only the connection cap can keep /healthz reachable here.
    await writeFile(cfg, `[cachegate]\nheaders_timeout = 600\nidle_timeout = 600\nmax_uploads = 8\n${RUNNER}`);
    child = spawn('prlimit', ['--nofile=256:256', process.execPath, BIN, 'serve', '--config', cfg, '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')], {
      env: { PATH: process.env.PATH ?? '', CACHEGATE_LOG_FORMAT: 'text' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    url = await new Promise<string>((res, rej) => {
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) res(m[1]);
      });
      child.on('exit', (code) => rej(new Error(`exited ${code}: ${out}`)));
    });
  });
  after(async () => {
    child?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('400 connections that never finish their headers do not make /healthz fail (nofile = 256)', async () => {
    const idle: Raw[] = [];
    for (let i = 0; i < 400; i++) idle.push(await open(url, 'GET /healthz HTTP/1.1\r\nHost: x\r\n'));
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${url}/healthz`);
      assert.equal(res.status, 200);
    }
    const stillOpen = idle.filter((c) => !c.socket.destroyed).length;
    assert.ok(stillOpen < 400, 'the longest-idle connections were closed to make room');
    for (const c of idle) c.socket.destroy();
  });
});
