/**
 * `[cachegate.s3_api] redirect_get`: a presigned GET or HEAD of an object, once verified and
 * confined like any other, is answered `307 Temporary Redirect` to the backend's own presigned URL
 * for the same object and method, so its bytes never pass through the door (proxying a 1 MiB GET
 * costs the door more CPU than the backend spends serving it: docs/performance.md).
 *
 * Only presigned requests: that is what a runner hands its helper, and Go's net/http (the helper's
 * client) follows a 307 for GET and HEAD with the same method and its Range header. Header-signed
 * clients (the AWS CLI, boto3, the SDKs) do not follow redirects on object reads, so they stay
 * proxied. Only S3, GCS and Azure: the local backend's own signed URLs point at the service's main
 * listener, which runners may not reach, and the door serves local disk at least as fast as RGW.
 */
import type { CacheAdapter } from '../adapter.ts';
import { backendCall } from '../service/objects.ts';
import type { Answer, ObjectContext } from './object-ops.ts';

/**
 * Lifetime of the backend URL. The client uses it at once; the margin covers a clock of the backend
 * behind the door's (S3 checks X-Amz-Date + X-Amz-Expires against its own clock).
 */
export const REDIRECT_EXPIRES = 300;
const REDIRECTABLE = new Set(['s3', 'gcs', 'azure']);

export function redirects(adapter: CacheAdapter): boolean {
  return REDIRECTABLE.has(adapter.kind);
}

/** The 307 to the backend, or undefined when its URL needs headers a following client would not send (then the door proxies). */
export async function redirectOp(c: ObjectContext, method: 'GET' | 'HEAD'): Promise<Answer | undefined> {
  const p = await backendCall(c.adapter, () => c.adapter.presign({ method, objectName: c.objectName, expiresIn: REDIRECT_EXPIRES, metadata: {} }), c.timeoutMs);
  if (Object.keys(p.headers).length > 0) return undefined;
  return { status: 307, headers: { Location: p.url, 'Cache-Control': 'no-store' } };
}
