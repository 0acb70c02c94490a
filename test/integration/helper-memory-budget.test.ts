/**
 * The helper's memory budget end to end (src/archive/memory-budget.ts), real `cachegate` processes:
 * under a small budget tar.zst creation uses fewer frame workers and buffers and still writes the
 * same bytes, the download keeps at most 4 ranged parts in flight (counted by the server), and
 * `--concurrency` still wins over the budget. A bad value is refused before anything runs.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN, cachegate } from '../support/cli.ts';

const MiB = 1024 * 1024;

describe('helper memory budget', () => {
  let work: string;
  let src: string;
  let served: Buffer;
  let inFlight = 0;
  let maxInFlight = 0;
  let server: http.Server;
  let url: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'cg-memory-budget-'));
    src = join(work, 'src');
    await mkdir(join(src, 'dir'), { recursive: true });
    // 18 MiB of mixed data: several 4 MiB frames, so the worker count matters
    for (let i = 0; i < 6; i++) await writeFile(join(src, 'dir', `blob${i}.bin`), Buffer.concat([randomBytes(2 * MiB), Buffer.alloc(MiB, i)]));
    for (let i = 0; i < 200; i++) await writeFile(join(src, 'dir', `f${i}.txt`), `line ${i}\n`.repeat(i));
    served = randomBytes(12 * MiB);
    // Answers ranged GETs after a pause, so that the parts a client allows in flight are all in flight at once.
    server = http.createServer((req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      setTimeout(() => {
        if (!m) {
          res.writeHead(200, { 'content-length': served.length, 'last-modified': new Date().toUTCString() });
          res.end(served);
        } else {
          const start = Number(m[1]);
          const end = Math.min(Number(m[2]), served.length - 1);
          res.writeHead(206, { 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${served.length}`, etag: '"e1"', 'last-modified': new Date().toUTCString() });
          res.end(served.subarray(start, end + 1));
        }
        inFlight--;
      }, 300);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/cache.zip`;
  });
  after(async () => {
    server?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('tar.zst under a 128 MiB budget: the same archive as without one, extracted to the same tree', async () => {
    const archives: Buffer[] = [];
    for (const [name, env] of [['none', { CACHE_HELPER_MEMORY: '0' }], ['small', { CACHE_HELPER_MEMORY: '128MiB' }]] as const) {
      const file = join(work, `${name}.tar.zst`);
      const r = await cachegate(['cache-archiver', '--file', file, '--path', 'dir', '--compression-format', 'tarzstd'], src, env);
      assert.equal(r.status, 0, r.out);
      archives.push(await readFile(file));
    }
    assert.ok(archives[0].length > 4 * MiB, 'several frames');
    assert.ok(archives[0].equals(archives[1]), 'byte-identical archives');
    const dst = join(work, 'x');
    await mkdir(dst);
    const x = await cachegate(['cache-extractor', '--file', join(work, 'small.tar.zst'), '--helper-memory', '128MiB'], dst);
    assert.equal(x.status, 0, x.out);
    const d = spawnSync('diff', ['-r', '--no-dereference', join(src, 'dir'), join(dst, 'dir')], { encoding: 'utf8' });
    assert.equal(d.status, 0, d.stdout + d.stderr);
  });

  for (const [label, args, env, atMost, moreThan] of [
    ['a 128 MiB budget: at most 4 parts in flight', [], { CACHE_HELPER_MEMORY: '128MiB' }, 4, 0],
    ['no budget: the default 16 parts', ['--helper-memory', '0'], {}, 16, 4],
    ['--concurrency wins over the budget', ['--concurrency', '8'], { CACHE_HELPER_MEMORY: '128MiB' }, 8, 4],
  ] as const) {
    it(`download under ${label}`, async () => {
      const dst = join(work, `dl-${label.length}`);
      await mkdir(dst, { recursive: true });
      maxInFlight = 0;
      // not an archive: the download passes its byte counts, then the verification refuses it, and the file stays away
      const r = await cachegate(['cache-extractor', '--file', join(dst, 'cache.zip'), '--url', url, '--chunk-size', String(MiB), ...args], dst, env);
      assert.equal(r.status, 1, r.out);
      assert.match(r.out, /downloaded archive (is corrupt|would be refused)/);
      await assert.rejects(stat(join(dst, 'cache.zip')));
      assert.ok(maxInFlight <= atMost && maxInFlight > moreThan, `${maxInFlight} ranged GETs in flight`);
    });
  }

  it('run as a program, the helper commands get MALLOC_MMAP_THRESHOLD_=65536 from the launcher, serve does not', async () => {
    // a server that never answers holds the helper in its download, so its environment can be read
    const hold = http.createServer(() => {});
    await new Promise<void>((r) => hold.listen(0, '127.0.0.1', r));
    try {
      for (const [argv, want] of [[['cache-extractor', '--file', 'c.zip', '--url', `http://127.0.0.1:${(hold.address() as AddressInfo).port}/c.zip`], '65536'], [['serve', '--listen', '127.0.0.1:0', '--data-dir', join(work, 'data')], undefined]] as const) {
        const child = spawn(BIN, argv, { cwd: work, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' }, stdio: 'ignore' });
        try {
          // the shell line exec()s Node: same pid; read once Node has replaced the shell
          let environ = '';
          for (let i = 0; i < 100 && environ === ''; i++) {
            await new Promise((r) => setTimeout(r, 50));
            if (readlinkSync(`/proc/${child.pid}/exe`).endsWith('/node')) environ = readFileSync(`/proc/${child.pid}/environ`, 'utf8');
          }
          const vars = Object.fromEntries(environ.split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
          assert.ok(environ.length > 0, 'read the environment');
          assert.equal(vars.MALLOC_MMAP_THRESHOLD_, want, argv[0]);
        } finally {
          child.kill('SIGKILL');
        }
      }
    } finally {
      hold.closeAllConnections();
      hold.close();
    }
  });

  it('refuses a budget it cannot read', async () => {
    const r = await cachegate(['cache-extractor', '--file', join(work, 'none.tar.zst'), '--helper-memory', 'lots'], work);
    assert.equal(r.status, 1);
    assert.match(r.out, /--helper-memory: "lots" is not a memory size/);
    const a = await cachegate(['cache-archiver', '--file', join(work, 'y.zip'), '--path', 'dir'], src, { CACHE_HELPER_MEMORY: '12 parsecs' });
    assert.equal(a.status, 1);
    assert.match(a.out, /CACHE_HELPER_MEMORY: "12 parsecs" is not a memory size/);
  });
});
