/**
 * Where an S3 request points: the bucket and the object name, from a path-style URL
 * (`/<bucket>/<key>`) or a virtual-host-style one (`<bucket>.<host>/<key>`).
 */
import { S3Error } from './errors.ts';

export interface S3Address {
  bucket: string;
  /** '' for bucket-level requests. */
  key: string;
  /** The request path, percent-decoded once (what the signature's canonical URI is built from). */
  path: string;
}

export function addressOf(rawPath: string, host: string | undefined, bucket: string): S3Address {
  let path = rawPath;
  if (rawPath.includes('%')) {
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      throw new S3Error('InvalidArgument', 400, 'the request path is not valid percent-encoding');
    }
  }
  if (host !== undefined && virtualHosted(host, bucket)) return { bucket, key: path.slice(1), path };
  const slash = path.indexOf('/', 1);
  if (slash === -1) return { bucket: path.slice(1), key: '', path };
  return { bucket: path.slice(1, slash), key: path.slice(slash + 1), path };
}

/** `<bucket>.<host>[:port]`, host names compared without case. */
function virtualHosted(host: string, bucket: string): boolean {
  return host.length > bucket.length + 1 && host.charCodeAt(bucket.length) === 0x2e && host.slice(0, bucket.length).toLowerCase() === bucket;
}
