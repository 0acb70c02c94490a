/**
 * Application Default Credentials without a key: google-auth-library finds a (fake) GCE metadata
 * server through GCE_METADATA_HOST, and every signature comes from IAM signBlob answered by a local
 * endpoint that signs with a test RSA key. The URLs must pass the independent verifier and the
 * verifying XML endpoint. (Environment changes stay in this test file's own process.)
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGcsAdapter } from '../../adapters/gcs/index.ts';
import type { CacheAdapter } from '../../src/adapter.ts';
import { CacheGateError } from '../../src/errors.ts';
import { makeContext } from '../contract/context.ts';
import { makeServiceAccount, startFakeGoogle, type FakeGoogle } from '../support/gcs-iam.ts';
import { startGcsXmlServer, type GcsXmlServer } from '../support/gcs-xml-server.ts';
import { verifyUrl } from '../support/gcs-verifier.ts';

const sa = makeServiceAccount('adc');
const keys = new Map([[sa.email, sa.publicKey]]);
let google: FakeGoogle;
let server: GcsXmlServer;
let adapter: CacheAdapter;

before(async () => {
  google = await startFakeGoogle(sa);
  server = await startGcsXmlServer({ keys, buckets: ['cache'] });
  delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
  // Without a project in the environment, google-auth-library asks `gcloud config config-helper`
  // before the metadata server: 2-3 s where the Cloud SDK is installed (this machine image has it),
  // over the 4 s bound on a loaded machine. Operators get the same advice (docs/gcs.md).
  process.env.GOOGLE_CLOUD_PROJECT = 'test-project';
  process.env.HOME = mkdtempSync(join(tmpdir(), 'cachegate-adc-home-')); // no gcloud well-known file
  process.env.CLOUDSDK_CONFIG = process.env.HOME;
  process.env.GCE_METADATA_HOST = google.metadataHost;
  process.env.METADATA_SERVER_DETECTION = 'assume-present';
  adapter = await createGcsAdapter(
    makeContext({
      type: 'gcs', path: '', shared: false, maxUploadedArchiveSize: 4096,
      gcs: { credentialsFile: '', accessId: '', privateKey: '', bucketName: 'cache', endpoint: server.endpoint, signatureVersion: 'v4' },
    }),
    { iamEndpoint: google.iamEndpoint },
  );
});
after(async () => {
  await server.stop();
  await google.stop();
});

for (const version of ['v4', 'v2'] as const) {
  test(`${version}: ADC signs through IAM signBlob; URLs verify and round-trip`, async () => {
    const a = version === 'v4'
      ? adapter
      : await createGcsAdapter(
          makeContext({
            type: 'gcs', path: '', shared: false, maxUploadedArchiveSize: 4096,
            gcs: { credentialsFile: '', accessId: '', privateKey: '', bucketName: 'cache', endpoint: server.endpoint, signatureVersion: 'v2' },
          }),
          { iamEndpoint: google.iamEndpoint },
        );
    const before = google.signBlobCalls;
    const name = `runner/r/project/1/adc-${version}`;
    const put = await a.presign({ method: 'PUT', objectName: name, expiresIn: 300, metadata: { cachekey: 'adc' } });
    assert.equal(google.signBlobCalls, before + 1);
    const v = verifyUrl('PUT', put.url, put.headers, keys);
    assert.ok(v.ok && v.email === sa.email, JSON.stringify(v));
    assert.equal((await fetch(put.url, { method: 'PUT', headers: put.headers, body: 'via signBlob' })).status, 200);
    const get = await a.presign({ method: 'GET', objectName: name, expiresIn: 300, metadata: {} });
    const r = await fetch(get.url);
    assert.equal(await r.text(), 'via signBlob');
    assert.equal(r.headers.get('x-goog-meta-cachekey'), 'adc');
    assert.ok(google.tokenCalls >= 1);
  });
}

test('a denied signBlob names the missing permission', async () => {
  google.denySignBlob = true;
  try {
    await assert.rejects(
      adapter.presign({ method: 'GET', objectName: 'runner/r/project/1/x', expiresIn: 60, metadata: {} }),
      (e: unknown) => e instanceof CacheGateError && /iam\.serviceAccounts\.signBlob/.test(e.message) && e.message.includes(sa.email),
    );
  } finally {
    google.denySignBlob = false;
  }
});
