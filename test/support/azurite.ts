/**
 * Starts Azurite's blob service as a child process of the pinned Node (never through npx, whose PID
 * is not the server's) on a port it picks, and stops it by PID.
 * `https: true` adds `--oauth basic` with a throw-away self-signed certificate made by openssl,
 * trusted in this process through tls.setDefaultCACertificates (fetch and the SDK both use it),
 * and a bearer-token credential Azurite accepts (aud/iss/times valid; signature not checked).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { AccessToken, TokenCredential } from '@azure/identity';

export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface Azurite {
  /** e.g. http://127.0.0.1:43553/devstoreaccount1 */
  serviceUrl: string;
  accountName: string;
  accountKey: string;
  port: number;
  https: boolean;
  stop(): Promise<void>;
}

const root = new URL('../../', import.meta.url).pathname;

function makeCert(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert,
  ], { stdio: 'ignore' });
  return { cert, key };
}

export async function startAzurite(opts: { https?: boolean } = {}): Promise<Azurite> {
  const dir = mkdtempSync(join(tmpdir(), 'cachegate-azurite-'));
  const args = [
    join(root, 'node_modules/azurite/dist/src/blob/main.js'),
    '--blobHost', '127.0.0.1', '--blobPort', '0', '--inMemoryPersistence', '--extentMemoryLimit', '256',
    '--skipApiVersionCheck', '--disableTelemetry', '--silent',
  ];
  if (opts.https) {
    const { cert, key } = makeCert(dir);
    args.push('--oauth', 'basic', '--cert', cert, '--key', key);
    tls.setDefaultCACertificates([...tls.getCACertificates('default'), readFileSync(cert, 'utf8')]);
  }
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk;
      const m = /listens on https?:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (m) resolve(Number(m[1]));
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`azurite exited (${code}): ${output}`)));
    child.once('error', reject);
  });
  child.stdout?.resume();
  child.stderr?.resume();
  const scheme = opts.https ? 'https' : 'http';
  return {
    serviceUrl: `${scheme}://127.0.0.1:${port}/${AZURITE_ACCOUNT}`,
    accountName: AZURITE_ACCOUNT,
    accountKey: AZURITE_KEY,
    port,
    https: Boolean(opts.https),
    stop: async () => {
      if (child.exitCode === null && child.pid !== undefined) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function b64url(obj: object): string {
  return Buffer.from(JSON.stringify(obj)).toString('base64url');
}

/** An unsigned JWT with the claims Azurite checks (aud, iss, iat/nbf/exp). */
export function azuriteToken(lifetimeSeconds = 3600): AccessToken {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    aud: 'https://storage.azure.com',
    iss: 'https://sts.windows.net/ab1f708d-50f6-404c-a006-d71b2ac7a606/',
    iat: now - 60,
    nbf: now - 60,
    exp: now + lifetimeSeconds,
    oid: '11059fcc-5514-4800-b5f8-49808b9cfab6',
    tid: 'ab1f708d-50f6-404c-a006-d71b2ac7a606',
  };
  return { token: `${b64url({ alg: 'RS256', typ: 'JWT' })}.${b64url(claims)}.c2ln`, expiresOnTimestamp: (now + lifetimeSeconds) * 1000 };
}

/** A TokenCredential for Azurite; counts getToken calls. */
export function azuriteCredential(): TokenCredential & { calls: number } {
  const cred = {
    calls: 0,
    async getToken(): Promise<AccessToken> {
      cred.calls++;
      return azuriteToken();
    },
  };
  return cred;
}
