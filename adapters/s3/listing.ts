/** DeleteObject and ListObjectsV2 on the profile's bucket, for the S3 front door. */
import type { ListOptions, ListPage } from '../../src/adapter.ts';
import { TIMEOUTS, bounded } from '../timeouts.ts';
import { toCacheGateError } from './errors.ts';
import type { ProxyDeps } from './proxy.ts';

/** S3 deletes are idempotent and do not say whether the object existed: a HEAD first would race anyway. */
export async function deleteObject(d: ProxyDeps, key: string): Promise<boolean> {
  const { DeleteObjectCommand } = await import('@aws-sdk/client-s3');
  try {
    const client = await d.client();
    await bounded('S3 DeleteObject', TIMEOUTS.callMs, (abortSignal) => client.send(new DeleteObjectCommand({ Bucket: d.s3.bucketName, Key: key }), { abortSignal }));
    return true;
  } catch (err) {
    throw toCacheGateError(err, 'DeleteObject', d.secrets);
  }
}

export async function listObjects(d: ProxyDeps, prefix: string, opts: ListOptions): Promise<ListPage> {
  const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
  try {
    const client = await d.client();
    const out = await bounded('S3 ListObjectsV2', TIMEOUTS.callMs, (abortSignal) => client.send(new ListObjectsV2Command({
      Bucket: d.s3.bucketName, Prefix: prefix, MaxKeys: opts.max, ...(opts.startAfter !== undefined ? { StartAfter: opts.startAfter } : {}),
    }), { abortSignal }));
    return {
      objects: (out.Contents ?? []).filter((o) => o.Key !== undefined).map((o) => ({
        name: o.Key as string, size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0), ...(o.ETag !== undefined ? { etag: o.ETag } : {}),
      })),
      truncated: out.IsTruncated ?? false,
    };
  } catch (err) {
    throw toCacheGateError(err, 'ListObjectsV2', d.secrets);
  }
}
