/**
 * The `s3://bucket/object?…` URL (gocloud.dev blob URL) a helper opens with RoleARN credentials.
 * Query rules and cases: vectors/naming.json "goCloudUrl".
 */
import type { S3Settings } from '../../src/config/types.ts';
import { customEndpoint, effectivePathStyle, encodeObjectPath } from './endpoint.ts';

/**
 * @param region BucketLocation, or the detected region when BucketLocation is empty ('' = leave out).
 */
export function goCloudUrl(s3: S3Settings, objectName: string, region: string): string {
  const q: Record<string, string> = { awssdk: 'v2' };
  if (region !== '') q.region = region;
  const custom = customEndpoint(s3);
  if (custom !== undefined) {
    q.endpoint = custom.url;
    if (effectivePathStyle(s3)) {
      q.hostname_immutable = 'true';
      q.use_path_style = 'true';
    }
  }
  if (s3.dualStack) q.dualstack = 'true';
  if (s3.accelerate) q.accelerate = 'true';
  if (s3.serverSideEncryption !== '') {
    q.ssetype = s3.serverSideEncryption;
    if (s3.serverSideEncryption !== 'AES256' && s3.serverSideEncryptionKeyId !== '') q.kmskeyid = s3.serverSideEncryptionKeyId;
  }
  const query = Object.keys(q)
    .sort()
    .map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(q[k])}`)
    .join('&');
  return `s3://${s3.bucketName}/${encodeObjectPath(objectName)}?${query}`;
}
