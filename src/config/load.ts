/**
 * Reads a GitLab Runner config.toml (or the CACHE_* environment) into a validated Config.
 * Never throws for bad content: every problem becomes a Finding that names the field and the reason;
 * a Config with error findings must not be used (see hasErrors).
 */
import { readFileSync, accessSync, constants } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { isOwnSegment, shortToken } from '../keys/short-token.ts';
import { cacheFromEnv, hasCacheEnv } from './env.ts';
import { closest, didYouMean, issueMessage, knownKeysAt } from './did-you-mean.ts';
import { connectionLimits } from './connection-limits.ts';
import { parseListen } from './listen.ts';
import { duplicateNames, entryOf, findRunner } from './runner-names.ts';
import { s3ApiSettings } from './s3-api.ts';
import { secretSetting } from './secret-setting.ts';
import { storageBounds } from './retention.ts';
import {
  azureSchema, cacheSchema, cachegateSchema, fileSchema, gcsSchema, knownKeys, s3Schema,
  type RawAzure, type RawCache, type RawCachegate, type RawFile, type RawGcs, type RawS3,
} from './schema.ts';
import type {
  ApiToken, AzureSettings, CacheProfile, CacheSettings, CacheType, Config, Finding, GcsSettings, LogFormat, LogLevel,
  S3Settings, ServerSideEncryption, ServiceSettings,
} from './types.ts';

type Env = Record<string, string | undefined>;

export interface LoadOptions {
  /** Path of a config.toml; undefined = environment / defaults. */
  file?: string;
  env?: Env;
  /** Command-line overrides, which win over everything. */
  listen?: string;
  dataDir?: string;
}

export const DEFAULT_LISTEN = '127.0.0.1:9170';
export const DEFAULT_URL_LIFETIME = 7200;
export const DEFAULT_MAX_URL_LIFETIME = 86400;
/** Seconds a request waits for its backend calls (STS, IAM, the object store) before answering 503. */
export const DEFAULT_BACKEND_TIMEOUT = 10;
/** Failed authentications per client address: 30 at once, then 1 per second (runner tokens are not guessable; weak admin tokens and S3 secrets are). */
export const DEFAULT_AUTH_FAILURE_LIMIT = 1;
export const DEFAULT_AUTH_FAILURE_BURST = 30;
const LOG_FORMATS: LogFormat[] = ['runner', 'text', 'json'];
const LOG_LEVELS: LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'panic'];

export function hasErrors(config: Pick<Config, 'findings'>): boolean {
  return config.findings.some((f) => f.level === 'error');
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  if (opts.file === undefined) {
    return buildConfig(undefined, hasCacheEnv(env) ? 'environment' : 'defaults', env, opts, []);
  }
  const source = resolve(opts.file);
  let text: string;
  try {
    text = readFileSync(source, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    return emptyConfig(source, env, opts, [{ level: 'error', field: 'config', message: `cannot read ${source}: ${reason}` }]);
  }
  return parseConfigText(text, source, env, opts);
}

export function parseConfigText(text: string, source: string, env: Env = process.env, opts: LoadOptions = {}): Config {
  let doc: unknown;
  try {
    doc = parseToml(text);
  } catch (err) {
    const where = err instanceof TomlError ? ` (line ${err.line}, column ${err.column})` : '';
    const first = (err as Error).message.split('\n')[0];
    return emptyConfig(source, env, opts, [{ level: 'error', field: 'config', message: `not valid TOML${where}: ${first}` }]);
  }
  const parsed = fileSchema.safeParse(doc);
  if (!parsed.success) {
    return emptyConfig(source, env, opts, zodFindings(parsed.error, '', doc));
  }
  return buildConfig(parsed.data, source, env, opts, nearMisses(parsed.data));
}

function emptyConfig(source: string, env: Env, opts: LoadOptions, findings: Finding[]): Config {
  const service = serviceSettings(undefined, undefined, env, opts, findings, []);
  return { source, service, profiles: [], findings };
}

function zodFindings(error: z.ZodError, prefix: string, doc: unknown): Finding[] {
  return error.issues.map((issue) => ({
    level: 'error' as const,
    field: fieldPath(prefix, issue.path),
    message: issueMessage(issue, fileSchema, doc),
  }));
}

function fieldPath(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix;
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += (out === '' ? '' : '.') + String(p);
  }
  return out || 'config';
}

/**
 * Every unknown key of a cache section, with the closest known one. Unknown keys are warnings (a
 * field of a newer GitLab Runner, say), except a misspelt credential setting: without it, other
 * credentials than the ones meant are used (SeverAddress → the static keys fall back to IAM), which
 * surfaces only when a job fails.
 */
function unknownKeys(obj: object | undefined, schema: z.ZodObject, field: string, findings: Finding[]): void {
  if (!obj) return;
  const known = knownKeys(schema);
  for (const [k, v] of Object.entries(obj)) {
    if (known.has(k)) continue;
    const near = closest(k, known);
    const table = typeof v === 'object' && v !== null && !Array.isArray(v);
    const name = (key: string): string => (table ? `[${tomlName(`${field}.${key}`)}]` : key);
    const what = `unknown ${table ? 'table' : 'field'} ${name(k)}`;
    if (near !== undefined && CREDENTIAL_FIELDS.has(near)) {
      findings.push({ level: 'error', field: `${field}.${k}`, message: `${what} (did you mean ${name(near)}?): ${near} decides which credentials are used, so this is not ignored` });
    } else {
      findings.push({ level: 'warning', field: `${field}.${k}`, message: `${what}${near === undefined ? '' : ` (did you mean ${name(near)}?)`}, ignored` });
    }
  }
}

/** runners[0].cache.s3 → runners.cache.s3, as the table header reads in config.toml. */
const tomlName = (field: string): string => field.replace(/\[\d+\]/g, '');

/** Fields whose absence changes which credentials (or which account/endpoint) a profile uses. */
const CREDENTIAL_FIELDS = new Set([
  'ServerAddress', 'AccessKey', 'SecretKey', 'SessionToken', 'AuthenticationType', 'RoleARN', 'UploadRoleARN',
  'CredentialsFile', 'AccessID', 'PrivateKey', 'AccountName', 'AccountKey', 'ServiceURL', 'StorageDomain', 'Endpoint',
  's3', 'gcs', 'azure',
]);

/**
 * Outside the cache sections a config.toml holds many keys cachegate does not read (concurrent,
 * [runners.docker], …): only the ones a slip away from a key cachegate knows are reported
 * ([runners.cahce], [cachgate], log_levle), as warnings.
 */
function nearMisses(file: RawFile): Finding[] {
  const findings: Finding[] = [];
  const report = (obj: object, known: string[], field: (k: string) => string): void => {
    for (const [k, v] of Object.entries(obj)) {
      if (known.includes(k)) continue;
      const near = closest(k, known);
      if (near === undefined) continue;
      const table = typeof v === 'object' && v !== null;
      findings.push({
        level: 'warning',
        field: field(k),
        message: table ? `unknown table [${tomlName(field(k))}] (did you mean [${tomlName(field(near))}]?), ignored` : `unknown field ${k} (did you mean ${near}?), ignored`,
      });
    }
  };
  report(file, knownKeysAt(fileSchema, []), (k) => k);
  const runnerKeys = knownKeysAt(fileSchema, ['runners', 0]);
  (file.runners ?? []).forEach((runner, i) => report(runner, runnerKeys, (k) => `runners[${i}].${k}`));
  return findings;
}

function buildConfig(file: RawFile | undefined, source: string, env: Env, opts: LoadOptions, findings: Finding[]): Config {
  const profiles: CacheProfile[] = [];
  if (file) {
    (file.runners ?? []).forEach((runner, i) => {
      const field = `runners[${i}]`;
      if (!runner.cache) return; // a runner without [runners.cache] has no cache profile
      unknownKeys(runner.cache, cacheSchema, `${field}.cache`, findings);
      const name = runner.name && runner.name !== '' ? runner.name : `runner-${i}`;
      const token = runner.token ?? '';
      if (token === '') {
        findings.push({ level: 'warning', field: `${field}.token`, message: 'no token: clients can reach this profile only through an API token that names it' });
      }
      profiles.push({ name, token, shortToken: shortToken(token), cache: normalizeCache(runner.cache, `${field}.cache`, findings), entry: field });
    });
  } else if (source === 'environment') {
    const { cache, issues } = cacheFromEnv(env);
    for (const issue of issues) findings.push({ level: 'error', field: issue.field, message: issue.message });
    const token = env.CACHEGATE_RUNNER_TOKEN ?? '';
    profiles.push({ name: 'default', token, shortToken: shortToken(token), cache: normalizeCache(cache, 'environment', findings) });
  } else {
    profiles.push({ name: 'default', token: '', shortToken: '', cache: { type: 'local', path: '', shared: false, maxUploadedArchiveSize: 0 } });
  }

  checkProfiles(profiles, findings);
  const service = serviceSettings(file, file?.cachegate, env, opts, findings, profiles);
  const s3Api = s3ApiSettings(file?.cachegate?.s3_api, profiles, env, service.listen, findings);
  if (s3Api) service.s3Api = s3Api;
  Object.assign(service, storageBounds(file?.cachegate, env, service.dataDir, profiles, source, findings));
  return { source, service, profiles, findings };
}

function checkProfiles(profiles: CacheProfile[], findings: Finding[]): void {
  const byToken = new Map<string, string>();
  for (const p of profiles) {
    if (p.token === '') continue;
    if (!p.cache.shared && !isOwnSegment(p.shortToken)) {
      findings.push({
        level: 'error',
        field: `${p.entry ?? `runners.${p.name}`}.token`,
        message: 'the short form of this token (the 9 characters after its prefix, which name runner/<short token>/) is empty, "." or ".." or holds a "/": its objects would land in every other runner\'s namespace; use the token GitLab issued',
      });
    }
    const other = byToken.get(p.token);
    if (other !== undefined) {
      findings.push({ level: 'error', field: `runners.${p.name}.token`, message: `the same token is used by runner "${other}": a token must identify one profile` });
    }
    byToken.set(p.token, p.name);
  }
  for (const [name, group] of duplicateNames(profiles)) {
    findings.push({
      level: 'warning',
      field: `runners.${name}.name`,
      message: `${group.length} runners are named "${name}" (${group.map(entryOf).join(', ')}): each keeps its own token, storage and limits, but an API token or --runner cannot name them; give them distinct names`,
    });
  }
  // Object names carry only a token's short form (9 characters, as GitLab names them), so two runners
  // whose short forms match on the same storage and Path would read and replace each other's caches,
  // and a front-door key of one would reach the other's objects. The short form is not printed.
  const byNamespace = new Map<string, CacheProfile[]>();
  for (const p of profiles) {
    if (p.token === '' || p.cache.shared) continue;
    const ns = `${location(p.cache) ?? `local|${p.cache.path}`}|${p.shortToken}`;
    byNamespace.set(ns, [...(byNamespace.get(ns) ?? []), p]);
  }
  for (const group of byNamespace.values()) {
    if (group.length < 2) continue;
    findings.push({
      level: 'warning',
      field: `runners.${group[0].name}.token`,
      message: `runners ${group.map((p) => `"${p.name}" (${entryOf(p)})`).join(', ')} have tokens with the same short form (the 9 characters after the prefix that name runner/<short token>/) on the same storage and Path with Shared = false: they share one namespace, each reads and replaces the other's caches; give each its own Path`,
    });
  }
  // Runners that point at the same place without Shared keep separate caches: probably not what was meant.
  const byLocation = new Map<string, CacheProfile[]>();
  for (const p of profiles) {
    const loc = location(p.cache);
    if (!loc || p.cache.shared) continue;
    byLocation.set(loc, [...(byLocation.get(loc) ?? []), p]);
  }
  for (const group of byLocation.values()) {
    if (group.length < 2) continue;
    findings.push({
      level: 'warning',
      field: `runners.${group[0].name}.cache.Shared`,
      message: `runners ${group.map((p) => `"${p.name}"`).join(', ')} use the same storage and Path with Shared = false: each keeps its own cache under runner/<token>/; set Shared = true if they should share`,
    });
  }
}

function location(c: CacheSettings): string | undefined {
  if (c.s3) return `s3|${c.s3.serverAddress}|${c.s3.bucketName}|${c.path}`;
  if (c.gcs) return `gcs|${c.gcs.bucketName}|${c.path}`;
  if (c.azure) return `azure|${c.azure.accountName}|${c.azure.containerName}|${c.path}`;
  return undefined;
}

const TYPES: Record<string, CacheType> = { s3: 's3', s3v2: 's3', gcs: 'gcs', gcsv2: 'gcs', azure: 'azure', local: 'local' };

function normalizeCache(raw: RawCache, field: string, findings: Finding[]): CacheSettings {
  let type: CacheType = 'local';
  if (raw.Type === undefined || raw.Type === '') {
    findings.push({ level: 'warning', field: `${field}.Type`, message: 'not set: the embedded local backend is used (one machine only)' });
  } else if (TYPES[raw.Type]) {
    type = TYPES[raw.Type];
  } else {
    const known = Object.keys(TYPES);
    findings.push({ level: 'error', field: `${field}.Type`, message: `unknown cache type "${raw.Type}"${didYouMean(raw.Type, known, (s) => `"${s}"`)}: one of ${known.join(', ')} (lower case)` });
  }
  const settings: CacheSettings = {
    type,
    path: raw.Path ?? '',
    shared: raw.Shared ?? false,
    maxUploadedArchiveSize: raw.MaxUploadedArchiveSize ?? 0,
  };
  if (type === 's3') settings.s3 = normalizeS3(raw.s3 ?? {}, `${field}.s3`, findings);
  if (type === 'gcs') settings.gcs = normalizeGcs(raw.gcs ?? {}, `${field}.gcs`, findings);
  if (type === 'azure') settings.azure = normalizeAzure(raw.azure ?? {}, `${field}.azure`, findings);
  return settings;
}

const SSE: Record<string, ServerSideEncryption> = {
  s3: 'AES256', aes256: 'AES256', kms: 'aws:kms', 'aws:kms': 'aws:kms', 'dsse-kms': 'aws:kms:dsse', 'aws:kms:dsse': 'aws:kms:dsse',
};

function normalizeS3(raw: RawS3, field: string, findings: Finding[]): S3Settings {
  unknownKeys(raw, s3Schema, field, findings);
  const serverAddress = raw.ServerAddress ?? '';
  const accessKey = raw.AccessKey ?? '';
  const secretKey = raw.SecretKey ?? '';
  let authenticationType: S3Settings['authenticationType'];
  const auth = (raw.AuthenticationType ?? '').toLowerCase();
  if (auth === '') {
    authenticationType = serverAddress !== '' && accessKey !== '' && secretKey !== '' ? 'access-key' : 'iam';
  } else if (auth === 'iam' || auth === 'access-key') {
    authenticationType = auth;
  } else {
    authenticationType = 'iam';
    findings.push({ level: 'error', field: `${field}.AuthenticationType`, message: `invalid value "${raw.AuthenticationType}" (use iam or access-key)` });
  }
  if (authenticationType === 'access-key' && (accessKey === '' || secretKey === '')) {
    findings.push({ level: 'error', field: `${field}.AccessKey`, message: 'AuthenticationType access-key needs AccessKey and SecretKey' });
  }
  const bucketName = raw.BucketName ?? '';
  if (bucketName === '') findings.push({ level: 'error', field: `${field}.BucketName`, message: 'required' });

  let sse: S3Settings['serverSideEncryption'] = '';
  const sseRaw = (raw.ServerSideEncryption ?? '').trim();
  if (sseRaw !== '') {
    const v = SSE[sseRaw.toLowerCase()];
    if (v) sse = v;
    else if (/^(sse-?c|c|customer)$/i.test(sseRaw)) {
      findings.push({ level: 'error', field: `${field}.ServerSideEncryption`, message: 'SSE-C (customer-provided keys) is not supported: a presigned URL would have to hand the key to every job; use S3 or KMS' });
    } else {
      findings.push({ level: 'warning', field: `${field}.ServerSideEncryption`, message: `unknown value "${sseRaw}" (use S3, KMS or DSSE-KMS): no encryption header is sent` });
    }
  }
  const keyId = raw.ServerSideEncryptionKeyID ?? '';
  if ((sse === 'aws:kms' || sse === 'aws:kms:dsse') && keyId === '') {
    findings.push({ level: 'warning', field: `${field}.ServerSideEncryptionKeyID`, message: `${sseRaw} without a key id: the bucket's default KMS key is used, and a RoleARN session policy cannot name it` });
  }
  const roleArn = raw.RoleARN ?? '';
  const uploadRoleArn = raw.UploadRoleARN ?? '';
  if (uploadRoleArn !== '') {
    findings.push({ level: 'warning', field: `${field}.UploadRoleARN`, message: 'deprecated: use RoleARN (applies to uploads and downloads)' });
  }
  const express = bucketName.endsWith('--x-s3');
  if (express && (roleArn !== '' || uploadRoleArn !== '')) {
    findings.push({ level: 'warning', field: `${field}.RoleARN`, message: 'S3 Express One Zone directory buckets cannot use RoleARN session policies: presigned URLs are used instead' });
  }
  if (express && raw.DualStack !== false) {
    findings.push({ level: 'warning', field: `${field}.DualStack`, message: 'S3 Express One Zone directory buckets need DualStack = false; it is turned off for this bucket' });
  }
  const conc = raw.AssumeRoleMaxConcurrency ?? 0;
  return {
    serverAddress, accessKey, secretKey,
    sessionToken: raw.SessionToken ?? '',
    bucketName,
    bucketLocation: raw.BucketLocation ?? '',
    insecure: raw.Insecure ?? false,
    authenticationType,
    serverSideEncryption: sse,
    serverSideEncryptionKeyId: keyId,
    dualStack: express ? false : raw.DualStack ?? true,
    accelerate: raw.Accelerate ?? false,
    pathStyle: raw.PathStyle,
    roleArn,
    uploadRoleArn,
    assumeRoleMaxConcurrency: conc === 0 ? 5 : conc < 0 ? Infinity : conc,
    disableAssumeRoleCredentialsCaching: raw.DisableAssumeRoleCredentialsCaching ?? false,
  };
}

function normalizeGcs(raw: RawGcs, field: string, findings: Finding[]): GcsSettings {
  unknownKeys(raw, gcsSchema, field, findings);
  const bucketName = raw.BucketName ?? '';
  if (bucketName === '') findings.push({ level: 'error', field: `${field}.BucketName`, message: 'required' });
  const credentialsFile = raw.CredentialsFile ?? '';
  if (credentialsFile !== '') {
    try {
      accessSync(credentialsFile, constants.R_OK);
    } catch {
      findings.push({ level: 'error', field: `${field}.CredentialsFile`, message: `cannot read ${credentialsFile}` });
    }
  } else if ((raw.AccessID ?? '') !== '' && (raw.PrivateKey ?? '') === '') {
    findings.push({ level: 'error', field: `${field}.PrivateKey`, message: 'AccessID is set without PrivateKey' });
  }
  const sv = (raw.SignatureVersion ?? 'v4').toLowerCase();
  if (sv !== 'v2' && sv !== 'v4') {
    findings.push({ level: 'error', field: `${field}.SignatureVersion`, message: `invalid value "${raw.SignatureVersion}" (use v4 or v2)` });
  }
  const endpoint = raw.Endpoint ?? '';
  if (endpoint !== '') checkUrl(endpoint, `${field}.Endpoint`, findings);
  return {
    credentialsFile,
    accessId: raw.AccessID ?? '',
    privateKey: raw.PrivateKey ?? '',
    bucketName,
    endpoint,
    signatureVersion: sv === 'v2' ? 'v2' : 'v4',
  };
}

function normalizeAzure(raw: RawAzure, field: string, findings: Finding[]): AzureSettings {
  unknownKeys(raw, azureSchema, field, findings);
  const accountName = raw.AccountName ?? '';
  const containerName = raw.ContainerName ?? '';
  if (accountName === '') findings.push({ level: 'error', field: `${field}.AccountName`, message: 'required' });
  if (containerName === '') findings.push({ level: 'error', field: `${field}.ContainerName`, message: 'required' });
  const serviceUrl = raw.ServiceURL ?? '';
  if (serviceUrl !== '') checkUrl(serviceUrl, `${field}.ServiceURL`, findings);
  return {
    accountName,
    accountKey: raw.AccountKey ?? '',
    containerName,
    storageDomain: raw.StorageDomain && raw.StorageDomain !== '' ? raw.StorageDomain : 'blob.core.windows.net',
    serviceUrl: serviceUrl.replace(/\/+$/, ''),
  };
}

function checkUrl(value: string, field: string, findings: Finding[]): void {
  let u: URL | undefined;
  try {
    u = new URL(value);
  } catch {
    u = undefined;
  }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.search !== '' || u.hash !== '') {
    findings.push({ level: 'error', field, message: `"${value}" is not an http(s) URL without query` });
  }
}

function serviceSettings(
  file: RawFile | undefined, cg: RawCachegate | undefined, env: Env, opts: LoadOptions, findings: Finding[], profiles: CacheProfile[],
): ServiceSettings {
  if (cg) unknownKeys(cg, cachegateSchema, 'cachegate', findings);
  // Not the global listen_address: that is the runner's own metrics listener (SPEC §1), and binding it
  // too would fail with EADDRINUSE on a machine that runs both from one config.toml.
  const listen = opts.listen ?? env.CACHEGATE_LISTEN ?? cg?.listen ?? DEFAULT_LISTEN;
  const listenField = opts.listen !== undefined ? '--listen' : env.CACHEGATE_LISTEN !== undefined ? 'CACHEGATE_LISTEN' : 'cachegate.listen';
  if (!parseListen(listen)) findings.push({ level: 'error', field: listenField, message: `"${listen}" is not HOST:PORT` });

  const logFormat = (env.CACHEGATE_LOG_FORMAT ?? cg?.log_format ?? file?.log_format ?? 'runner') as LogFormat;
  if (!LOG_FORMATS.includes(logFormat)) findings.push({ level: 'error', field: 'log_format', message: `"${logFormat}" is not one of ${LOG_FORMATS.join(', ')}` });
  const logLevel = (env.CACHEGATE_LOG_LEVEL ?? cg?.log_level ?? file?.log_level ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) findings.push({ level: 'error', field: 'log_level', message: `"${logLevel}" is not one of ${LOG_LEVELS.join(', ')}` });

  const publicUrl = (env.CACHEGATE_PUBLIC_URL ?? cg?.public_url ?? '').replace(/\/+$/, '');
  if (publicUrl !== '') checkUrl(publicUrl, 'cachegate.public_url', findings);

  const maxUrlLifetime = cg?.max_url_lifetime ?? DEFAULT_MAX_URL_LIFETIME;
  const defaultUrlLifetime = Math.min(cg?.default_url_lifetime ?? DEFAULT_URL_LIFETIME, maxUrlLifetime);

  const apiTokens: ApiToken[] = [];
  (cg?.api_tokens ?? []).forEach((t, i) => {
    const field = `cachegate.api_tokens[${i}]`;
    const token = secretSetting({ field, name: 'token', literal: t.token, envVar: t.token_env, env, required: true, warnBelow: 16 }, findings);
    const runner = findRunner(profiles, t.runner);
    if (!runner.ok) findings.push({ level: 'error', field: `${field}.runner`, message: runner.message });
    if (token !== '') apiTokens.push({ token, profile: t.runner, readOnly: t.read_only ?? false, label: t.name ?? `api_tokens[${i}]` });
  });

  const limits = connectionLimits(cg);
  if (limits.uploadWait > 0 && limits.uploadWait >= limits.idleTimeout) {
    // A waiting upload sends nothing (its client waits for the 100, or for the socket to drain), so
    // idle_timeout cuts its connection before its wait runs out: it gets no 503 and no Retry-After.
    findings.push({
      level: 'warning',
      field: 'cachegate.upload_wait',
      message: `upload_wait (${limits.uploadWait} s) is not below idle_timeout (${limits.idleTimeout} s): an upload waiting for a slot has its connection cut before its wait ends, without the 503 and Retry-After that tell its client when to retry; make upload_wait smaller`,
    });
  }

  return {
    listen,
    publicUrl,
    dataDir: resolve(opts.dataDir ?? env.CACHEGATE_DATA_DIR ?? cg?.data_dir ?? '.cachegate'),
    apiTokens,
    proxy: cg?.proxy ?? true,
    maxUrlLifetime,
    defaultUrlLifetime,
    logFormat: LOG_FORMATS.includes(logFormat) ? logFormat : 'runner',
    logLevel: LOG_LEVELS.includes(logLevel) ? logLevel : 'info',
    localSigningKey: env.CACHEGATE_LOCAL_SIGNING_KEY ?? cg?.local_signing_key ?? '',
    rateLimit: cg?.rate_limit ?? 0,
    rateLimitBurst: cg?.rate_limit_burst ?? Math.max(1, Math.ceil(2 * (cg?.rate_limit ?? 0))),
    authFailureLimit: cg?.auth_failure_limit ?? DEFAULT_AUTH_FAILURE_LIMIT,
    authFailureBurst: cg?.auth_failure_burst ?? DEFAULT_AUTH_FAILURE_BURST,
    backendTimeout: cg?.backend_timeout ?? DEFAULT_BACKEND_TIMEOUT,
    limits,
  };
}
