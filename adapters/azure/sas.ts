/**
 * Service SAS for exactly one blob (sr=b), signed by @azure/storage-blob's
 * generateBlobSASQueryParameters with the account key or a user-delegation key.
 *
 * A hand-rolled node:crypto signer was measured against the SDK (docs/azure.md): 34–66k/s against
 * 30–54k/s on a shared 2-core machine — not enough faster to own the strings to sign, so the SDK
 * signs. The SDK module is passed in (it is loaded lazily by the adapter factory).
 */
import type * as BlobSdk from '@azure/storage-blob';

/** Pinned SAS version (Azurite 3.35 accepts user-delegation SAS at this version; Azure does too). */
export const SAS_VERSION = '2025-11-05';

export type SasKey =
  | { kind: 'account'; credential: BlobSdk.StorageSharedKeyCredential }
  | { kind: 'delegation'; key: BlobSdk.UserDelegationKey; accountName: string };

export interface BlobSasInput {
  containerName: string;
  blobName: string;
  /** 'r' read (GET/HEAD), 'w' write (Put Blob, Put Block, Put Block List). */
  permissions: 'r' | 'w';
  startsOn: Date;
  expiresOn: Date;
  /** 'https' in production; 'https,http' when the service URL itself is http (emulators). */
  protocol: 'https' | 'https,http';
  key: SasKey;
}

export type SasSdk = Pick<typeof BlobSdk, 'generateBlobSASQueryParameters' | 'BlobSASPermissions' | 'SASProtocol'>;

/** Returns the SAS query string (without '?'). */
export function blobSas(sdk: SasSdk, input: BlobSasInput): string {
  const values: BlobSdk.BlobSASSignatureValues = {
    containerName: input.containerName,
    blobName: input.blobName,
    permissions: sdk.BlobSASPermissions.parse(input.permissions),
    startsOn: input.startsOn,
    expiresOn: input.expiresOn,
    protocol: input.protocol === 'https' ? sdk.SASProtocol.Https : sdk.SASProtocol.HttpsAndHttp,
    version: SAS_VERSION,
  };
  const params = input.key.kind === 'account'
    ? sdk.generateBlobSASQueryParameters(values, input.key.credential)
    : sdk.generateBlobSASQueryParameters(values, input.key.key, input.key.accountName);
  return params.toString();
}

/** URL path of a blob below the service URL: /<container>/<blob segments, each percent-encoded>. */
export function blobPath(containerName: string, blobName: string): string {
  return `/${encodeURIComponent(containerName)}/${blobName.split('/').map(encodeURIComponent).join('/')}`;
}
