/**
 * The contract every storage backend passes (test/contract/README.md). A backend joins the suite
 * with one file test/contract/fixtures/<name>.ts whose default export is a ContractFixture.
 */
import type { CacheAdapter } from '../../src/adapter.ts';

export interface ContractCapabilities {
  /** Prefix of the metadata headers a presigned GET/HEAD answers with, e.g. 'x-goog-meta-'. */
  metaHeaderPrefix: string;
  /**
   * Status of a presigned GET/HEAD for a missing object: 404, or 403 where the backend answers that
   * (e.g. S3 under a role session policy without s3:ListBucket). Write the reason in missingReason.
   */
  missingStatus: 404 | 403;
  missingReason?: string;
  /** Statuses an expired presigned URL may get (Azure/S3 403; GCS answers 400 ExpiredToken). */
  expiredStatuses: number[];
  /**
   * true when the server itself refuses a PUT above maxSize through a URL presigned with
   * contentLength = maxSize (GCS x-goog-content-length-range, S3 signed Content-Length, the local
   * backend); otherwise the reason it cannot (the case is skipped with it).
   */
  presignedSizeCap: true | string;
  /**
   * Changes the signature of a presigned URL. Default: alters one character of the first query
   * parameter among X-Amz-Signature, X-Goog-Signature, Signature, sig, signature.
   */
  tamper?: (url: string) => string;
  /** Per-case skip reasons, by case name (see cases.ts). A case listed here is skipped with the reason. */
  skip?: Record<string, string>;
}

export interface ContractBackend {
  adapter: CacheAdapter;
  /** The adapter's profile MaxUploadedArchiveSize (must be > 0, small: a few KiB). */
  maxSize: number;
  capabilities: ContractCapabilities;
  stop(): Promise<void>;
}

export interface ContractFixture {
  name: string;
  start(): Promise<ContractBackend>;
}

/** Thrown by start() when the backend's server cannot run here (the fixture is skipped with the message, unless CONTRACT_REQUIRE_ALL=1). */
export class FixtureUnavailable extends Error {
  override name = 'FixtureUnavailable';
}
