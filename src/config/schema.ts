/**
 * The shape of a GitLab Runner config.toml as cachegate reads it: [[runners]] with [runners.cache],
 * the global log_level / log_format / listen_address, and cachegate's own [cachegate] section.
 * Keys are config.toml's exact names. Unknown keys are reported as warnings (see load.ts), not errors:
 * a runner's config.toml has many sections cachegate does not care about.
 */
import { z } from 'zod';
import { s3ApiSchema } from './s3-api.ts';

const str = z.string();
const bool = z.boolean();
const int = z.number().int();

export const s3Schema = z.looseObject({
  ServerAddress: str.optional(),
  AccessKey: str.optional(),
  SecretKey: str.optional(),
  SessionToken: str.optional(),
  BucketName: str.optional(),
  BucketLocation: str.optional(),
  Insecure: bool.optional(),
  AuthenticationType: str.optional(),
  ServerSideEncryption: str.optional(),
  ServerSideEncryptionKeyID: str.optional(),
  DualStack: bool.optional(),
  Accelerate: bool.optional(),
  PathStyle: bool.optional(),
  RoleARN: str.optional(),
  UploadRoleARN: str.optional(),
  AssumeRoleMaxConcurrency: int.optional(),
  DisableAssumeRoleCredentialsCaching: bool.optional(),
});

export const gcsSchema = z.looseObject({
  CredentialsFile: str.optional(),
  AccessID: str.optional(),
  PrivateKey: str.optional(),
  BucketName: str.optional(),
  Endpoint: str.optional(),
  SignatureVersion: str.optional(),
});

export const azureSchema = z.looseObject({
  AccountName: str.optional(),
  AccountKey: str.optional(),
  ContainerName: str.optional(),
  StorageDomain: str.optional(),
  ServiceURL: str.optional(),
});

export const cacheSchema = z.looseObject({
  Type: str.optional(),
  Path: str.optional(),
  Shared: bool.optional(),
  MaxUploadedArchiveSize: int.min(0).optional(),
  s3: s3Schema.optional(),
  gcs: gcsSchema.optional(),
  azure: azureSchema.optional(),
});

export const runnerSchema = z.looseObject({
  name: str.optional(),
  token: str.optional(),
  cache: cacheSchema.optional(),
});

export const apiTokenSchema = z.strictObject({
  name: str.optional(),
  token: str.min(1).optional(),
  token_env: str.min(1).optional(),
  runner: str.min(1),
  read_only: bool.optional(),
});

export const cachegateSchema = z.strictObject({
  listen: str.optional(),
  public_url: str.optional(),
  data_dir: str.optional(),
  proxy: bool.optional(),
  max_url_lifetime: int.min(1).optional(),
  default_url_lifetime: int.min(1).optional(),
  log_format: str.optional(),
  log_level: str.optional(),
  local_signing_key: str.optional(),
  api_tokens: z.array(apiTokenSchema).optional(),
  rate_limit: z.number().nonnegative().optional(),
  rate_limit_burst: int.min(1).optional(),
  auth_failure_limit: z.number().nonnegative().optional(),
  auth_failure_burst: int.min(1).optional(),
  backend_timeout: z.number().positive().optional(),
  headers_timeout: z.number().positive().optional(),
  request_timeout: z.number().nonnegative().optional(),
  idle_timeout: z.number().positive().optional(),
  keep_alive_timeout: z.number().positive().optional(),
  max_uploads: int.min(1).optional(),
  upload_wait: z.number().min(0).max(600).optional(),
  max_connections: int.min(0).optional(),
  s3_api: s3ApiSchema.optional(),
  retention: z.strictObject({ max_size: int.min(1), max_age: int.min(1).optional() }).optional(),
  disk_cache: z.strictObject({ dir: str.min(1), max_size: int.min(1) }).optional(),
  admin_token: str.min(1).optional(),
  admin_token_env: str.min(1).optional(),
});

export const fileSchema = z.looseObject({
  log_level: str.optional(),
  log_format: str.optional(),
  listen_address: str.optional(),
  runners: z.array(runnerSchema).optional(),
  cachegate: cachegateSchema.optional(),
});

export type RawFile = z.infer<typeof fileSchema>;
export type RawCache = z.infer<typeof cacheSchema>;
export type RawS3 = z.infer<typeof s3Schema>;
export type RawGcs = z.infer<typeof gcsSchema>;
export type RawAzure = z.infer<typeof azureSchema>;
export type RawCachegate = z.infer<typeof cachegateSchema>;

/** Keys of a loose object schema, for reporting unknown keys. */
export function knownKeys(schema: z.ZodObject): Set<string> {
  return new Set(Object.keys(schema.shape));
}
