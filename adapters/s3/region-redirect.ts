/**
 * S3's answer to a request signed for the wrong region (a wrong or missing BucketLocation): 301
 * PermanentRedirect, 307 TemporaryRedirect or 400 AuthorizationHeaderMalformed /
 * AuthorizationQueryParametersError, each naming the bucket's region in `x-amz-bucket-region`.
 * The AWS SDK re-signs for that region and tries once more; so do direct-get.ts and direct-put.ts.
 */
import type { IncomingMessage } from 'node:http';

/** The region the answer names, when it is a wrong-region answer for a URL signed for another one. */
export function movedRegion(res: IncomingMessage, url: URL): string | undefined {
  const status = res.statusCode;
  if (status !== 301 && status !== 307 && status !== 400) return undefined;
  const region = res.headers['x-amz-bucket-region'];
  if (typeof region !== 'string' || !/^[a-z0-9-]{1,64}$/.test(region)) return undefined;
  // X-Amz-Credential = <access key>/<date>/<region>/<service>/aws4_request
  const signedFor = url.searchParams.get('X-Amz-Credential')?.split('/')[2];
  return region !== signedFor ? region : undefined;
}
