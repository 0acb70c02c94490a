/**
 * `--gocloud-url s3://bucket/object?…` (gocloud.dev blob URL, as GitLab Runner hands it to its helper)
 * → where to send S3 requests. Query keys honoured: `region`, `endpoint`, `use_path_style` (also
 * `s3ForcePathStyle`), `hostname_immutable`, `dualstack`, `accelerate`, `fips`, `ssetype`, `kmskeyid`,
 * `awssdk` (v1/v2 mean the same here); others are ignored.
 */
import { uriEncode } from '../sign/sigv4.ts';
import { CacheGateError } from '../errors.ts';

export interface S3Location {
  bucket: string;
  /** Object key, decoded. */
  key: string;
  region: string;
  /** The object's URL (no query), path already URI-encoded for signing. */
  objectUrl: URL;
  /** `x-amz-server-side-encryption` (+ key id) to send on PutObject / CreateMultipartUpload. */
  sseHeaders: Record<string, string>;
}

const bad = (msg: string): CacheGateError => new CacheGateError('invalid_request', 400, `gocloud URL: ${msg}`);
const truthy = (v: string | null): boolean => v !== null && /^(1|true|yes)$/i.test(v);

const SSE: Record<string, string> = { s3: 'AES256', aes256: 'AES256', kms: 'aws:kms', 'aws:kms': 'aws:kms', 'dsse-kms': 'aws:kms:dsse', 'aws:kms:dsse': 'aws:kms:dsse' };

export function encodeKeyPath(key: string): string {
  return key.split('/').map(uriEncode).join('/');
}

export function parseGoCloudUrl(raw: string): S3Location {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw bad('not a URL');
  }
  if (u.protocol !== 's3:') throw new CacheGateError('unsupported', 400, `gocloud URL: scheme ${u.protocol.replace(/:$/, '')}:// is not supported (only s3://)`);
  const bucket = decodeURIComponent(u.hostname);
  const key = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (bucket === '') throw bad('no bucket');
  if (key === '') throw bad('no object name');
  const q = u.searchParams;
  const region = q.get('region') || 'us-east-1';
  const endpoint = q.get('endpoint');
  const pathStyle = truthy(q.get('use_path_style')) || truthy(q.get('s3ForcePathStyle'));
  let base: URL;
  let virtualHost: boolean;
  if (endpoint) {
    try {
      base = new URL(/^[a-z]+:\/\//i.test(endpoint) ? endpoint : `https://${endpoint}`);
    } catch {
      throw bad(`endpoint ${JSON.stringify(endpoint)} is not a URL`);
    }
    virtualHost = !pathStyle && !truthy(q.get('hostname_immutable'));
  } else {
    const dual = truthy(q.get('dualstack')) ? '.dualstack' : '';
    const cn = region.startsWith('cn-') ? '.cn' : '';
    const accelerate = truthy(q.get('accelerate')) && !pathStyle;
    const fips = truthy(q.get('fips')) ? '-fips' : '';
    base = new URL(accelerate ? `https://s3-accelerate${dual}.amazonaws.com` : `https://s3${fips}${dual}.${region}.amazonaws.com${cn}`);
    // A dotted bucket name would not match the wildcard certificate of a virtual host.
    virtualHost = !pathStyle && !bucket.includes('.');
  }
  const prefix = base.pathname.replace(/\/+$/, '');
  const objectUrl = new URL(base.origin);
  if (virtualHost) objectUrl.hostname = `${bucket}.${objectUrl.hostname}`;
  objectUrl.pathname = virtualHost ? `${prefix}/${encodeKeyPath(key)}` : `${prefix}/${uriEncode(bucket)}/${encodeKeyPath(key)}`;

  const sseHeaders: Record<string, string> = {};
  const ssetype = q.get('ssetype');
  if (ssetype) {
    const v = SSE[ssetype.toLowerCase()];
    if (v === undefined) throw bad(`unknown ssetype ${JSON.stringify(ssetype)}`);
    sseHeaders['x-amz-server-side-encryption'] = v;
    const kms = q.get('kmskeyid');
    if (kms && v !== 'AES256') sseHeaders['x-amz-server-side-encryption-aws-kms-key-id'] = kms;
  }
  return { bucket, key, region, objectUrl, sseHeaders };
}
