/**
 * RoleARN: STS AssumeRole with an inline session policy restricted to one object (SPEC §3), credentials
 * cached per (role, bucket, object, direction) until their expiry minus a margin, one call per key at a
 * time (single flight), at most `maxConcurrency` calls in flight overall.
 */
import { randomBytes } from 'node:crypto';
import type { Direction } from '../../src/adapter.ts';
import type { ServerSideEncryption } from '../../src/config/types.ts';
import { partitionOf } from './endpoint.ts';

export const ASSUME_ROLE_DURATION_SECONDS = 3600;
/** Cached role credentials are handed out only while they stay valid at least this long. */
export const ROLE_CREDENTIALS_MARGIN_MS = 10 * 60_000;
export const SESSION_NAME_PREFIX = 'cachegate';
/** Upper bound of the credentials cache (entries expire after an hour anyway). */
const MAX_CACHE_ENTRIES = 10_000;

export interface AssumeRoleInput {
  RoleArn: string;
  RoleSessionName: string;
  DurationSeconds: number;
  Policy: string;
}

export interface RoleCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

/** What calls STS (the real client in production, anything in tests). */
export type AssumeRoleCall = (input: AssumeRoleInput) => Promise<RoleCredentials>;

export type AssumeRoleResult = 'ok' | 'error' | 'cached';

export interface SessionPolicyInput {
  bucket: string;
  objectName: string;
  direction: Direction;
  region: string;
  sse: ServerSideEncryption | '';
  kmsKeyId: string;
}

/** The compact-JSON session policy of SPEC §3 (JSON.stringify keeps the object name escaped). */
export function sessionPolicy(p: SessionPolicyInput): string {
  const statements: object[] = [
    {
      Effect: 'Allow',
      Action: [p.direction === 'upload' ? 's3:PutObject' : 's3:GetObject'],
      Resource: `arn:${partitionOf(p.region)}:s3:::${p.bucket}/${p.objectName}`,
    },
  ];
  if ((p.sse === 'aws:kms' || p.sse === 'aws:kms:dsse') && p.kmsKeyId !== '') {
    statements.push({ Effect: 'Allow', Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: p.kmsKeyId });
  }
  return JSON.stringify({ Version: '2012-10-17', Statement: statements });
}

export function sessionName(): string {
  return `${SESSION_NAME_PREFIX}-${randomBytes(8).toString('hex')}`;
}

/** A counting semaphore; `limit` may be Infinity. */
export class Semaphore {
  readonly limit: number;
  #active = 0;
  #waiting: Array<() => void> = [];
  constructor(limit: number) {
    this.limit = limit > 0 ? limit : Infinity;
  }
  get active(): number {
    return this.#active;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#active >= this.limit) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#active++;
    try {
      return await fn();
    } finally {
      this.#active--;
      this.#waiting.shift()?.();
    }
  }
}

interface Entry {
  promise: Promise<RoleCredentials>;
  /** Known once resolved. */
  expiration?: Date;
}

export interface RoleCredentialCacheOptions {
  call: AssumeRoleCall;
  maxConcurrency: number;
  disableCaching: boolean;
  now?: () => number;
  onResult?: (result: AssumeRoleResult) => void;
}

export interface RoleRequest {
  roleArn: string;
  bucket: string;
  objectName: string;
  direction: Direction;
  policy: string;
}

export class RoleCredentialCache {
  readonly #opts: RoleCredentialCacheOptions;
  readonly #sem: Semaphore;
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;
  onResult: ((result: AssumeRoleResult) => void) | undefined;

  constructor(opts: RoleCredentialCacheOptions) {
    this.#opts = opts;
    this.#sem = new Semaphore(opts.maxConcurrency);
    this.#now = opts.now ?? Date.now;
    this.onResult = opts.onResult;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(req: RoleRequest): Promise<RoleCredentials> {
    if (this.#opts.disableCaching) return this.#assume(req);
    const key = JSON.stringify([req.roleArn, req.bucket, req.objectName, req.direction]);
    const hit = this.#entries.get(key);
    if (hit !== undefined && (hit.expiration === undefined || hit.expiration.getTime() - ROLE_CREDENTIALS_MARGIN_MS > this.#now())) {
      this.onResult?.('cached');
      return hit.promise;
    }
    const entry: Entry = { promise: this.#assume(req) };
    entry.promise.then(
      (c) => {
        entry.expiration = c.expiration;
      },
      () => {
        if (this.#entries.get(key) === entry) this.#entries.delete(key);
      },
    );
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    if (this.#entries.size > MAX_CACHE_ENTRIES) this.#prune();
    return entry.promise;
  }

  #prune(): void {
    const limit = this.#now() + ROLE_CREDENTIALS_MARGIN_MS;
    for (const [k, e] of this.#entries) if (e.expiration !== undefined && e.expiration.getTime() <= limit) this.#entries.delete(k);
    // Still too many: drop the oldest insertions (Map keeps insertion order).
    for (const k of this.#entries.keys()) {
      if (this.#entries.size <= MAX_CACHE_ENTRIES) break;
      this.#entries.delete(k);
    }
  }

  async #assume(req: RoleRequest): Promise<RoleCredentials> {
    try {
      const c = await this.#sem.run(() =>
        this.#opts.call({
          RoleArn: req.roleArn,
          RoleSessionName: sessionName(),
          DurationSeconds: ASSUME_ROLE_DURATION_SECONDS,
          Policy: req.policy,
        }),
      );
      this.onResult?.('ok');
      return c;
    } catch (err) {
      this.onResult?.('error');
      throw err;
    }
  }

  clear(): void {
    this.#entries.clear();
  }
}
