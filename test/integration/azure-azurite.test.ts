/**
 * Azure adapter against Azurite (real SAS verification): shared key over http, and user delegation
 * (bearer token → Get User Delegation Key) over https with --oauth basic.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { createAzureAdapter } from '../../adapters/azure/index.ts';
import type { CacheAdapter } from '../../src/adapter.ts';
import { CacheGateError } from '../../src/errors.ts';
import { makeContext } from '../contract/context.ts';
import { startAzurite, azuriteCredential, type Azurite } from '../support/azurite.ts';

const MAX = 64 * 1024;

for (const mode of ['shared-key', 'user-delegation'] as const) {
  describe(`Azurite, ${mode}`, () => {
    let az: Azurite;
    let adapter: CacheAdapter;
    let admin: BlobServiceClient;

    const make = (containerName = 'cache', serviceUrl?: string) =>
      createAzureAdapter(
        makeContext({
          type: 'azure', path: '', shared: false, maxUploadedArchiveSize: MAX,
          azure: {
            accountName: az.accountName,
            accountKey: mode === 'shared-key' ? az.accountKey : '',
            containerName, storageDomain: '', serviceUrl: serviceUrl ?? az.serviceUrl,
          },
        }),
        { credential: azuriteCredential() },
      );

    before(async () => {
      az = await startAzurite({ https: mode === 'user-delegation' });
      admin = new BlobServiceClient(az.serviceUrl, new StorageSharedKeyCredential(az.accountName, az.accountKey));
      await admin.getContainerClient('cache').create();
      adapter = await make();
    });
    after(() => az?.stop());

    const exists = (name: string) => admin.getContainerClient('cache').getBlobClient(name).exists();

    test('upload with the returned URL and headers by plain fetch, download, metadata back', async () => {
      const name = 'runner/r1/project/1/round trip+key';
      const put = await adapter.presign({ method: 'PUT', objectName: name, expiresIn: 600, metadata: { cachekey: 'round trip+key' } });
      assert.equal(new URL(put.url).searchParams.get('spr'), mode === 'shared-key' ? 'https,http' : 'https');
      if (mode === 'user-delegation') assert.ok(new URL(put.url).searchParams.get('skoid'));
      const body = Buffer.from('azure bytes');
      const r = await fetch(put.url, { method: 'PUT', headers: { ...put.headers, 'Content-Type': 'application/octet-stream' }, body });
      assert.equal(r.status, 201, await r.text());
      const get = await adapter.presign({ method: 'GET', objectName: name, expiresIn: 600, metadata: {} });
      const g = await fetch(get.url);
      assert.equal(g.status, 200);
      assert.deepEqual(Buffer.from(await g.arrayBuffer()), body);
      assert.equal(g.headers.get('x-ms-meta-cachekey'), 'round trip+key');
      const head = await adapter.presign({ method: 'HEAD', objectName: name, expiresIn: 600, metadata: {} });
      const h = await fetch(head.url, { method: 'HEAD' });
      assert.equal(h.status, 200);
      assert.equal(h.headers.get('content-length'), String(body.length));
      const ranged = await fetch(get.url, { headers: { range: 'bytes=6-10' } });
      assert.equal(ranged.status, 206);
      assert.equal(await ranged.text(), 'bytes');
    });

    test('tampered SAS, SAS for another blob, read SAS for PUT, expired SAS → 403', async () => {
      const name = 'runner/r1/project/1/guarded';
      const other = 'runner/r1/project/1/other';
      const put = await adapter.presign({ method: 'PUT', objectName: name, expiresIn: 600, metadata: { cachekey: 'g' } });
      const send = (url: string) => fetch(url, { method: 'PUT', headers: put.headers, body: 'x' });

      const u = new URL(put.url);
      const sig = u.searchParams.get('sig')!;
      u.searchParams.set('sig', (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1));
      assert.equal((await send(u.toString())).status, 403, 'tampered signature');

      const widened = new URL(put.url);
      widened.searchParams.set('sp', 'rw');
      assert.equal((await send(widened.toString())).status, 403, 'edited permissions');

      assert.equal((await send(put.url.replace('/guarded?', '/other?'))).status, 403, 'SAS for another blob');

      const read = await adapter.presign({ method: 'GET', objectName: name, expiresIn: 600, metadata: {} });
      assert.equal((await send(read.url)).status, 403, 'read SAS used for PUT');

      const expired = await adapter.presign({ method: 'PUT', objectName: name, expiresIn: 60, metadata: {}, now: Date.now() - 2 * 3_600_000 });
      assert.equal((await send(expired.url)).status, 403, 'expired SAS');

      assert.equal(await exists(name), false);
      assert.equal(await exists(other), false);
      // And the untampered one works.
      assert.equal((await send(put.url)).status, 201);
    });

    test('missing blob: 404 via presigned GET/HEAD and null via head/get', async () => {
      const name = 'runner/r1/project/1/missing';
      const get = await adapter.presign({ method: 'GET', objectName: name, expiresIn: 60, metadata: {} });
      assert.equal((await fetch(get.url)).status, 404);
      const head = await adapter.presign({ method: 'HEAD', objectName: name, expiresIn: 60, metadata: {} });
      assert.equal((await fetch(head.url, { method: 'HEAD' })).status, 404);
      assert.equal(await adapter.head(name), null);
      assert.equal(await adapter.get(name), null);
    });

    test('the write SAS allows Put Block ×3 + Put Block List by plain fetch', async () => {
      const name = 'runner/r1/project/1/blocks';
      const put = await adapter.presign({ method: 'PUT', objectName: name, expiresIn: 600, metadata: { cachekey: 'blocks' } });
      const parts = [Buffer.alloc(1000, 'a'), Buffer.alloc(1000, 'b'), Buffer.from('tail')];
      const ids = parts.map((_, i) => Buffer.from(`block-${String(i).padStart(6, '0')}`).toString('base64'));
      for (let i = 0; i < parts.length; i++) {
        const r = await fetch(`${put.url}&comp=block&blockid=${encodeURIComponent(ids[i])}`, { method: 'PUT', body: parts[i] });
        assert.equal(r.status, 201, `block ${i}: ${await r.text()}`);
      }
      assert.equal(await exists(name), false, 'uncommitted blocks are not a blob');
      const list = `<?xml version="1.0" encoding="utf-8"?><BlockList>${ids.map((id) => `<Latest>${id}</Latest>`).join('')}</BlockList>`;
      const commit = await fetch(`${put.url}&comp=blocklist`, {
        method: 'PUT',
        headers: { 'x-ms-meta-cachekey': put.headers['x-ms-meta-cachekey'], 'x-ms-blob-content-type': 'application/octet-stream' },
        body: list,
      });
      assert.equal(commit.status, 201, await commit.text());
      const got = await adapter.get(name);
      assert.deepEqual(Buffer.concat(await got!.body.toArray()), Buffer.concat(parts));
      assert.equal(got!.info.metadata.cachekey, 'blocks');
      // A read SAS cannot stage blocks.
      const read = await adapter.presign({ method: 'GET', objectName: name, expiresIn: 600, metadata: {} });
      assert.equal((await fetch(`${read.url}&comp=block&blockid=${encodeURIComponent(ids[0])}`, { method: 'PUT', body: 'x' })).status, 403);
    });

    test('proxy put/head/get with Range; above maxSize → 413 and nothing stored', async () => {
      const name = 'runner/r1/project/1/proxy';
      const info = await adapter.put(name, { body: Readable.from([Buffer.from('hello '), Buffer.from('world')]), metadata: { cachekey: 'proxy' }, maxSize: MAX });
      assert.equal(info.size, 11);
      const head = await adapter.head(name);
      assert.equal(head?.size, 11);
      assert.equal(head?.metadata.cachekey, 'proxy');
      const part = await adapter.get(name, { start: 6, end: 9 });
      assert.deepEqual(part?.range, { start: 6, end: 9 });
      assert.equal(part?.info.size, 11);
      assert.equal(Buffer.concat(await part!.body.toArray()).toString(), 'worl');
      await assert.rejects(adapter.get(name, { start: 50 }), (e: unknown) => e instanceof CacheGateError && e.status === 416);

      const big = 'runner/r1/project/1/proxy-big';
      const is413 = (e: unknown): boolean => e instanceof CacheGateError && e.code === 'payload_too_large' && e.status === 413;
      await assert.rejects(adapter.put(big, { body: Readable.from([Buffer.alloc(10)]), contentLength: MAX + 1, metadata: {}, maxSize: MAX }), is413);
      // Streamed past the cap over several blocks' worth of chunks.
      const chunks = Array.from({ length: 20 }, () => Buffer.alloc(4096));
      await assert.rejects(adapter.put(big, { body: Readable.from(chunks), metadata: {}, maxSize: MAX }), is413);
      assert.equal(await exists(big), false);
    });

    test('ready(): container reachable; a missing container → 502 naming ContainerName', async () => {
      await adapter.ready();
      const missing = await make('no-such-container');
      await assert.rejects(missing.ready(), (e: unknown) => e instanceof CacheGateError && e.status === 502 && /check ContainerName/.test(e.message));
    });

    if (mode === 'user-delegation') {
      test('the user-delegation key is cached across presigns and bounds very long URLs', async () => {
        const a = await adapter.presign({ method: 'GET', objectName: 'x/1', expiresIn: 600, metadata: {} });
        const b = await adapter.presign({ method: 'PUT', objectName: 'x/2', expiresIn: 7200, metadata: {} });
        const qa = new URL(a.url).searchParams;
        const qb = new URL(b.url).searchParams;
        assert.equal(qa.get('ske'), qb.get('ske'));
        assert.equal(qa.get('skt'), qb.get('skt'));
        assert.notEqual(qa.get('sig'), qb.get('sig'));
        const long = await adapter.presign({ method: 'GET', objectName: 'x/3', expiresIn: 30 * 86400, metadata: {} });
        const ql = new URL(long.url).searchParams;
        assert.equal(ql.get('se'), ql.get('ske'));
        assert.equal(long.expiresAt.toISOString().slice(0, 19) + 'Z', ql.get('ske'));
      });
    }
  });
}
