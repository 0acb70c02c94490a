/**
 * Normalized configuration, after parsing config.toml / environment and applying GitLab Runner's
 * derivation rules. Field names follow config.toml's exact keys, lower-camel-cased.
 */
import type { ConnectionLimits } from './connection-limits.ts';
import type { S3ApiSettings } from './s3-api.ts';

export type CacheType = 'local' | 's3' | 'gcs' | 'azure';
export type ServerSideEncryption = 'AES256' | 'aws:kms' | 'aws:kms:dsse';

export interface S3Settings {
  serverAddress: string;
  accessKey: string;
  secretKey: string;
  sessionToken: string;
  bucketName: string;
  bucketLocation: string;
  insecure: boolean;
  /** Derived: 'access-key' when ServerAddress, AccessKey and SecretKey are set and no type is given. */
  authenticationType: 'iam' | 'access-key';
  /** Normalized value, or '' for none. */
  serverSideEncryption: ServerSideEncryption | '';
  serverSideEncryptionKeyId: string;
  dualStack: boolean;
  accelerate: boolean;
  /** undefined = auto (see adapters/s3 endpoint rules). */
  pathStyle: boolean | undefined;
  roleArn: string;
  uploadRoleArn: string;
  /** 0 → 5; < 0 → unlimited. Already normalized: Infinity for unlimited. */
  assumeRoleMaxConcurrency: number;
  disableAssumeRoleCredentialsCaching: boolean;
}

export interface GcsSettings {
  credentialsFile: string;
  accessId: string;
  privateKey: string;
  bucketName: string;
  /** cachegate extension: host (scheme://host[:port]) of signed URLs, for emulators and private endpoints. */
  endpoint: string;
  /** cachegate extension: 'v4' (default) or 'v2' (what GitLab Runner produces). */
  signatureVersion: 'v2' | 'v4';
}

export interface AzureSettings {
  accountName: string;
  accountKey: string;
  containerName: string;
  storageDomain: string;
  /** cachegate extension: replaces https://<AccountName>.<StorageDomain>, e.g. http://127.0.0.1:10000/devstoreaccount1 */
  serviceUrl: string;
}

export interface CacheSettings {
  type: CacheType;
  path: string;
  shared: boolean;
  /** Bytes; 0 = unlimited. */
  maxUploadedArchiveSize: number;
  s3?: S3Settings;
  gcs?: GcsSettings;
  azure?: AzureSettings;
}

/** One cache profile: a [[runners]] entry with [runners.cache], or the default profile from CACHE_* variables. */
export interface CacheProfile {
  /** Runner name (or 'default' / 'runner-<n>'): for logs and API-token references. Never the token. */
  name: string;
  /** The runner token that authenticates a client to this profile ('' when none). Secret. */
  token: string;
  /** Short token used in the object namespace (runner/<shortToken>/…). Not secret upstream, but not logged either. */
  shortToken: string;
  cache: CacheSettings;
  /** Where it was configured, e.g. `runners[2]`: names apart runners that share a name (see runner-names.ts). */
  entry?: string;
}

export type LogFormat = 'runner' | 'text' | 'json';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'panic';

export interface ApiToken {
  /** Secret. */
  token: string;
  /** Name of the profile (runner name) it gives access to. */
  profile: string;
  readOnly: boolean;
  /** Label for logs/metrics (never the token itself). */
  label: string;
}

export interface ServiceSettings {
  /** host:port */
  listen: string;
  /** Base URL clients use to reach this service (for local-backend and proxy URLs); '' = derive from the listen address. */
  publicUrl: string;
  dataDir: string;
  apiTokens: ApiToken[];
  /** Serve /v1/cache/... (stream bytes through the service). */
  proxy: boolean;
  /** Upper bound for URL lifetimes in seconds. */
  maxUrlLifetime: number;
  /** Lifetime when the caller states none. */
  defaultUrlLifetime: number;
  logFormat: LogFormat;
  logLevel: LogLevel;
  /** Secret used to sign local-backend URLs; '' = generated and kept in <dataDir>/.signing-key */
  localSigningKey: string;
  /** Requests per second allowed per token on /v1/presign and /v1/cache (token bucket); 0 = no limit. */
  rateLimit: number;
  /** Requests a token may make at once above the rate (bucket size). */
  rateLimitBurst: number;
  /** Failed authentications per second allowed per client address once the burst is used; 0 = no limit. */
  authFailureLimit: number;
  /** Failed authentications an address may make at once before it must wait. */
  authFailureBurst: number;
  /** Seconds a request waits for its backend calls before answering 503. */
  backendTimeout: number;
  /** Timeouts and caps on connections and uploads (connection-limits.ts). */
  limits: ConnectionLimits;
  /** [cachegate.s3_api], the S3-compatible front door; undefined = off. */
  s3Api?: S3ApiSettings;
  /** [cachegate.retention]: bounds of the embedded local backend's store; undefined = unbounded. */
  retention?: RetentionSettings;
  /** [cachegate.disk_cache]: a disk tier in front of every cloud-backed profile; undefined = none. */
  diskCache?: DiskCacheSettings;
  /** [cachegate] admin_token / admin_token_env: the token of GET /v1/admin/usage; '' = that endpoint is off. Secret. */
  adminToken?: string;
}

export interface RetentionSettings {
  /** Bytes on disk; least recently used objects go first once over it. */
  maxSize: number;
  /** Seconds since last use after which an object is removed; 0 = no age limit. */
  maxAge: number;
}

export interface DiskCacheSettings {
  /** Absolute directory of the tier's files. */
  dir: string;
  /** Bytes on disk; least recently used objects go first once over it. */
  maxSize: number;
}

export type FindingLevel = 'error' | 'warning';
export interface Finding {
  level: FindingLevel;
  /** Dotted path of the field, e.g. runners[0].cache.s3.BucketName */
  field: string;
  message: string;
}

export interface Config {
  /** Where the configuration came from: a file path, 'environment' or 'defaults'. */
  source: string;
  service: ServiceSettings;
  profiles: CacheProfile[];
  findings: Finding[];
}
