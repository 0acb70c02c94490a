/**
 * AWS SDK clients (S3 for proxy mode, region detection and readiness; STS for RoleARN), loaded lazily
 * so that the presign path and the service's start never pay for them. Every client connects within
 * TIMEOUTS.connectMs and fails a socket idle for TIMEOUTS.idleMs; the callers bound each call as a
 * whole (adapters/timeouts.ts, docs/faults.md).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { STSClient } from '@aws-sdk/client-sts';
import type { S3Settings } from '../../src/config/types.ts';
import type { AssumeRoleCall, AssumeRoleInput, RoleCredentials } from './assume-role.ts';
import type { CredentialProvider } from './credentials.ts';
import { customEndpoint, effectivePathStyle, s3ExpressZone } from './endpoint.ts';
import { TIMEOUTS } from '../timeouts.ts';

/**
 * Connections to the backend per client (the SDK's default is 50). Proxy transfers and the S3 front
 * door hold one for as long as a client's body or download streams, and the service admits
 * `max_uploads` (default 128) uploads at once plus downloads: with 50, the 51st transfer waited
 * inside the SDK with its client's body unread. 128 matches the descriptors
 * `effectiveMaxConnections()` keeps back for uploads (src/config/connection-limits.ts).
 */
export const BACKEND_SOCKETS = 128;

/**
 * NodeHttpHandler options (@smithy/node-http-handler): no fixed requestTimeout, which would also cut
 * a long upload or download; a connection that does not open, or a socket where nothing moves, fails.
 */
export const requestHandlerOptions = {
  connectionTimeout: TIMEOUTS.connectMs,
  socketTimeout: TIMEOUTS.idleMs,
  httpAgent: { keepAlive: true, maxSockets: BACKEND_SOCKETS },
  httpsAgent: { keepAlive: true, maxSockets: BACKEND_SOCKETS },
} as const;

/** The SDK's logger interface; the SDK writes to console when given none. */
export interface SdkLogger {
  trace(...content: unknown[]): void;
  debug(...content: unknown[]): void;
  info(...content: unknown[]): void;
  warn(...content: unknown[]): void;
  error(...content: unknown[]): void;
}

export const quietLogger: SdkLogger = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

export async function createS3Client(s3: S3Settings, region: string, credentials: CredentialProvider, logger: SdkLogger = quietLogger): Promise<S3Client> {
  const { S3Client } = await import('@aws-sdk/client-s3');
  const custom = customEndpoint(s3);
  const express = s3ExpressZone(s3.bucketName) !== undefined;
  return new S3Client({
    region,
    credentials,
    ...(custom !== undefined ? { endpoint: custom.url } : {}),
    forcePathStyle: effectivePathStyle(s3),
    useDualstackEndpoint: custom === undefined && !express && s3.dualStack,
    useAccelerateEndpoint: custom === undefined && !express && s3.accelerate && !effectivePathStyle(s3),
    // Plain SigV4 for directory buckets too (no 5-minute CreateSession credentials).
    disableS3ExpressSessionAuth: true,
    // SDK default would add x-amz-checksum-* / aws-chunked trailers that non-AWS servers mis-store.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Bucket location lookups follow the bucket to its region.
    followRegionRedirects: true,
    maxAttempts: TIMEOUTS.attempts,
    requestHandler: requestHandlerOptions,
    logger,
  });
}

/** STS on AWS (regional endpoint), or on the custom S3 endpoint (Ceph RGW and MinIO serve STS there). */
export async function createStsClient(s3: S3Settings, region: string, credentials: CredentialProvider): Promise<STSClient> {
  const { STSClient } = await import('@aws-sdk/client-sts');
  const custom = customEndpoint(s3);
  return new STSClient({
    region,
    credentials,
    ...(custom !== undefined ? { endpoint: custom.url } : {}),
    maxAttempts: 2,
    requestHandler: requestHandlerOptions,
  });
}

/** AssumeRole through an STS client; a client with `send` (real or test double) is enough. */
export async function assumeRoleWith(client: Pick<STSClient, 'send'>, input: AssumeRoleInput, abortSignal?: AbortSignal): Promise<RoleCredentials> {
  const { AssumeRoleCommand } = await import('@aws-sdk/client-sts');
  const out = await client.send(new AssumeRoleCommand(input), abortSignal !== undefined ? { abortSignal } : {});
  const c = out.Credentials;
  if (c?.AccessKeyId === undefined || c.SecretAccessKey === undefined || c.SessionToken === undefined) {
    throw new Error('AssumeRole answered without credentials');
  }
  return {
    accessKeyId: c.AccessKeyId,
    secretAccessKey: c.SecretAccessKey,
    sessionToken: c.SessionToken,
    expiration: c.Expiration ?? new Date(Date.now() + 3600_000),
  };
}

export function stsCall(getClient: () => Promise<Pick<STSClient, 'send'>>): AssumeRoleCall {
  return async (input) => assumeRoleWith(await getClient(), input);
}
