/**
 * Base credentials of an S3 profile, resolved once and cached:
 * - access-key: the static AccessKey/SecretKey (+ SessionToken);
 * - iam: the AWS SDK default chain (environment, shared files, web identity, container and instance
 *   metadata), refreshed when the cached set comes within REFRESH_MARGIN_MS of its expiry.
 * Concurrent callers share one resolution (single flight). A resolution that takes longer than
 * TIMEOUTS.callMs fails (503) and the next caller tries again; each remote source of the chain
 * (instance or container metadata, STS for web identity) is bounded on its own as well.
 */
import type { S3Settings } from '../../src/config/types.ts';
import { TIMEOUTS, bounded } from '../timeouts.ts';
import { requestHandlerOptions } from './sdk.ts';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

export type CredentialProvider = () => Promise<Credentials>;

/** Refresh temporary credentials this long before they expire (URLs signed with them die with them). */
export const REFRESH_MARGIN_MS = 5 * 60_000;

export function staticCredentials(s3: S3Settings): Credentials {
  return {
    accessKeyId: s3.accessKey,
    secretAccessKey: s3.secretKey,
    ...(s3.sessionToken !== '' ? { sessionToken: s3.sessionToken } : {}),
  };
}

/** Wrap a provider so it is called once and again only when its credentials near expiry. */
export function cachedProvider(source: CredentialProvider, now: () => number = Date.now): CredentialProvider {
  let current: Credentials | undefined;
  let inflight: Promise<Credentials> | undefined;
  const fresh = (c: Credentials): boolean => c.expiration === undefined || c.expiration.getTime() - REFRESH_MARGIN_MS > now();
  return () => {
    if (current !== undefined && fresh(current)) return Promise.resolve(current);
    if (inflight === undefined) {
      inflight = source().then(
        (c) => {
          current = c;
          inflight = undefined;
          return c;
        },
        (err: unknown) => {
          inflight = undefined;
          throw err;
        },
      );
    }
    return inflight;
  };
}

/** The profile's credential provider. `iam` loads the SDK chain lazily (only when used). */
export function baseCredentials(s3: S3Settings): CredentialProvider {
  if (s3.authenticationType === 'access-key') {
    const c = staticCredentials(s3);
    return () => Promise.resolve(c);
  }
  let chain: CredentialProvider | undefined;
  return cachedProvider(() =>
    bounded('AWS credentials (default chain)', TIMEOUTS.callMs, async () => {
      if (chain === undefined) {
        const { fromNodeProviderChain } = await import('@aws-sdk/credential-providers');
        chain = fromNodeProviderChain({
          // Instance and container metadata: 1 s per request, one retry.
          timeout: 1000,
          maxRetries: 1,
          // STS for web identity tokens and profiles with roles.
          clientConfig: { maxAttempts: 2, requestHandler: requestHandlerOptions },
        }) as CredentialProvider;
      }
      return chain();
    }),
  );
}
