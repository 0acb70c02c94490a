/**
 * Issue 6: a download never replaces a good local cache.zip with a bad one. The real
 * `cachegate cache-extractor` process downloads from a local node:http server that truncates the
 * body, flips a byte in the middle, lies in Content-Length (both ways), drops the connection half
 * way, or serves a tar.zst whose tar stream stops at an entry boundary. In every case: exit 1, a
 * message naming what went wrong, the old cache.zip (and metadata.json) byte for byte as they
 * were, no temporary file, nothing extracted. A good archive from the same server is accepted. The
 * verification runs while the bytes arrive, and a bad entry stops the download early.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { createArchiveFile, selectFiles, type ArchiveFormat } from '../../src/archive/index.ts';
import { listZip } from '../../src/archive/zip-reader.ts';

const BIN = resolve(import.meta.dirname, '../../bin/cachegate.js');

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function serve(handler: Handler): Promise<{ url: string; requests: string[]; close: () => Promise<void> }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.headers.range ?? ''}`);
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/cache.zip`,
    requests,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

const headers = (): Record<string, string> => ({ 'last-modified': new Date().toUTCString(), etag: '"v1"', 'x-amz-meta-cachekey': 'new' });

/** The whole body with an honest Content-Length, ignoring Range. */
function whole(data: Buffer): Handler {
  return (_req, res) => {
    res.writeHead(200, { ...headers(), 'content-length': data.length });
    res.end(data);
  };
}

/** Honours single ranges; `cut(start)` may say how many bytes of that range to send before dropping the connection. */
function ranged(data: Buffer, cut: (start: number, end: number) => number | undefined = () => undefined): Handler {
  return (req, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m) return whole(data)(req, res);
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), data.length - 1);
    res.writeHead(206, { ...headers(), 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${data.length}` });
    const n = cut(start, end);
    if (n === undefined) return void res.end(data.subarray(start, end + 1));
    res.write(data.subarray(start, start + n), () => res.socket?.destroy());
  };
}

function run(args: string[], cwd: string): Promise<{ status: number | null; out: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH ?? '' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (status) => res({ status, out }));
  });
}

describe('cache-extractor: a bad download never replaces the local archive', () => {
  let root: string;
  const archives = {} as Record<ArchiveFormat, Buffer>;
  let old: Buffer;
  const OLD_META = '{"cachekey":"old"}';

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'cg-verify-'));
    const tree = join(root, 'tree');
    await mkdir(join(tree, 'src/deep'), { recursive: true });
    for (let i = 0; i < 30; i++) await writeFile(join(tree, 'src', `f${i}.txt`), `line ${i}\n`.repeat(20 * i + 1));
    await writeFile(join(tree, 'src/deep/random.bin'), randomBytes(400_000)); // the middle of every archive
    await writeFile(join(tree, 'src/deep/text.txt'), 'compressible text '.repeat(100_000));
    await writeFile(join(tree, 'src/zz-last.txt'), 'the last file\n');
    await writeFile(join(tree, 'src/a-first.txt'), 'the first file\n'.repeat(50));
    await symlink('deep/text.txt', join(tree, 'src/link'));
    const sel = await selectFiles({ cwd: tree, paths: ['src'] });
    for (const format of ['zip', 'zipzstd', 'tarzstd'] as const) {
      const file = join(root, `a.${format}`);
      await createArchiveFile(sel.entries, file, format, 'fast');
      archives[format] = await readFile(file);
    }
    const oldTree = join(root, 'old');
    await mkdir(oldTree);
    await writeFile(join(oldTree, 'old.txt'), 'the good old cache\n');
    const oldFile = join(root, 'old.zip');
    await createArchiveFile((await selectFiles({ cwd: oldTree, paths: ['old.txt'] })).entries, oldFile, 'zip', 'fast');
    old = await readFile(oldFile);
  });
  after(() => rm(root, { recursive: true, force: true }));

  /** A job directory holding the good old cache/cache.zip (older than the server's copy) and its metadata.json. */
  async function job(name: string): Promise<string> {
    const dir = join(root, name);
    await mkdir(join(dir, 'cache'), { recursive: true });
    await writeFile(join(dir, 'cache/cache.zip'), old);
    await writeFile(join(dir, 'cache/metadata.json'), OLD_META);
    const t = new Date('2020-01-01T00:00:00Z');
    await utimes(join(dir, 'cache/cache.zip'), t, t);
    return dir;
  }

  async function assertUntouched(dir: string): Promise<void> {
    assert.ok((await readFile(join(dir, 'cache/cache.zip'))).equals(old), 'cache.zip changed');
    assert.equal(await readFile(join(dir, 'cache/metadata.json'), 'utf8'), OLD_META);
    assert.deepEqual((await readdir(join(dir, 'cache'))).sort(), ['cache.zip', 'metadata.json'], 'a stray file was left');
    assert.deepEqual(await readdir(dir), ['cache'], 'something was extracted');
  }

  const extract = (dir: string, url: string, extra: string[] = []): Promise<{ status: number | null; out: string }> =>
    run(['cache-extractor', '--file', 'cache/cache.zip', '--url', url, '--retry', '1', '--retry-time', '1ms', ...extra], dir);

  const cases: Array<{ name: string; format: ArchiveFormat; handler: (data: Buffer) => Handler; message: RegExp; requests: number; extra?: string[] }> = [
    {
      name: 'the body stops half way (Content-Length announced whole): retried, then refused',
      format: 'zip',
      handler: (data) => (_req, res) => {
        res.writeHead(200, { ...headers(), 'content-length': data.length });
        res.write(data.subarray(0, data.length >> 1), () => res.socket?.destroy());
      },
      message: /downloading the cache failed: .*(ended after|aborted|socket hang up|ECONNRESET)/,
      requests: 2,
    },
    ...(['zip', 'zipzstd', 'tarzstd'] as const).map((format) => ({
      name: `one byte in the middle flipped (${format}): not retried, refused`,
      format,
      handler: (data: Buffer) => {
        const bad = Buffer.from(data);
        bad[bad.length >> 1] ^= 0x20;
        return whole(bad);
      },
      message: /the downloaded archive is corrupt \(.*(CRC-32 mismatch|checksum|corrupt).*\); the local archive was not replaced/,
      requests: 1,
    })),
    {
      name: 'Content-Length smaller than the archive (a complete HTTP answer, a cut archive): refused',
      format: 'zip',
      handler: (data) => whole(data.subarray(0, data.length - 1000)),
      message: /the downloaded archive is corrupt \(zip archive is corrupt: .*\)/,
      requests: 1,
    },
    {
      name: 'Content-Length larger than the body, then the connection closes: retried, then refused',
      format: 'tarzstd',
      handler: (data) => (_req, res) => {
        res.writeHead(200, { ...headers(), 'content-length': data.length + 1000 });
        res.write(data, () => res.socket?.destroy());
      },
      message: /downloading the cache failed: .*(ended after|aborted|socket hang up|ECONNRESET)/,
      requests: 2,
    },
    {
      name: 'ranged download: the part in the middle drops the connection every time',
      format: 'zipzstd',
      handler: (data) => ranged(data, (start, end) => (start <= data.length >> 1 && data.length >> 1 <= end ? 1000 : undefined)),
      message: /downloading the cache failed: .*(ended after|aborted|socket hang up|ECONNRESET)/,
      requests: 0, // parts run in parallel; counted below
      extra: ['--chunk-size', '65536', '--concurrency', '4'],
    },
    {
      name: 'ranged download: one part carries a flipped byte',
      format: 'zip',
      handler: (data) => {
        const bad = Buffer.from(data);
        bad[(bad.length >> 1) + 7] ^= 1;
        return ranged(bad);
      },
      message: /the downloaded archive is corrupt \(zip archive is corrupt: .*CRC-32 mismatch\)/,
      requests: 0,
      extra: ['--chunk-size', '65536', '--concurrency', '4'],
    },
  ];

  for (const [i, c] of cases.entries()) {
    it(c.name, async () => {
      const dir = await job(`case-${i}`);
      const srv = await serve(c.handler(archives[c.format]));
      try {
        const r = await extract(dir, srv.url, c.extra);
        assert.equal(r.status, 1, r.out);
        assert.match(r.out, c.message);
        if (c.requests > 0) assert.equal(srv.requests.length, c.requests, srv.requests.join('\n'));
        await assertUntouched(dir);
      } finally {
        await srv.close();
      }
    });
  }

  it('the archive is verified while it arrives: a bad first entry stops a ranged download early', async () => {
    const data = Buffer.from(archives.zip);
    const first = (await listZip(join(root, 'a.zip'))).find((e) => e.name === 'src/a-first.txt');
    assert.ok(first);
    const dataStart = first.localOffset + 30 + data.readUInt16LE(first.localOffset + 26) + data.readUInt16LE(first.localOffset + 28);
    data[dataStart + 3] ^= 0x01;
    const chunk = 32 * 1024;
    const parts = Math.ceil(data.length / chunk);
    const dir = await job('early');
    // parts between the first and the last come slowly, as from a remote store
    const serveRange = ranged(data);
    const srv = await serve((req, res) => {
      const start = Number(/^bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0);
      const slow = start > 0 && start < (parts - 1) * chunk;
      setTimeout(() => serveRange(req, res), slow ? 300 : 0);
    });
    try {
      const r = await extract(dir, srv.url, ['--chunk-size', String(chunk), '--concurrency', '1']);
      assert.equal(r.status, 1, r.out);
      assert.match(r.out, /the downloaded archive is corrupt \(zip archive is corrupt: src\/a-first\.txt: (CRC-32 mismatch|cannot decompress)/);
      // the first part, then the last (the central directory), then at most a few more
      assert.ok(srv.requests.length < parts - 2, `${srv.requests.length} of ${parts} parts requested`);
      assert.equal(srv.requests[1], `GET bytes=${(parts - 1) * chunk}-${data.length - 1}`);
      await assertUntouched(dir);
    } finally {
      await srv.close();
    }
  });

  it('a server ignoring Range that drops the first attempt half way: the retry (and its verification) start over and succeed', async () => {
    const data = archives.tarzstd;
    let n = 0;
    const dir = await job('restart');
    const srv = await serve((_req, res) => {
      res.writeHead(200, { ...headers(), 'content-length': data.length });
      if (n++ === 0) return void res.write(data.subarray(0, data.length >> 1), () => res.socket?.destroy());
      res.end(data);
    });
    try {
      const r = await extract(dir, srv.url);
      assert.equal(r.status, 0, r.out);
      assert.equal(srv.requests.length, 2);
      assert.ok((await readFile(join(dir, 'cache/cache.zip'))).equals(data));
    } finally {
      await srv.close();
    }
  });

  it('tar.zst: a complete zstd stream whose tar stops at an entry boundary (no end-of-archive block) is refused', async () => {
    // What a download cut at a zstd frame boundary looks like: every frame decodes, the tar is incomplete.
    const tar = zlib.zstdDecompressSync(archives.tarzstd);
    let end = tar.length;
    while (end > 0 && tar[end - 1] === 0) end--;
    end = Math.ceil(end / 512) * 512; // after the last entry's data, before the zero blocks
    const cut = zlib.zstdCompressSync(tar.subarray(0, end));
    const dir = await job('tar-boundary');
    const srv = await serve(whole(cut));
    try {
      const r = await extract(dir, srv.url);
      assert.equal(r.status, 1, r.out);
      assert.match(r.out, /the downloaded archive is corrupt \(tar archive is corrupt: the stream ends without the end-of-archive block/);
      await assertUntouched(dir);
    } finally {
      await srv.close();
    }
  });

  for (const format of ['zip', 'zipzstd', 'tarzstd'] as const) {
    it(`a good ${format} archive replaces the old one and is extracted (whole and ranged)`, async () => {
      for (const extra of [[], ['--chunk-size', '65536', '--concurrency', '4']]) {
        const dir = await job(`good-${format}-${extra.length}`);
        const srv = await serve(ranged(archives[format]));
        try {
          const r = await extract(dir, srv.url, extra);
          assert.equal(r.status, 0, r.out);
          assert.ok((await readFile(join(dir, 'cache/cache.zip'))).equals(archives[format]));
          assert.equal(await readFile(join(dir, 'cache/metadata.json'), 'utf8'), '{"cachekey":"new"}');
          assert.deepEqual((await readdir(join(dir, 'cache'))).sort(), ['cache.zip', 'metadata.json']);
          const d = spawnSync('diff', ['-r', '--no-dereference', join(root, 'tree/src'), join(dir, 'src')], { encoding: 'utf8' });
          assert.equal(d.status, 0, d.stdout + d.stderr);
        } finally {
          await srv.close();
        }
      }
    });
  }
});
