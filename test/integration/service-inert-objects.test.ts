/**
 * Cache objects served from the service's own origin are inert (issue 14.6): uploaded with
 * Content-Type text/html through the proxy or a /v1/blob URL, they come back on GET and HEAD as
 * application/octet-stream, Content-Disposition: attachment, X-Content-Type-Options: nosniff; on
 * every backend's proxy path (local, S3 on RGW, Azure on Azurite, GCS on the verifying XML server).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { startAzurite, type Azurite } from '../support/azurite.ts';
import { makeServiceAccount } from '../support/gcs-iam.ts';
import { startGcsXmlServer, type GcsXmlServer } from '../support/gcs-xml-server.ts';
import { rgw } from '../support/rgw.ts';
import { presign, startTestService, type TestService } from '../support/service.ts';

const HTML = '<html><script>alert(document.cookie)</script></html>';
const BACKENDS = ['local', 's3', 'azure', 'gcs'] as const;
const token = (b: string): string => `glrt-inert-${b}-0000`;

function assertInert(res: Response, what: string): void {
  assert.equal(res.headers.get('content-type'), 'application/octet-stream', what);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff', what);
  assert.equal(res.headers.get('content-disposition'), 'attachment', what);
}

describe('served cache objects are inert', () => {
  let svc: TestService;
  let az: Azurite;
  let gcs: GcsXmlServer;

  before(async () => {
    const server = await rgw();
    const bucket = await server.bucket('inert');
    az = await startAzurite();
    await new BlobServiceClient(az.serviceUrl, new StorageSharedKeyCredential(az.accountName, az.accountKey)).getContainerClient('cache').create();
    const sa = makeServiceAccount();
    gcs = await startGcsXmlServer({ keys: new Map([[sa.email, sa.publicKey]]), buckets: ['cache'] });
    const tables: Record<(typeof BACKENDS)[number], string> = {
      local: '',
      s3: server.toml(bucket),
      azure: `[runners.cache.azure]\nAccountName = "${az.accountName}"\nAccountKey = "${az.accountKey}"\nContainerName = "cache"\nServiceURL = "${az.serviceUrl}"\n`,
      gcs: `[runners.cache.gcs]\nCredentialsFile = "${sa.file}"\nBucketName = "cache"\nEndpoint = "${gcs.endpoint}"\n`,
    };
    svc = await startTestService({
      toml: BACKENDS.map((b) => `[[runners]]\nname = "${b}"\ntoken = "${token(b)}"\n[runners.cache]\nType = "${b}"\n${tables[b]}\n`).join(''),
    });
  });
  after(async () => {
    await svc?.stop();
    await az?.stop();
    await gcs?.stop();
  });

  for (const b of BACKENDS) {
    it(`${b}: a proxy upload sent as text/html comes back as inert bytes on GET and HEAD`, async () => {
      const auth = { authorization: `Bearer ${token(b)}` };
      const url = `${svc.url}/v1/cache/7/page.html`;
      const up = await fetch(url, { method: 'PUT', headers: { ...auth, 'content-type': 'text/html' }, body: HTML });
      assert.equal(up.status, 200, await up.text());
      const get = await fetch(url, { headers: auth });
      assert.equal(get.status, 200);
      assertInert(get, `${b} GET`);
      assert.equal(await get.text(), HTML);
      assertInert(await fetch(url, { method: 'HEAD', headers: auth }), `${b} HEAD`);
      const ranged = await fetch(url, { headers: { ...auth, range: 'bytes=0-5' } });
      assert.equal(ranged.status, 206);
      assertInert(ranged, `${b} ranged GET`);
    });
  }

  it('local: a /v1/blob upload sent as text/html comes back inert; JSON answers carry nosniff too', async () => {
    const up = (await presign(svc, { operation: 'upload', key: 'blob.html', projectId: '7' }, token('local'))).json;
    const put = await fetch(up.url, { method: 'PUT', headers: { ...up.headers, 'content-type': 'text/html' }, body: HTML });
    assert.equal(put.status, 200, await put.text());
    const down = (await presign(svc, { operation: 'download', key: 'blob.html', projectId: '7' }, token('local'))).json;
    assertInert(await fetch(down.url), 'blob GET');
    const head = (await presign(svc, { operation: 'head', key: 'blob.html', projectId: '7' }, token('local'))).json;
    assertInert(await fetch(head.url, { method: 'HEAD' }), 'blob HEAD');
    for (const res of [await fetch(`${svc.url}/healthz`), await fetch(`${svc.url}/v1/presign`, { method: 'POST', body: '{}' }), await fetch(`${svc.url}/nowhere`)]) {
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', res.url);
    }
  });
});
