/**
 * adapters/s3/raw-http.ts against local servers: node:http for well-formed answers, raw `net` for a
 * backend that breaks off mid-body or answers in ways the raw reader leaves to node:http.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { test } from 'node:test';
import { RawHttpPool } from '../../adapters/s3/raw-http.ts';

const OBJECT = randomBytes(3 * 1024 * 1024 + 17);

async function listen<T extends Server | NetServer>(server: T): Promise<{ server: T; origin: string }> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, origin: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function readAll(body: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

const never = new AbortController().signal;

test('200 and 206 answers: head, exact body, and one keep-alive socket reused for sequential GETs', async () => {
  const seen: Array<Record<string, string | string[] | undefined>> = [];
  const { server, origin } = await listen(createServer((req, res) => {
    seen.push(req.headers);
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    const meta = { 'x-amz-meta-cachekey': 'k1', etag: '"abc"', 'last-modified': 'Sat, 05 Dec 2026 00:00:00 GMT' };
    if (range) {
      const [s, e] = [Number(range[1]), Number(range[2])];
      res.writeHead(206, { ...meta, 'content-range': `bytes ${s}-${e}/${OBJECT.length}`, 'content-length': e - s + 1 });
      res.end(OBJECT.subarray(s, e + 1));
    } else {
      res.writeHead(200, { ...meta, 'content-length': OBJECT.length });
      res.end(OBJECT);
    }
  }));
  const pool = new RawHttpPool(4);
  try {
    for (let i = 0; i < 3; i++) {
      const a = await pool.get(new URL(`http://${origin}/b/k?X-Amz-Signature=x${i}`), { 'x-amz-date': 'd' }, never);
      assert.ok(a);
      assert.equal(a.status, 200);
      assert.equal(a.headers['x-amz-meta-cachekey'], 'k1');
      assert.equal(a.headers.etag, '"abc"');
      assert.ok((await readAll(a.body)).equals(OBJECT));
    }
    const r = await pool.get(new URL(`http://${origin}/b/k`), { range: 'bytes=5-1000004' }, never);
    assert.ok(r);
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-range'], `bytes 5-1000004/${OBJECT.length}`);
    assert.ok((await readAll(r.body)).equals(OBJECT.subarray(5, 1000005)));
    assert.equal(pool.sockets(origin), 1, 'sequential GETs share one keep-alive socket');
    assert.equal(seen[3].range, 'bytes=5-1000004');
    assert.equal(seen[0].host, origin);
    assert.equal(seen[0]['x-amz-date'], 'd');
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('error answers, chunked answers and a full pool are left to node:http (undefined), and their sockets closed', async () => {
  const { server, origin } = await listen(createServer((req, res) => {
    if (req.url === '/missing') {
      res.writeHead(404, { 'content-type': 'application/xml' });
      res.end('<Error><Code>NoSuchKey</Code></Error>');
    } else if (req.url === '/chunked') {
      res.writeHead(200);
      res.write('a');
      res.end('b');
    } else if (req.url === '/slow') {
      res.writeHead(200, { 'content-length': 4 });
      res.write('ab');
      setTimeout(() => res.end('cd'), 200);
    }
  }));
  const pool = new RawHttpPool(1);
  try {
    assert.equal(await pool.get(new URL(`http://${origin}/missing`), {}, never), undefined);
    assert.equal(await pool.get(new URL(`http://${origin}/chunked`), {}, never), undefined);
    const slow = await pool.get(new URL(`http://${origin}/slow`), {}, never);
    assert.ok(slow);
    assert.equal(await pool.get(new URL(`http://${origin}/slow`), {}, never), undefined, 'maxSockets 1 is busy');
    assert.equal((await readAll(slow.body)).toString(), 'abcd');
    assert.equal(await pool.get(new URL(`https://${origin}/slow`), {}, never), undefined, 'TLS stays on node:http');
    assert.equal(await pool.get(new URL(`http://${origin}/slow`), { 'x-evil': 'a\r\nx: y' }, never), undefined, 'a header that would split the request');
    assert.equal(pool.sockets(origin), 1);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('a backend that breaks off mid-body fails the body (a truncated answer, never a complete-looking one)', async () => {
  const sockets: Socket[] = [];
  const { server, origin } = await listen(createNetServer((s) => {
    sockets.push(s);
    s.once('data', () => {
      s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${OBJECT.length}\r\n\r\n`);
      s.end(OBJECT.subarray(0, 100_000));
    });
  }));
  const pool = new RawHttpPool(4);
  try {
    const a = await pool.get(new URL(`http://${origin}/k`), {}, never);
    assert.ok(a);
    await assert.rejects(readAll(a.body), /closed the connection/);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(pool.sockets(origin), 0, 'the broken socket is not kept');
  } finally {
    for (const s of sockets) s.destroy();
    server.close();
  }
});

test('a reader that goes away mid-body (client disconnect) closes that backend socket rather than reusing it', async () => {
  const { server, origin } = await listen(createServer((_req, res) => {
    res.writeHead(200, { 'content-length': OBJECT.length });
    res.end(OBJECT);
  }));
  const pool = new RawHttpPool(4);
  try {
    const a = await pool.get(new URL(`http://${origin}/k`), {}, never);
    assert.ok(a);
    for await (const _ of a.body) break; // destroys the body after its first chunk
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(pool.sockets(origin), 0);
    const b = await pool.get(new URL(`http://${origin}/k`), {}, never);
    assert.ok(b);
    assert.ok((await readAll(b.body)).equals(OBJECT), 'a fresh socket serves the next GET whole');
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('the caller\'s signal aborts a GET whose answer has not come', async () => {
  const { server, origin } = await listen(createNetServer(() => undefined)); // never answers
  const pool = new RawHttpPool(4);
  try {
    const c = new AbortController();
    const p = pool.get(new URL(`http://${origin}/k`), {}, c.signal);
    setTimeout(() => c.abort(new Error('deadline')), 50);
    await assert.rejects(p, /deadline/);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(pool.sockets(origin), 0);
  } finally {
    server.close();
  }
});
