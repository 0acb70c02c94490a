/**
 * Test service accounts and a fake Google metadata server + IAM Credentials `signBlob` endpoint,
 * so the Application Default Credentials path runs for real (google-auth-library discovers the
 * "GCE" metadata server through GCE_METADATA_HOST) and signs through HTTP with a test RSA key.
 */
import http from 'node:http';
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

export interface TestServiceAccount {
  email: string;
  privateKeyPem: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** A service-account JSON file holding the key (like a CredentialsFile). */
  file: string;
}

export function makeServiceAccount(name = 'cachegate-test'): TestServiceAccount {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const email = `${name}@test-project.iam.gserviceaccount.com`;
  const dir = mkdtempSync(join(tmpdir(), 'cachegate-gcs-'));
  const file = join(dir, 'sa.json');
  writeFileSync(
    file,
    JSON.stringify({
      type: 'service_account',
      project_id: 'test-project',
      private_key_id: randomBytes(8).toString('hex'),
      private_key: privateKeyPem,
      client_email: email,
      client_id: '1',
      token_uri: 'http://127.0.0.1:9/token',
    }),
  );
  return { email, privateKeyPem, privateKey, publicKey, file };
}

export interface FakeGoogle {
  /** host:port for GCE_METADATA_HOST */
  metadataHost: string;
  /** Base URL for the IAM Credentials API */
  iamEndpoint: string;
  /** Number of signBlob calls answered (successfully or not). */
  signBlobCalls: number;
  tokenCalls: number;
  /** When true, signBlob answers 403 PERMISSION_DENIED. */
  denySignBlob: boolean;
  stop(): Promise<void>;
}

export async function startFakeGoogle(sa: TestServiceAccount): Promise<FakeGoogle> {
  const token = `ya29.test-${randomBytes(8).toString('hex')}`;
  const state = { signBlobCalls: 0, tokenCalls: 0, denySignBlob: false };
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const json = (status: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'metadata-flavor': 'Google' });
      res.end(text);
    };
    if (url.startsWith('/computeMetadata/v1')) {
      req.resume();
      if (req.headers['metadata-flavor'] !== 'Google') return json(403, { error: 'missing Metadata-Flavor' });
      const path = url.split('?')[0];
      res.setHeader('metadata-flavor', 'Google');
      if (path === '/computeMetadata/v1/instance/service-accounts/default/token') {
        state.tokenCalls++;
        return json(200, { access_token: token, expires_in: 3599, token_type: 'Bearer' });
      }
      if (path === '/computeMetadata/v1/instance/service-accounts/default/email') {
        res.writeHead(200, { 'content-type': 'application/text', 'metadata-flavor': 'Google' });
        return void res.end(sa.email);
      }
      if (path === '/computeMetadata/v1/project/project-id') {
        res.writeHead(200, { 'content-type': 'application/text', 'metadata-flavor': 'Google' });
        return void res.end('test-project');
      }
      if (path === '/computeMetadata/v1/instance' || path === '/computeMetadata/v1/' || path === '/computeMetadata/v1') {
        res.writeHead(200, { 'content-type': 'application/text', 'metadata-flavor': 'Google' });
        return void res.end('');
      }
      res.writeHead(404, { 'metadata-flavor': 'Google' });
      return void res.end();
    }
    const m = /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):signBlob$/.exec(url);
    if (req.method === 'POST' && m) {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        state.signBlobCalls++;
        if (req.headers.authorization !== `Bearer ${token}`) return json(401, { error: { code: 401, status: 'UNAUTHENTICATED' } });
        if (state.denySignBlob) {
          return json(403, { error: { code: 403, message: "Permission 'iam.serviceAccounts.signBlob' denied", status: 'PERMISSION_DENIED' } });
        }
        if (decodeURIComponent(m[1]) !== sa.email) return json(404, { error: { code: 404, status: 'NOT_FOUND' } });
        const payload = Buffer.from((JSON.parse(body) as { payload: string }).payload, 'base64');
        json(200, { keyId: 'test-key', signedBlob: sign('sha256', payload, sa.privateKey).toString('base64') });
      });
      return;
    }
    req.resume();
    json(404, { error: 'not found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const fake: FakeGoogle = {
    metadataHost: `127.0.0.1:${port}`,
    iamEndpoint: `http://127.0.0.1:${port}`,
    get signBlobCalls() {
      return state.signBlobCalls;
    },
    get tokenCalls() {
      return state.tokenCalls;
    },
    get denySignBlob() {
      return state.denySignBlob;
    },
    set denySignBlob(v: boolean) {
      state.denySignBlob = v;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return fake;
}
