/**
 * `cache-extractor` against hostile download answers (session 9 review; real `cachegate` processes,
 * node:http servers on loopback): an endless body, an announced size far over the cache limit, a body
 * longer than its Content-Length, a gzip Content-Encoding (a bomb among them). Each fails with a clear
 * error or yields the archive as stored; the archive already on disk is never half-replaced, no
 * temporary file is left, and nothing is decompressed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { cachegate } from '../support/cli.ts';

const OLD = Buffer.from('the archive from the previous job');
const LIMIT = 1_000_000;

async function serve(answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; server: Server }> {
  const server = createServer(answer);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/cache.zip`, server };
}

/** Streams `chunk` until `max` bytes or the client goes away; returns how many bytes went out. */
function pour(res: ServerResponse, chunk: Buffer, max: number, sent: { n: number }): void {
  const more = (): void => {
    while (sent.n < max && !res.destroyed) {
      sent.n += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', more);
    }
    res.end();
  };
  res.on('close', () => undefined);
  more();
}

describe('cache-extractor against hostile download answers', () => {
  let dir: string;
  let zip: Buffer;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cg-hostile-dl-'));
    const src = join(dir, 'src');
    await rm(src, { recursive: true, force: true });
    await (await import('node:fs/promises')).mkdir(src);
    await writeFile(join(src, 'data.txt'), Buffer.alloc(50_000, 7));
    const made = await cachegate(['cache-archiver', '--file', join(dir, 'made.zip'), '--path', 'data.txt'], src);
    assert.equal(made.status, 0, made.out);
    zip = await readFile(join(dir, 'made.zip'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  /** Runs cache-extractor into a fresh working directory holding the previous archive. */
  async function extract(url: string, extra: string[] = []): Promise<{ status: number | null; out: string; work: string }> {
    const work = await mkdtemp(join(dir, 'w-'));
    await writeFile(join(work, 'cache.zip'), OLD);
    const r = await cachegate(['cache-extractor', '--file', join(work, 'cache.zip'), '--url', url, '--retry', '0', ...extra], work);
    return { ...r, work };
  }

  async function untouched(work: string, what: string): Promise<void> {
    assert.deepEqual(await readFile(join(work, 'cache.zip')), OLD, `${what}: the previous archive was replaced`);
    assert.deepEqual((await readdir(work)).sort(), ['cache.zip'], `${what}: a temporary or extracted file was left`);
  }

  it('an endless body (no Content-Length, Range ignored) is cut at --max-uploaded-archive-size', async () => {
    const sent = { n: 0 };
    // The server stops at 256 MiB so that a helper without the bound ends too (and fails this test).
    const origin = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/zip' });
      pour(res, Buffer.alloc(256 * 1024, 0x41), 256 * 1024 * 1024, sent);
    });
    try {
      const r = await extract(origin.url, ['--max-uploaded-archive-size', String(LIMIT)]);
      assert.equal(r.status, 1, r.out);
      assert.match(r.out, /over --max-uploaded-archive-size \(1000000\)/, r.out);
      assert.ok(sent.n < 64 * 1024 * 1024, `${sent.n} bytes were sent before the helper stopped reading`);
      await untouched(r.work, 'endless body');
    } finally {
      origin.server.closeAllConnections();
      origin.server.close();
    }
  });

  it('an announced size over --max-uploaded-archive-size (Content-Length, or a 206 Content-Range total) fails before a byte is written', async () => {
    const sent = { n: 0 };
    const origin = await serve((req, res) => {
      const ranged = req.url?.includes('ranged') && req.headers.range !== undefined;
      if (ranged) res.writeHead(206, { 'content-range': 'bytes 0-8388607/10737418240', 'content-length': String(8 * 1024 * 1024) });
      else res.writeHead(200, { 'content-length': String(10 * 1024 * 1024 * 1024) });
      pour(res, Buffer.alloc(256 * 1024, 0x42), 8 * 1024 * 1024, sent);
    });
    try {
      for (const q of ['', '?ranged']) {
        sent.n = 0;
        const r = await extract(`${origin.url}${q}`, ['--max-uploaded-archive-size', String(LIMIT)]);
        assert.equal(r.status, 1, r.out);
        assert.match(r.out, /10737418240 bytes are over --max-uploaded-archive-size/, r.out);
        await untouched(r.work, `announced 10 GiB ${q}`);
      }
    } finally {
      origin.server.closeAllConnections();
      origin.server.close();
    }
  });

  it('a body longer than its Content-Length: only the announced bytes are taken (a truncated archive is refused)', async () => {
    const origin = await serve((_req, res) => {
      // Announces 100 bytes less than the archive it sends, then sends more.
      res.writeHead(200, { 'content-length': String(zip.length - 100), connection: 'close' });
      res.socket?.write(Buffer.concat([zip, Buffer.alloc(100_000, 0x43)]));
      res.socket?.end();
    });
    try {
      const r = await extract(origin.url);
      assert.equal(r.status, 1, r.out);
      await untouched(r.work, 'longer than Content-Length');
    } finally {
      origin.server.close();
    }
  });

  it('Content-Encoding: gzip is not decoded: a gzipped archive is refused, a gzip bomb stays its compressed size', async () => {
    const bomb = gzipSync(Buffer.alloc(512 * 1024 * 1024)); // ~0.5 MB that decodes to 512 MiB
    let body = gzipSync(zip);
    const origin = await serve((_req, res) => {
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': String(body.length) });
      res.end(body);
    });
    try {
      for (const [what, b] of [['a gzipped archive', gzipSync(zip)], ['a gzip bomb', bomb]] as const) {
        body = b;
        const r = await extract(origin.url);
        assert.equal(r.status, 1, `${what}: ${r.out}`);
        assert.doesNotMatch(r.out, /Downloaded 5\d{8} bytes/, `${what}: decoded`);
        await untouched(r.work, what);
      }
    } finally {
      origin.server.close();
    }
  });

  it('the control: the same archive served plainly is extracted', async () => {
    const origin = await serve((_req, res) => res.writeHead(200, { 'content-length': String(zip.length) }).end(zip));
    try {
      const r = await extract(origin.url, ['--max-uploaded-archive-size', String(LIMIT)]);
      assert.equal(r.status, 0, r.out);
      assert.deepEqual(await readFile(join(r.work, 'data.txt')), Buffer.alloc(50_000, 7));
    } finally {
      origin.server.close();
    }
  });
});
