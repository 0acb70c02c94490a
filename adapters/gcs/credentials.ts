/**
 * Where GCS signatures come from, in GitLab Runner's order:
 *   1. CredentialsFile (service-account JSON) — wins;
 *   2. AccessID + PrivateKey;
 *   3. Application Default Credentials: a key when ADC holds one, otherwise IAM `signBlob`
 *      (the service account needs `iam.serviceAccounts.signBlob` on itself).
 * ADC lookups, access tokens (metadata server) and signBlob are each bounded by TIMEOUTS.callMs.
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey, sign as rsaSign, type KeyObject } from 'node:crypto';
import { CacheGateError, backendUnavailable } from '../../src/errors.ts';
import type { GcsSettings } from '../../src/config/types.ts';
import type { SignBytes } from './sign.ts';
import { TIMEOUTS, bounded } from '../timeouts.ts';

export const DEFAULT_IAM_ENDPOINT = 'https://iamcredentials.googleapis.com';

export interface GcsSigner {
  email: string;
  sign: SignBytes;
  source: 'credentials-file' | 'access-id' | 'adc-key' | 'adc-signblob';
}

export interface AdcOptions {
  /** Base URL of the IAM Credentials API (tests point it at a local endpoint). */
  iamEndpoint?: string;
}

const invalidConfig = (message: string, cause?: unknown): CacheGateError =>
  new CacheGateError('invalid_config', 500, message, { cause });

/** Parses a PEM private key; accepts the `\n`-escaped form found in TOML files and env vars. */
export function parsePrivateKey(pem: string, what: string): KeyObject {
  const text = pem.includes('\\n') && !pem.includes('\n') ? pem.replace(/\\n/g, '\n') : pem;
  try {
    return createPrivateKey(text);
  } catch (err) {
    throw invalidConfig(`gcs: ${what} is not a valid PEM private key`, err);
  }
}

export function localSigner(key: KeyObject): SignBytes {
  return (data: string) => rsaSign('sha256', Buffer.from(data), key);
}

interface ServiceAccountJson {
  type?: string;
  client_email?: string;
  private_key?: string;
}

export function signerFromCredentialsFile(file: string): GcsSigner {
  let json: ServiceAccountJson;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as ServiceAccountJson;
  } catch (err) {
    throw invalidConfig(`gcs: cannot read CredentialsFile ${file}: ${(err as Error).message}`, err);
  }
  if (json.type !== undefined && json.type !== 'service_account') {
    throw invalidConfig(`gcs: CredentialsFile ${file} holds "${json.type}" credentials; signed URLs need a service-account key`);
  }
  if (!json.client_email || !json.private_key) {
    throw invalidConfig(`gcs: CredentialsFile ${file} lacks client_email or private_key`);
  }
  return { email: json.client_email, sign: localSigner(parsePrivateKey(json.private_key, `private_key in ${file}`)), source: 'credentials-file' };
}

export async function resolveSigner(settings: GcsSettings, adc: AdcOptions = {}): Promise<GcsSigner> {
  if (settings.credentialsFile) return signerFromCredentialsFile(settings.credentialsFile);
  if (settings.accessId && settings.privateKey) {
    return { email: settings.accessId, sign: localSigner(parsePrivateKey(settings.privateKey, 'PrivateKey')), source: 'access-id' };
  }
  if (settings.accessId || settings.privateKey) {
    throw invalidConfig('gcs: AccessID and PrivateKey must be given together');
  }
  return adcSigner(adc);
}

/** Application Default Credentials (loaded lazily: only this path needs the Google auth library). */
async function adcSigner(options: AdcOptions): Promise<GcsSigner> {
  const { Storage } = await import('@google-cloud/storage');
  const auth = new Storage().authClient;
  let creds: { client_email?: string; private_key?: string };
  try {
    creds = await bounded('gcs: Application Default Credentials', TIMEOUTS.callMs, () => auth.getCredentials());
  } catch (err) {
    if (err instanceof CacheGateError) throw err;
    throw backendUnavailable(`gcs: no Application Default Credentials found (${(err as Error).message}); set CredentialsFile or AccessID + PrivateKey`, err);
  }
  const email = creds.client_email;
  if (!email) {
    throw invalidConfig('gcs: Application Default Credentials have no service-account e-mail; signed URLs need a service account');
  }
  if (creds.private_key) {
    return { email, sign: localSigner(parsePrivateKey(creds.private_key, 'the ADC private key')), source: 'adc-key' };
  }
  const iam = (options.iamEndpoint ?? DEFAULT_IAM_ENDPOINT).replace(/\/+$/, '');
  const url = `${iam}/v1/projects/-/serviceAccounts/${encodeURIComponent(email)}:signBlob`;
  const sign = async (data: string): Promise<Buffer> => {
    let token: string | null | undefined;
    try {
      token = await bounded('gcs: access token (Application Default Credentials)', TIMEOUTS.callMs, () => auth.getAccessToken());
    } catch (err) {
      if (err instanceof CacheGateError) throw err;
      throw backendUnavailable(`gcs: cannot get an access token from Application Default Credentials: ${(err as Error).message}`, err);
    }
    let res: Response;
    let body: { signedBlob?: string } = {};
    try {
      // The answer's body is read within the bound too.
      res = await bounded('gcs: IAM signBlob', TIMEOUTS.callMs, async (signal) => {
        const r = await fetch(url, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ payload: Buffer.from(data).toString('base64') }),
          signal,
        });
        if (r.ok) body = (await r.json()) as { signedBlob?: string };
        else await r.body?.cancel();
        return r;
      });
    } catch (err) {
      if (err instanceof CacheGateError) throw err;
      throw backendUnavailable(`gcs: IAM signBlob unreachable: ${(err as Error).message}`, err);
    }
    if (res.status === 401 || res.status === 403) {
      throw new CacheGateError(
        'backend_error',
        502,
        `gcs: IAM signBlob denied (${res.status}) for ${email}: the service account needs the iam.serviceAccounts.signBlob permission ` +
          '(e.g. roles/iam.serviceAccountTokenCreator on itself), or configure CredentialsFile / AccessID + PrivateKey',
      );
    }
    if (!res.ok) throw backendUnavailable(`gcs: IAM signBlob failed with HTTP ${res.status}`);
    if (!body.signedBlob) throw new CacheGateError('backend_error', 502, 'gcs: IAM signBlob answered without signedBlob');
    return Buffer.from(body.signedBlob, 'base64');
  };
  return { email, sign, source: 'adc-signblob' };
}
