/**
 * AccountKey empty and no injected credential: the adapter builds DefaultAzureCredential, which finds
 * an App Service managed identity (IDENTITY_ENDPOINT / IDENTITY_HEADER) answered by a local endpoint
 * with a token Azurite accepts, gets a user-delegation key from Azurite and signs with it.
 * (Environment changes stay in this test file's own process.)
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { createAzureAdapter } from '../../adapters/azure/index.ts';
import { makeContext } from '../contract/context.ts';
import { azuriteToken, startAzurite, type Azurite } from '../support/azurite.ts';

let az: Azurite;
let identity: http.Server;
let tokenRequests = 0;
const SECRET_HEADER = 'identity-header-secret';

before(async () => {
  az = await startAzurite({ https: true });
  await new BlobServiceClient(az.serviceUrl, new StorageSharedKeyCredential(az.accountName, az.accountKey)).getContainerClient('cache').create();
  identity = http.createServer((req, res) => {
    req.resume();
    tokenRequests++;
    if (req.headers['x-identity-header'] !== SECRET_HEADER) {
      res.writeHead(401).end();
      return;
    }
    const t = azuriteToken();
    const resource = new URL(req.url ?? '/', 'http://x').searchParams.get('resource') ?? '';
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ access_token: t.token, expires_on: String(Math.floor(t.expiresOnTimestamp / 1000)), resource, token_type: 'Bearer' }));
  });
  await new Promise<void>((r) => identity.listen(0, '127.0.0.1', r));
  for (const k of Object.keys(process.env)) if (k.startsWith('AZURE_') || k.startsWith('MSI_') || k.startsWith('IDENTITY_')) delete process.env[k];
  process.env.IDENTITY_ENDPOINT = `http://127.0.0.1:${(identity.address() as AddressInfo).port}/msi/token`;
  process.env.IDENTITY_HEADER = SECRET_HEADER;
});
after(async () => {
  identity?.closeAllConnections();
  identity?.close();
  await az?.stop();
});

test('DefaultAzureCredential (managed identity) → user-delegation SAS that Azurite accepts', async () => {
  const adapter = await createAzureAdapter(
    makeContext({
      type: 'azure', path: '', shared: false, maxUploadedArchiveSize: 0,
      azure: { accountName: az.accountName, accountKey: '', containerName: 'cache', storageDomain: '', serviceUrl: az.serviceUrl },
    }),
  );
  const put = await adapter.presign({ method: 'PUT', objectName: 'runner/r/project/1/dac', expiresIn: 600, metadata: { cachekey: 'dac' } });
  assert.ok(new URL(put.url).searchParams.get('skoid'), 'signed with a delegation key');
  assert.ok(tokenRequests >= 1, 'the managed-identity endpoint was asked for a token');
  assert.equal((await fetch(put.url, { method: 'PUT', headers: put.headers, body: 'dac bytes' })).status, 201);
  const get = await adapter.presign({ method: 'GET', objectName: 'runner/r/project/1/dac', expiresIn: 600, metadata: {} });
  const r = await fetch(get.url);
  assert.equal(await r.text(), 'dac bytes');
  assert.equal(r.headers.get('x-ms-meta-cachekey'), 'dac');
});
