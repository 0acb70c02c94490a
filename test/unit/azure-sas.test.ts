import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { createAzureAdapter, azureServiceUrl } from '../../adapters/azure/index.ts';
import { SAS_VERSION, blobPath } from '../../adapters/azure/sas.ts';
import type { AzureSettings } from '../../src/config/types.ts';
import { CacheGateError } from '../../src/errors.ts';
import { makeContext } from '../contract/context.ts';

const ACCOUNT = 'cacheacct';
const KEY = randomBytes(64).toString('base64');
const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const BLOB = 'runner/abcdefghi/project/42/key with space+plus/ü';

function settings(over: Partial<AzureSettings> = {}): AzureSettings {
  return { accountName: ACCOUNT, accountKey: KEY, containerName: 'cache', storageDomain: '', serviceUrl: '', ...over };
}

test('service URL: default domain, StorageDomain, ServiceURL override', () => {
  assert.equal(azureServiceUrl(settings()), `https://${ACCOUNT}.blob.core.windows.net`);
  assert.equal(azureServiceUrl(settings({ storageDomain: 'blob.core.chinacloudapi.cn' })), `https://${ACCOUNT}.blob.core.chinacloudapi.cn`);
  assert.equal(azureServiceUrl(settings({ serviceUrl: 'http://127.0.0.1:10000/devstoreaccount1/' })), 'http://127.0.0.1:10000/devstoreaccount1');
  assert.equal(blobPath('cache', 'a b/c+d'), '/cache/a%20b/c%2Bd');
});

test('presign: one blob, r for GET/HEAD, w for PUT, start now − 1 h, expiry now + lifetime, https only', async () => {
  const a = await createAzureAdapter(makeContext({ type: 'azure', path: '', shared: false, maxUploadedArchiveSize: 500, azure: settings() }));
  for (const method of ['GET', 'HEAD', 'PUT'] as const) {
    const p = await a.presign({ method, objectName: BLOB, expiresIn: 7200, metadata: { cachekey: 'human' }, now: NOW });
    const u = new URL(p.url);
    assert.equal(u.origin, `https://${ACCOUNT}.blob.core.windows.net`);
    assert.equal(decodeURIComponent(u.pathname), `/cache/${BLOB}`);
    assert.equal(u.searchParams.get('sr'), 'b');
    assert.equal(u.searchParams.get('sp'), method === 'PUT' ? 'w' : 'r');
    assert.equal(u.searchParams.get('spr'), 'https');
    assert.equal(u.searchParams.get('st'), '2026-11-22T11:00:00Z');
    assert.equal(u.searchParams.get('se'), '2026-11-22T14:00:00Z');
    assert.equal(p.expiresAt.getTime(), NOW + 7200_000);
    assert.equal(u.searchParams.get('sv'), SAS_VERSION);
    // The signature is HMAC-SHA256 over the documented service-SAS string (version 2020-12-06 and later).
    const stringToSign = [u.searchParams.get('sp'), '2026-11-22T11:00:00Z', '2026-11-22T14:00:00Z', `/blob/${ACCOUNT}/cache/${BLOB}`, '', '', 'https', SAS_VERSION, 'b', '', '', '', '', '', '', ''].join('\n');
    assert.equal(u.searchParams.get('sig'), createHmac('sha256', Buffer.from(KEY, 'base64')).update(stringToSign).digest('base64'));
    if (method === 'PUT') assert.deepEqual({ ...p.headers }, { 'x-ms-blob-type': 'BlockBlob', 'x-ms-meta-cachekey': 'human' });
    else assert.deepEqual(p.headers, {});
  }
  const local = await createAzureAdapter(makeContext({ type: 'azure', path: '', shared: false, maxUploadedArchiveSize: 0, azure: settings({ serviceUrl: 'http://127.0.0.1:1/acct' }) }));
  const p = await local.presign({ method: 'GET', objectName: 'a', expiresIn: 60, metadata: {}, now: NOW });
  assert.equal(new URL(p.url).searchParams.get('spr'), 'https,http');
});

test('presign: stated contentLength above the cap → 413; configuration errors → invalid_config', async () => {
  const a = await createAzureAdapter(makeContext({ type: 'azure', path: '', shared: false, maxUploadedArchiveSize: 500, azure: settings() }));
  await assert.rejects(
    a.presign({ method: 'PUT', objectName: 'a', expiresIn: 60, metadata: {}, contentLength: 501 }),
    (e: unknown) => e instanceof CacheGateError && e.code === 'payload_too_large' && e.status === 413,
  );
  await a.presign({ method: 'PUT', objectName: 'a', expiresIn: 60, metadata: {}, contentLength: 500 });
  const isConfig = (e: unknown): boolean => e instanceof CacheGateError && e.code === 'invalid_config';
  for (const bad of [{ accountName: '' }, { containerName: '' }, { serviceUrl: 'ftp://x' }, { serviceUrl: 'not a url' }]) {
    await assert.rejects(createAzureAdapter(makeContext({ type: 'azure', path: '', shared: false, maxUploadedArchiveSize: 0, azure: settings(bad) })), isConfig);
  }
});
