/**
 * The helper's requests against a hostile or misconfigured server (real `cachegate` processes and
 * node:http servers on loopback): a `cache-archiver --header` Node cannot send fails at once without
 * being retried or echoed, and a redirect is never followed (by either command), so `--header`
 * values (tokens) never reach another host.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cachegate } from '../support/cli.ts';

interface Seen { method: string; url: string; headers: IncomingHttpHeaders }

async function serve(answer: (seen: Seen, res: import('node:http').ServerResponse) => void): Promise<{ url: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const s = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
    seen.push(s);
    req.resume();
    req.on('end', () => answer(s, res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

const SECRET = 'tok3n-s3cr3t-v4lue';

describe('helper transfers: --header values and redirects', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cg-helper-hdr-'));
    await writeFile(join(dir, 'data.txt'), Buffer.alloc(1000, 1));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('a --header with a control character or a bad name fails at once: no request, no retry, value not echoed', async () => {
    const origin = await serve((_s, res) => res.writeHead(500).end());
    try {
      for (const bad of [`X-Token: ${SECRET}\u0001`, `X-Token: ${SECRET}\u007f`, `X Token: ${SECRET}`, `X-Token: ${SECRET}\u2028x`, `X-Token: a\rb${SECRET}`]) {
        // --header is cache-archiver's (as GitLab's): the extractor's presigned GET needs none.
        const r = await cachegate(['cache-archiver', '--file', join(dir, 'up.zip'), '--path', 'data.txt', '--url', `${origin.url}/obj`, '--header', bad, '--retry-time', '10ms'], dir);
        assert.notEqual(r.status, 0, `${JSON.stringify(bad)}: ${r.out}`);
        assert.match(r.out, /--header 1 of 1 cannot be sent/, `${JSON.stringify(bad)}: ${r.out}`);
        assert.ok(!r.out.includes(SECRET), 'the value is not echoed');
        assert.doesNotMatch(r.out, /retry|retrying|attempt/i, r.out);
      }
      assert.equal(origin.seen.length, 0, 'no request was made');
      assert.ok((await readdir(dir)).every((f) => ['data.txt', 'up.zip', 'metadata.json'].includes(f)), 'no other file or temporary file left');
    } finally {
      origin.server.close();
    }
  });

  it('a redirect (301, 302, 307, 308; to another host, to file:, in a loop) is not followed: --header values never reach the other host', async () => {
    const other = await serve((_s, res) => res.writeHead(200, { 'content-length': '3' }).end('bad'));
    let target = '';
    const origin = await serve((s, res) => res.writeHead(Number(/status=(\d+)/.exec(s.url)?.[1] ?? 302), { location: target }).end());
    try {
      for (const [status, location] of [[301, `${other.url}/x`], [302, `${other.url}/x`], [307, `${other.url}/x`], [308, `${other.url}/x`], [302, 'file:///etc/passwd'], [302, '/loop?status=302']] as const) {
        target = location;
        for (const cmd of ['cache-extractor', 'cache-archiver']) {
          const file = join(dir, cmd === 'cache-extractor' ? 'down.zip' : 'up.zip');
          const headers = cmd === 'cache-archiver' ? ['--path', 'data.txt', '--header', `Authorization: Bearer ${SECRET}`, '--header', `X-Token: ${SECRET}`] : [];
          const r = await cachegate([cmd, '--file', file, '--url', `${origin.url}/obj?status=${status}&X-Amz-Signature=abc`, ...headers, '--retry', '0'], dir);
          assert.notEqual(r.status, 0, `${cmd} ${status} ${location}: ${r.out}`);
          assert.ok(!r.out.includes(SECRET), 'no header value in the output');
          assert.ok(!r.out.includes('X-Amz-Signature=abc'), 'no signed query in the output');
        }
      }
      assert.equal(other.seen.length, 0, 'the other host was never asked');
      const puts = origin.seen.filter((s) => s.method === 'PUT');
      assert.ok(puts.length > 0 && puts.every((s) => s.headers['x-token'] === SECRET), 'the origin got the headers it was meant to');
      assert.ok((await readdir(dir)).every((f) => ['data.txt', 'up.zip', 'metadata.json'].includes(f)), 'no downloaded file or temporary file left');
    } finally {
      origin.server.close();
      other.server.close();
    }
  });

  it('an error answer that echoes the request (XML 403, JSON 500) prints no --header value', async () => {
    const origin = await serve((seen, res) => {
      const echo = JSON.stringify(seen.headers).replace(/[<&]/g, '_');
      if (seen.url.includes('json')) res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'backend_error', message: `got ${echo}` } }));
      else res.writeHead(403, { 'content-type': 'application/xml' }).end(`<Error><Code>AccessDenied</Code><Message>got ${echo}</Message></Error>`);
    });
    try {
      for (const path of ['/xml', '/json']) {
        const r = await cachegate(['cache-archiver', '--file', join(dir, 'up.zip'), '--path', 'data.txt', '--url', `${origin.url}${path}`, '--header', `X-Token: ${SECRET}`, '--header', `Authorization: Bearer ${SECRET}`, '--retry', '0'], dir);
        assert.notEqual(r.status, 0, r.out);
        assert.match(r.out, /AccessDenied|backend_error/, r.out);
        assert.ok(!r.out.includes(SECRET), r.out);
      }
    } finally {
      origin.server.close();
    }
  });
});
