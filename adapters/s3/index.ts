/**
 * The S3 backend: AWS S3 and S3-compatible servers (MinIO, Ceph RGW).
 *
 * - presign(): SigV4 query presigning without the SDK's middleware stack (presigner.ts);
 * - scopedCredentials(): RoleARN / UploadRoleARN through STS AssumeRole (assume-role.ts);
 * - head/get/put/ready(): the SDK (proxy.ts), loaded lazily.
 * The region is BucketLocation or detected once with GetBucketLocation (region.ts).
 */
import type {
  AdapterContext, CacheAdapter, Direction, GetResult, ObjectInfo, PresignInput, PresignedRequest, PutInput, ScopedCredentials, ByteRange, ListOptions,
} from '../../src/adapter.ts';
import type { S3Settings } from '../../src/config/types.ts';
import { CacheGateError } from '../../src/errors.ts';
import type { S3Client } from '@aws-sdk/client-s3';
import type { STSClient } from '@aws-sdk/client-sts';
import { RoleCredentialCache, sessionPolicy } from './assume-role.ts';
import type { AssumeRoleCall, AssumeRoleResult } from './assume-role.ts';
import { baseCredentials } from './credentials.ts';
import type { CredentialProvider } from './credentials.ts';
import { customEndpoint, resolveTarget, s3ExpressZone } from './endpoint.ts';
import type { Target } from './endpoint.ts';
import { describe, httpStatusOf, redact, s3Code, toCacheGateError } from './errors.ts';
import { misconfigured } from '../backend-fault.ts';
import { goCloudUrl } from './gocloud.ts';
import { S3Presigner } from './presigner.ts';
import { deleteObject, listObjects } from './listing.ts';
import { getObject, headObject, putObject } from './proxy.ts';
import type { ProxyDeps } from './proxy.ts';
import { detectRegion } from './region.ts';
import { assumeRoleWith, createS3Client, createStsClient } from './sdk.ts';
import { TIMEOUTS, bounded } from '../timeouts.ts';

export { goCloudUrl } from './gocloud.ts';
export { customEndpoint, autoPathStyle, effectivePathStyle, resolveTarget, s3ExpressZone, partitionOf } from './endpoint.ts';
export { sessionPolicy } from './assume-role.ts';
export type { AssumeRoleInput, AssumeRoleResult, RoleCredentials } from './assume-role.ts';

/** Retry region detection this long after a network failure (the fallback is used meanwhile). */

export interface S3AdapterOptions {
  /** Replaces the base credentials (tests). */
  credentials?: CredentialProvider;
  /** STS client to use for AssumeRole (tests capture its input); default: one on the profile's endpoint. */
  stsClient?: Pick<STSClient, 'send'>;
  /** Replaces the AssumeRole call altogether (unit tests, no network). */
  assumeRole?: AssumeRoleCall;
  /** Counter hook: one call per AssumeRole attempt ('ok' | 'error') and per cache hit ('cached'). */
  onAssumeRole?: (result: AssumeRoleResult) => void;
}

export interface S3Adapter extends CacheAdapter {
  readonly kind: 's3';
  /**
   * Counter hook for the service's metrics: called with 'ok' or 'error' for every AssumeRole call and
   * with 'cached' when cached role credentials are served. Assign it any time.
   */
  onAssumeRole: ((result: AssumeRoleResult) => void) | undefined;
  /** The region requests are signed for (BucketLocation or detected). */
  region(): Promise<string>;
  scopedCredentials(objectName: string, direction: Direction): Promise<ScopedCredentials | undefined>;
}

/** SSE-C needs the customer's key on every request: a presigned URL cannot carry it. */
function refuseSseC(s3: S3Settings): void {
  const v = String(s3.serverSideEncryption).toUpperCase();
  if (v === 'SSE-C' || v === 'SSEC' || v === 'C' || v === 'SSE_C' || v === 'CUSTOMER') {
    throw new CacheGateError(
      'invalid_config',
      400,
      `S3 ServerSideEncryption "${String(s3.serverSideEncryption)}" (SSE-C, customer-provided keys) is not supported: ` +
        'presigned URLs cannot carry the key. Use "S3" (AES256), "KMS" or "DSSE-KMS".',
    );
  }
  const known = ['', 'AES256', 'aws:kms', 'aws:kms:dsse'];
  if (!known.includes(s3.serverSideEncryption)) {
    throw new CacheGateError('invalid_config', 400, `S3 ServerSideEncryption "${String(s3.serverSideEncryption)}" is not one of S3/AES256, KMS/aws:kms, DSSE-KMS/aws:kms:dsse`);
  }
}

export function createS3Adapter(ctx: AdapterContext, options: S3AdapterOptions = {}): S3Adapter {
  const { profile, log } = ctx;
  const s3 = profile.cache.s3;
  if (s3 === undefined) throw new CacheGateError('invalid_config', 400, `profile "${profile.name}": cache Type is s3 but [runners.cache.s3] is missing`);
  if (s3.bucketName === '') throw new CacheGateError('invalid_config', 400, `profile "${profile.name}": S3 BucketName is required`);
  refuseSseC(s3);
  customEndpoint(s3); // throws early on a malformed ServerAddress

  const secrets = [s3.secretKey, s3.sessionToken, profile.token].filter((s) => s !== '');
  const credentials = options.credentials ?? baseCredentials(s3);
  const express = s3ExpressZone(s3.bucketName) !== undefined;
  const warned = new Set<string>();
  const warnOnce = (message: string): void => {
    if (warned.has(message)) return;
    warned.add(message);
    log.warn({ profile: profile.name, bucket: s3.bucketName }, message);
  };

  // The SDK's own warnings (e.g. "non-retryable streaming request") go to debug, not to the console.
  // (ctx.log already carries the profile and the backend.)
  const sdkLog = (...c: unknown[]): void => log.debug({ component: 'aws-sdk' }, c.map((x) => sdkLogPart(x, secrets)).join(' '));
  const sdkLogger = { trace() {}, debug() {}, info() {}, warn: sdkLog, error: sdkLog };

  // --- region and target (cached; re-detected later only after a network failure) ---
  let knownRegion: string | undefined = s3.bucketLocation !== '' ? s3.bucketLocation : undefined;
  let regionPromise: Promise<string> | undefined;
  let locationClient: Promise<S3Client> | undefined;
  const region = (): Promise<string> => {
    if (s3.bucketLocation !== '') return Promise.resolve(s3.bucketLocation);
    if (regionPromise === undefined) {
      const p: Promise<string> = detectRegion(
        {
          getBucketLocation: async (bucket) => {
            const { GetBucketLocationCommand } = await import('@aws-sdk/client-s3');
            locationClient ??= createS3Client(s3, 'us-east-1', credentials, sdkLogger);
            const client = await locationClient;
            const out = await bounded(`S3 GetBucketLocation "${bucket}"`, TIMEOUTS.callMs, (abortSignal) =>
              client.send(new GetBucketLocationCommand({ Bucket: bucket }), { abortSignal }));
            return out.LocationConstraint;
          },
        },
        s3.bucketName,
      ).then((r) => {
        if (!r.final) {
          // Unreachable: a URL signed for a guessed region would fail on any other one. Answer 503
          // and let the next request detect again (one detection in flight at a time).
          if (regionPromise === p) regionPromise = undefined;
          throw new CacheGateError('backend_unavailable', 503, `S3 bucket region unknown: ${r.reason ?? 'GetBucketLocation failed'}`);
        }
        if (r.reason !== undefined) log.warn({ profile: profile.name, bucket: s3.bucketName }, r.reason);
        knownRegion = r.region;
        return r.region;
      });
      regionPromise = p;
    }
    return regionPromise;
  };
  let target: Target | undefined;
  const getTarget = (): Target | Promise<Target> => {
    // Known region (configured, or detected and not due for a retry): no await. The target follows
    // the region when a retried detection finds another one.
    if ((s3.bucketLocation !== '' || regionPromise !== undefined) && knownRegion !== undefined) {
      const r = knownRegion as string;
      if (target === undefined || target.region !== r) target = resolveTarget(s3, r, { warn: warnOnce });
      return target;
    }
    return region().then(() => getTarget());
  };

  // --- SDK client for proxy mode and readiness (re-created if the detected region changes) ---
  let client: { region: string; client: Promise<S3Client> } | undefined;
  const getClient = async (): Promise<S3Client> => {
    const r = await region();
    if (client === undefined || client.region !== r) {
      const old = client;
      client = { region: r, client: createS3Client(s3, r, credentials, sdkLogger) };
      old?.client.then((c) => c.destroy(), () => undefined);
    }
    return client.client;
  };
  // HeadBucket, classified: a missing bucket or refused credentials → 502, unreachable → 503.
  const headBucket = async (): Promise<void> => {
    const { HeadBucketCommand } = await import('@aws-sdk/client-s3');
    try {
      await bounded(`S3 HeadBucket "${s3.bucketName}"`, TIMEOUTS.callMs, async (abortSignal) =>
        (await getClient()).send(new HeadBucketCommand({ Bucket: s3.bucketName }), { abortSignal }));
    } catch (err) {
      // HEAD answers carry no error code: a 404 here can only mean the bucket.
      const code = httpStatusOf(err) === 404 ? 'NoSuchBucket' : s3Code(err);
      throw toCacheGateError(err, `HeadBucket "${s3.bucketName}"`, secrets, s3.bucketName, code);
    }
  };
  // A bucket seen to exist is not asked about again for a minute (misses are frequent in CI).
  let bucketSeenAt = -Infinity;
  const confirmBucket = async (): Promise<void> => {
    if (performance.now() - bucketSeenAt < 60_000) return;
    await headBucket();
    bucketSeenAt = performance.now();
  };
  // A region S3 names in a redirect (a wrong BucketLocation) is used from then on, as the SDK's
  // region cache does; the SDK client (HEAD, multipart) follows such redirects itself.
  const regionMoved = (r: string): void => {
    if (r === knownRegion) return;
    warnOnce(`S3 answered that bucket "${s3.bucketName}" is in region ${r}, not ${knownRegion ?? 'the detected one'}: signing for ${r} (set BucketLocation = "${r}")`);
    knownRegion = r;
    regionPromise = Promise.resolve(r);
  };
  const presigner = new S3Presigner({ s3, credentials, target: getTarget, maxUploadedArchiveSize: profile.cache.maxUploadedArchiveSize, regionMoved });
  const proxy: ProxyDeps = { s3, client: getClient, secrets, confirmBucket, presigner };

  // --- RoleARN ---
  let sts: Promise<Pick<STSClient, 'send'>> | undefined;
  const assume: AssumeRoleCall =
    options.assumeRole ??
    (async (input) => {
      sts ??= options.stsClient !== undefined ? Promise.resolve(options.stsClient) : region().then((r) => createStsClient(s3, r, credentials));
      const client = await sts;
      return bounded('STS AssumeRole', TIMEOUTS.callMs, (signal) => assumeRoleWith(client, input, signal));
    });
  const roles = new RoleCredentialCache({
    call: assume,
    maxConcurrency: s3.assumeRoleMaxConcurrency,
    disableCaching: s3.disableAssumeRoleCredentialsCaching,
  });

  const adapter: S3Adapter = {
    kind: 's3',
    onAssumeRole: options.onAssumeRole,

    region,

    presign(input: PresignInput): Promise<PresignedRequest> {
      return presigner.presign(input);
    },

    async scopedCredentials(objectName: string, direction: Direction): Promise<ScopedCredentials | undefined> {
      const roleArn = s3.roleArn !== '' ? s3.roleArn : direction === 'upload' ? s3.uploadRoleArn : '';
      if (roleArn === '') return undefined;
      if (express) {
        warnOnce(`RoleARN cannot be used with the S3 Express One Zone bucket "${s3.bucketName}"; using presigned URLs`);
        return undefined;
      }
      const r = await region();
      const policy = sessionPolicy({
        bucket: s3.bucketName, objectName, direction, region: r, sse: s3.serverSideEncryption, kmsKeyId: s3.serverSideEncryptionKeyId,
      });
      roles.onResult = adapter.onAssumeRole;
      let c;
      try {
        c = await roles.get({ roleArn, bucket: s3.bucketName, objectName, direction, policy });
      } catch (err) {
        const reason = `AssumeRole for the S3 cache failed: ${err instanceof CacheGateError ? err.message : describe(err, secrets)}`;
        log.error({ profile: profile.name, bucket: s3.bucketName }, reason);
        throw assumeRoleError(err, reason, roleArn);
      }
      return {
        goCloudUrl: goCloudUrl(s3, objectName, r),
        env: { AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey, AWS_SESSION_TOKEN: c.sessionToken, AWS_PROFILE: '' },
        expiresAt: c.expiration,
      };
    },

    head(objectName: string): Promise<ObjectInfo | null> {
      return headObject(proxy, objectName);
    },
    get(objectName: string, range?: ByteRange): Promise<GetResult | null> {
      return getObject(proxy, objectName, range);
    },
    put(objectName: string, input: PutInput): Promise<ObjectInfo> {
      return putObject(proxy, objectName, input);
    },
    delete: (objectName: string) => deleteObject(proxy, objectName),
    list: (prefix: string, opts: ListOptions) => listObjects(proxy, prefix, opts),

    async ready(): Promise<void> {
      // Not ready, whatever the reason; the message names the setting to check when S3 refused.
      await headBucket();
      bucketSeenAt = performance.now();
    },

    async close(): Promise<void> {
      roles.clear();
      for (const c of [client?.client, locationClient]) if (c !== undefined) (await c.catch(() => undefined))?.destroy();
      const s = await sts?.catch(() => undefined);
      if (s !== undefined && s !== options.stsClient && 'destroy' in s && typeof s.destroy === 'function') (s as STSClient).destroy();
    },
  };
  return adapter;
}

export default createS3Adapter;

/**
 * STS refused (4xx: wrong base credentials, a role they may not assume, a policy it rejects): 502
 * naming the settings; unreachable, timed out or 5xx: 503.
 */
function assumeRoleError(err: unknown, reason: string, roleArn: string): CacheGateError {
  const status = err instanceof CacheGateError ? undefined : httpStatusOf(err);
  if (status === undefined || status >= 500 || status === 429) return new CacheGateError('backend_unavailable', 503, reason, { headers: { 'Retry-After': '5' } });
  const code = s3Code(err);
  const check = code === 'SignatureDoesNotMatch' || code === 'InvalidClientTokenId' || code === 'InvalidAccessKeyId'
    ? 'AccessKey/SecretKey (the credentials AssumeRole is called with)'
    : `AccessKey/SecretKey (the credentials AssumeRole is called with) and that they may assume RoleARN "${roleArn}" with a session policy`;
  return misconfigured(reason, check, err);
}

/**
 * One argument of an SDK log call as text: errors by name and message; the SDK's
 * {clientName, commandName, input, error, metadata} record by the fields that say what happened
 * (command, bucket, key, error, HTTP status, request id, attempts), never the rest of `input`, which
 * may hold credentials or a body; any other object by its keys only.
 */
export function sdkLogPart(x: unknown, secrets: readonly string[]): string {
  if (typeof x === 'string') return redact(x, secrets);
  if (x instanceof Error || (typeof x === 'object' && x !== null && 'message' in x)) return describe(x, secrets);
  if (typeof x !== 'object' || x === null) return String(x);
  const o = x as { clientName?: unknown; commandName?: unknown; input?: { Bucket?: unknown; Key?: unknown }; error?: unknown; metadata?: Record<string, unknown> };
  const parts: string[] = [];
  const add = (k: string, v: unknown): void => {
    if (typeof v === 'string' || typeof v === 'number') parts.push(`${k}=${redact(String(v), secrets)}`);
  };
  add('client', o.clientName);
  add('command', o.commandName);
  add('bucket', o.input?.Bucket);
  add('key', o.input?.Key);
  if (o.error !== undefined) parts.push(`error=${JSON.stringify(describe(o.error, secrets))}`);
  add('status', o.metadata?.httpStatusCode);
  add('requestId', o.metadata?.requestId);
  add('attempts', o.metadata?.attempts);
  return parts.length > 0 ? parts.join(' ') : `{${Object.keys(x).join(', ')}}`;
}
