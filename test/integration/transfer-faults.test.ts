/**
 * Fault injection for src/transfer: small node:http servers that answer 500, reset connections,
 * ignore Range, cut bodies short, change the object mid-download, or never answer.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { download, upload } from '../../src/transfer/index.ts';

type Handler = (req: IncomingMessage, res: ServerResponse, n: number, body: Buffer) => void;

async function serve(handler: Handler): Promise<{ url: string; requests: Array<{ method: string; url: string; range?: string; bytes: number; headers: IncomingMessage['headers'] }>; close: () => Promise<void> }> {
  const requests: Array<{ method: string; url: string; range?: string; bytes: number; headers: IncomingMessage['headers'] }> = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => {});
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method ?? '', url: req.url ?? '', range: req.headers.range, bytes: body.length, headers: req.headers });
      handler(req, res, requests.length, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

// In the future, so that a file written by the test itself is never "up to date" (a fixed date did that once the clock passed it).
const LM = new Date(Math.floor(Date.now() / 1000 + 86_400) * 1000).toUTCString();

/** Serves `data` honouring single ranges (206), with Last-Modified and an ETag. */
function ranged(data: Buffer, res: ServerResponse, range: string | undefined, etag = '"v1"'): void {
  const m = /^bytes=(\d+)-(\d*)$/.exec(range ?? '');
  const headers = { 'last-modified': LM, etag, 'x-amz-meta-cachekey': 'k' };
  if (!m) {
    res.writeHead(200, { ...headers, 'content-length': data.length });
    res.end(data);
    return;
  }
  const start = Number(m[1]);
  const end = Math.min(m[2] === '' ? data.length - 1 : Number(m[2]), data.length - 1);
  res.writeHead(206, { ...headers, 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${data.length}` });
  res.end(data.subarray(start, end + 1));
}

describe('transfer faults', () => {
  let dir: string;
  let file: string;
  const data = randomBytes(200_000);
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cg-faults-'));
    file = join(dir, 'upload.zip');
    await writeFile(file, data);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('upload: 500 twice then 200 → retried with the whole body each time, headers kept', async () => {
    const srv = await serve((_req, res, n) => res.writeHead(n <= 2 ? 500 : 200).end());
    try {
      const retries: number[] = [];
      const r = await upload({ file, url: `${srv.url}/o?sig=1`, headers: { 'X-Amz-Meta-Cachekey': 'k' }, retryDelayMs: 1, onRetry: (_e, a) => retries.push(a) });
      assert.equal(r.status, 'uploaded');
      assert.deepEqual(retries, [1, 2]);
      assert.equal(srv.requests.length, 3);
      for (const q of srv.requests) {
        assert.equal(q.bytes, data.length);
        assert.equal(q.headers['content-length'], String(data.length));
        assert.equal(q.headers['content-type'], 'application/octet-stream');
        assert.equal(q.headers['x-amz-meta-cachekey'], 'k');
      }
    } finally {
      await srv.close();
    }
  });

  it('upload: a given Content-Type is kept; more 5xx than retries → fails with the status', async () => {
    const srv = await serve((_req, res) => res.writeHead(503, { 'content-type': 'application/xml' }).end('<Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>'));
    try {
      await assert.rejects(upload({ file, url: srv.url, headers: { 'content-type': 'application/zip' }, retries: 1, retryDelayMs: 1 }), /upload failed: 503 Service Unavailable \(SlowDown: Reduce your rate\)/);
      assert.equal(srv.requests.length, 2);
      assert.equal(srv.requests[0].headers['content-type'], 'application/zip');
    } finally {
      await srv.close();
    }
  });

  it('upload: a 4xx is not retried and carries the S3 Code and Message', async () => {
    const srv = await serve((_req, res) => res.writeHead(403).end('<?xml version="1.0"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error>'));
    try {
      await assert.rejects(upload({ file, url: srv.url, retryDelayMs: 1 }), { status: 403, message: 'upload failed: 403 Forbidden (SignatureDoesNotMatch: The request signature we calculated does not match): a signed header is missing or different, or the URL was altered; send every header of the presign answer (its helperArgs carry them as --header)' });
      assert.equal(srv.requests.length, 1);
    } finally {
      await srv.close();
    }
  });

  it('upload and download: a reset connection is retried', async () => {
    const srv = await serve((req, res, n) => {
      if (n === 1 || n === 3) return void req.socket.destroy();
      if (req.method === 'PUT') return void res.writeHead(200).end();
      ranged(data, res, req.headers.range);
    });
    try {
      assert.equal((await upload({ file, url: `${srv.url}/x`, retryDelayMs: 1 })).status, 'uploaded');
      const out = join(dir, 'reset.zip');
      const r = await download({ file: out, url: `${srv.url}/x`, retryDelayMs: 1 });
      assert.equal(r.status, 'downloaded');
      assert.ok((await readFile(out)).equals(data));
    } finally {
      await srv.close();
    }
  });

  it('download: a server that ignores Range is read as one stream', async () => {
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': data.length, 'last-modified': LM });
      res.end(data);
    });
    try {
      const out = join(dir, 'norange.zip');
      const r = await download({ file: out, url: srv.url, chunkSize: 10_000, concurrency: 4 });
      assert.ok(r.status === 'downloaded' && !r.ranged && r.parts === 1);
      assert.equal(srv.requests.length, 1);
      assert.equal(srv.requests[0].range, 'bytes=0-9999');
      assert.ok((await readFile(out)).equals(data));
      assert.equal((await stat(out)).mtime.toUTCString(), LM);
      assert.equal(await readFile(join(dir, 'metadata.json'), 'utf8'), '{}');
    } finally {
      await srv.close();
    }
  });

  it('download: a truncated body never replaces the good file; with a retry left it recovers', async () => {
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': data.length });
      res.write(data.subarray(0, 50_000), () => res.socket?.destroy());
    });
    const good = join(dir, 'good.zip');
    try {
      await writeFile(good, 'the good archive');
      await assert.rejects(download({ file: good, url: srv.url, retries: 1, retryDelayMs: 1 }));
      assert.equal(srv.requests.length, 2);
      assert.equal(await readFile(good, 'utf8'), 'the good archive');
      assert.deepEqual((await readdir(dir)).filter((n) => n.endsWith('.tmp')), []);
    } finally {
      await srv.close();
    }
    let cut = false;
    const srv2 = await serve((req, res) => {
      if (req.headers.range === 'bytes=20000-39999' && !cut) {
        cut = true;
        res.writeHead(206, { 'content-length': 20_000, 'content-range': `bytes 20000-39999/${data.length}`, etag: '"v1"' });
        return void res.write(data.subarray(20_000, 25_000), () => res.socket?.destroy());
      }
      ranged(data, res, req.headers.range);
    });
    try {
      const r = await download({ file: good, url: srv2.url, chunkSize: 20_000, concurrency: 1, retryDelayMs: 1 });
      assert.ok(r.status === 'downloaded' && r.ranged && r.parts === 10);
      assert.ok((await readFile(good)).equals(data));
      // The cut part was asked for again (from where its bytes stopped), and nothing else twice.
      const second = srv2.requests.filter((q) => q.range && /^bytes=2\d{4}-39999$/.test(q.range));
      assert.equal(second.length, 2);
      assert.equal(srv2.requests.length, 11);
    } finally {
      await srv2.close();
    }
  });

  it('download: parts answering 500 or resetting are retried; the result is whole', async () => {
    // The first request for each range (after the probe) fails: every other one with 500, the rest by a reset.
    const seen = new Set<string>();
    const srv = await serve((req, res, n) => {
      const range = req.headers.range ?? '';
      if (n > 1 && !seen.has(range)) {
        seen.add(range);
        return void (seen.size % 2 === 0 ? res.writeHead(500).end() : req.socket.destroy());
      }
      ranged(data, res, req.headers.range);
    });
    try {
      const out = join(dir, 'parts.zip');
      const r = await download({ file: out, url: srv.url, chunkSize: 16_384, concurrency: 3, retries: 1, retryDelayMs: 1 });
      assert.ok(r.status === 'downloaded' && r.ranged && r.parts === 13);
      assert.equal(srv.requests.length, 1 + 12 * 2);
      assert.ok((await readFile(out)).equals(data));
    } finally {
      await srv.close();
    }
  });

  it('download: an object replaced mid-download fails without retrying and keeps the old file', async () => {
    const srv = await serve((req, res, n) => ranged(data, res, req.headers.range, n === 1 ? '"v1"' : '"v2"'));
    const out = join(dir, 'changed.zip');
    try {
      await writeFile(out, 'old');
      await assert.rejects(download({ file: out, url: srv.url, chunkSize: 100_000, concurrency: 1, retryDelayMs: 1 }), { status: 409 });
      assert.equal(srv.requests.length, 2);
      assert.equal(await readFile(out, 'utf8'), 'old');
    } finally {
      await srv.close();
    }
  });

  it('download: 403 fails with the code; 404 is "not found"', async () => {
    const srv = await serve((_req, res, n) => (n === 1 ? res.writeHead(403).end('<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>') : res.writeHead(404).end()));
    try {
      await assert.rejects(download({ file: join(dir, 'x.zip'), url: srv.url }), { status: 403, message: 'download failed: 403 Forbidden (AccessDenied: Access Denied)' });
      assert.deepEqual(await download({ file: join(dir, 'x.zip'), url: srv.url }), { status: 'not-found' });
    } finally {
      await srv.close();
    }
  });

  it('timeout: a server that never answers fails with a timeout error', async () => {
    const srv = await serve(() => {});
    try {
      await assert.rejects(download({ file: join(dir, 'slow.zip'), url: srv.url, timeoutMs: 200 }), /download failed: no answer within the timeout/);
      await assert.rejects(upload({ file, url: srv.url, timeoutMs: 200 }), /upload failed: no answer within the timeout/);
    } finally {
      await srv.close();
    }
  });

  it('Azure blocks: x-ms-blob-type only on single PUT, metadata only on Put Block List, a failed block retried', async () => {
    const srv = await serve((req, res, n) => res.writeHead(n === 2 && req.url?.includes('comp=block&') ? 500 : 201).end());
    try {
      const url = `${srv.url}/acct/c/blob?sv=2025-11-05&sr=b&sp=w&sig=a%2Bb%3D`;
      const headers = { 'x-ms-blob-type': 'BlockBlob', 'x-ms-meta-cachekey': 'k' };
      const r = await upload({ file, url, headers, chunkSize: 64 * 1024, concurrency: 2, retryDelayMs: 1 });
      assert.deepEqual(r, { status: 'uploaded', size: data.length, mode: 'azure-blocks', parts: 4 });
      const blocks = srv.requests.filter((q) => q.url.includes('comp=block&'));
      assert.equal(blocks.length, 5, 'four blocks, one retried');
      for (const q of blocks) {
        assert.ok(q.url.startsWith('/acct/c/blob?sv=2025-11-05&sr=b&sp=w&sig=a%2Bb%3D&comp=block&blockid='), q.url);
        assert.equal(q.headers['x-ms-blob-type'], undefined);
        assert.equal(q.headers['x-ms-meta-cachekey'], undefined);
      }
      const list = srv.requests.filter((q) => q.url.endsWith('&comp=blocklist'));
      assert.equal(list.length, 1);
      assert.equal(list[0].headers['x-ms-meta-cachekey'], 'k');
      assert.equal(list[0].headers['x-ms-blob-content-type'], 'application/octet-stream');
      assert.equal(list[0].headers['x-ms-blob-type'], undefined);
      assert.equal(srv.requests.at(-1), list[0], 'the list is committed last');
      const single = await upload({ file, url, headers, chunkSize: data.length });
      assert.equal(single.status === 'uploaded' && single.mode, 'put');
      assert.equal(srv.requests.at(-1)?.headers['x-ms-blob-type'], 'BlockBlob');
    } finally {
      await srv.close();
    }
  });

  it('S3 multipart through a goCloud URL: a failing part aborts the upload', async () => {
    const srv = await serve((req, res) => {
      const u = new URL(req.url ?? '', 'http://x');
      if (req.method === 'POST' && u.searchParams.has('uploads')) return void res.writeHead(200).end('<InitiateMultipartUploadResult><UploadId>up&amp;1</UploadId></InitiateMultipartUploadResult>');
      if (req.method === 'PUT' && u.searchParams.get('partNumber') === '2') return void res.writeHead(403).end('<Error><Code>AccessDenied</Code><Message>no</Message></Error>');
      if (req.method === 'PUT') return void res.writeHead(200, { etag: '"e"' }).end();
      res.writeHead(204).end();
    });
    const big = join(dir, 'multi.zip');
    try {
      await writeFile(big, randomBytes(11 * 1024 * 1024));
      const env = { AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 's', AWS_SESSION_TOKEN: 't' };
      await assert.rejects(
        upload({ file: big, goCloudUrl: `s3://bkt/obj?endpoint=${encodeURIComponent(srv.url)}&use_path_style=true&region=r1`, env, chunkSize: 5 * 1024 * 1024, concurrency: 1 }),
        /upload part 2 failed: 403 Forbidden \(AccessDenied: no\)/,
      );
      const del = srv.requests.find((q) => q.method === 'DELETE');
      assert.equal(del?.url, '/bkt/obj?uploadId=up%261');
      assert.match(String(srv.requests[0].headers.authorization), /^AWS4-HMAC-SHA256 Credential=a\/\d{8}\/r1\/s3\/aws4_request/);
      assert.equal(srv.requests[0].headers['x-amz-security-token'], 't');
    } finally {
      await srv.close();
    }
  });
});
