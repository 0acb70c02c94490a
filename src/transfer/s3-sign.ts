/**
 * SigV4 in the Authorization header (not the query) for requests made with role credentials:
 * multipart upload calls, PutObject and ranged GetObject. UNSIGNED-PAYLOAD, so a part streams from
 * the file without being hashed first. Signs `host` and every `x-amz-*` header.
 */
import { createHash, createHmac } from 'node:crypto';
import { amzDate, uriEncode, type SigningCredentials } from '../sign/sigv4.ts';

export type { SigningCredentials };

const keys = new Map<string, Buffer>();

function signingKey(secret: string, day: string, region: string, service: string): Buffer {
  const id = `${day}\n${region}\n${service}\n${secret}`;
  let key = keys.get(id);
  if (key === undefined) {
    key = createHmac('sha256', `AWS4${secret}`).update(day).digest();
    for (const part of [region, service, 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
    if (keys.size >= 16) keys.clear();
    keys.set(id, key);
  }
  return key;
}

export function canonicalQuery(params: URLSearchParams): string {
  const pairs = [...params].map(([k, v]) => [uriEncode(k), uriEncode(v)]);
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

export interface SignInput {
  method: string;
  /** Path already URI-encoded (used verbatim), query in searchParams. */
  url: URL;
  /** Lower-case names. */
  headers: Record<string, string>;
  credentials: SigningCredentials;
  region: string;
  service?: string;
  now?: number;
}

/** Returns the headers to send: the given ones plus host, x-amz-date, x-amz-content-sha256, (token,) authorization. */
export function signHeaders(p: SignInput): Record<string, string> {
  const service = p.service ?? 's3';
  const date = amzDate(p.now ?? Date.now());
  const day = date.slice(0, 8);
  const out: Record<string, string> = { ...p.headers, host: p.url.host, 'x-amz-date': date, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' };
  if (p.credentials.sessionToken) out['x-amz-security-token'] = p.credentials.sessionToken;
  const signed = Object.keys(out).filter((n) => n === 'host' || n.startsWith('x-amz-')).sort();
  const canonicalHeaders = signed.map((n) => `${n}:${out[n].trim().replace(/\s+/g, ' ')}\n`).join('');
  const signedHeaders = signed.join(';');
  const canonicalRequest = `${p.method}\n${p.url.pathname}\n${canonicalQuery(p.url.searchParams)}\n${canonicalHeaders}\n${signedHeaders}\nUNSIGNED-PAYLOAD`;
  const scope = `${day}/${p.region}/${service}/aws4_request`;
  const stringToSign = `AWS4-HMAC-SHA256\n${date}\n${scope}\n${createHash('sha256').update(canonicalRequest).digest('hex')}`;
  const signature = createHmac('sha256', signingKey(p.credentials.secretAccessKey, day, p.region, service)).update(stringToSign).digest('hex');
  out.authorization = `AWS4-HMAC-SHA256 Credential=${p.credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return out;
}

/** AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN from the env file (then the process). */
export function credentialsFromEnv(env: Record<string, string | undefined>, fallback: Record<string, string | undefined> = {}): SigningCredentials | undefined {
  const pick = (k: string): string | undefined => env[k] || fallback[k] || undefined;
  const accessKeyId = pick('AWS_ACCESS_KEY_ID');
  const secretAccessKey = pick('AWS_SECRET_ACCESS_KEY');
  if (!accessKeyId || !secretAccessKey) return undefined;
  const sessionToken = pick('AWS_SESSION_TOKEN');
  return sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey };
}
