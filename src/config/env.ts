/**
 * GitLab Runner's CACHE_* environment variables describe one default cache profile (SPEC §1).
 * They are turned into the same raw shape as a [runners.cache] table, so one normalizer serves both.
 */
import type { RawCache } from './schema.ts';

type Env = Record<string, string | undefined>;

const cacheVars = /^(CACHE_(TYPE|PATH|SHARED|MAXIMUM_UPLOADED_ARCHIVE_SIZE|S3_|GCS_|AZURE_)|GOOGLE_APPLICATION_CREDENTIALS$)/;

export function hasCacheEnv(env: Env): boolean {
  return Object.keys(env).some((k) => cacheVars.test(k) && env[k] !== undefined && env[k] !== '');
}

export interface EnvParseIssue {
  field: string;
  message: string;
}

/** Returns the raw cache table and the variables that could not be parsed (bad bool / int). */
export function cacheFromEnv(env: Env): { cache: RawCache; issues: EnvParseIssue[] } {
  const issues: EnvParseIssue[] = [];
  const s = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v === '' ? undefined : v;
  };
  const b = (name: string): boolean | undefined => {
    const v = s(name);
    if (v === undefined) return undefined;
    // Go's strconv.ParseBool
    if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
    if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
    issues.push({ field: name, message: `"${v}" is not a boolean (use true or false)` });
    return undefined;
  };
  const i = (name: string): number | undefined => {
    const v = s(name);
    if (v === undefined) return undefined;
    if (!/^-?[0-9]+$/.test(v)) {
      issues.push({ field: name, message: `"${v}" is not an integer` });
      return undefined;
    }
    return Number(v);
  };
  const strip = <T extends object>(o: T): T | undefined => {
    const entries = Object.entries(o).filter(([, v]) => v !== undefined);
    return entries.length === 0 ? undefined : (Object.fromEntries(entries) as T);
  };

  const cache: RawCache = {
    Type: s('CACHE_TYPE'),
    Path: s('CACHE_PATH'),
    Shared: b('CACHE_SHARED'),
    MaxUploadedArchiveSize: i('CACHE_MAXIMUM_UPLOADED_ARCHIVE_SIZE'),
    s3: strip({
      ServerAddress: s('CACHE_S3_SERVER_ADDRESS'),
      AccessKey: s('CACHE_S3_ACCESS_KEY'),
      SecretKey: s('CACHE_S3_SECRET_KEY'),
      SessionToken: s('CACHE_S3_SESSION_TOKEN'),
      BucketName: s('CACHE_S3_BUCKET_NAME'),
      BucketLocation: s('CACHE_S3_BUCKET_LOCATION'),
      Insecure: b('CACHE_S3_INSECURE'),
      AuthenticationType: s('CACHE_S3_AUTHENTICATION_TYPE'),
      ServerSideEncryption: s('CACHE_S3_SERVER_SIDE_ENCRYPTION'),
      ServerSideEncryptionKeyID: s('CACHE_S3_SERVER_SIDE_ENCRYPTION_KEY_ID'),
      DualStack: b('CACHE_S3_DUAL_STACK'),
      Accelerate: b('CACHE_S3_ACCELERATE'),
      PathStyle: b('CACHE_S3_PATH_STYLE'),
      RoleARN: s('CACHE_S3_ROLE_ARN'),
      UploadRoleARN: s('CACHE_S3_UPLOAD_ROLE_ARN'),
      AssumeRoleMaxConcurrency: i('CACHE_S3_ASSUME_ROLE_MAX_CONCURRENCY'),
      DisableAssumeRoleCredentialsCaching: b('CACHE_S3_DISABLE_ASSUME_ROLE_CREDENTIALS_CACHING'),
    }),
    gcs: strip({
      CredentialsFile: s('CACHE_GCS_CREDENTIALS_FILE') ?? s('GOOGLE_APPLICATION_CREDENTIALS'),
      AccessID: s('CACHE_GCS_ACCESS_ID'),
      PrivateKey: s('CACHE_GCS_PRIVATE_KEY'),
      BucketName: s('CACHE_GCS_BUCKET_NAME'),
      Endpoint: s('CACHE_GCS_ENDPOINT'),
      SignatureVersion: s('CACHE_GCS_SIGNATURE_VERSION'),
    }),
    azure: strip({
      AccountName: s('CACHE_AZURE_ACCOUNT_NAME'),
      AccountKey: s('CACHE_AZURE_ACCOUNT_KEY'),
      ContainerName: s('CACHE_AZURE_CONTAINER_NAME'),
      StorageDomain: s('CACHE_AZURE_STORAGE_DOMAIN'),
      ServiceURL: s('CACHE_AZURE_SERVICE_URL'),
    }),
  };
  return { cache: strip(cache) ?? {}, issues };
}
