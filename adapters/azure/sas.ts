/**
 * Service SAS for exactly one blob (sr=b), signed with node:crypto HMAC-SHA256, with either the
 * account key or a user-delegation key. The strings to sign follow
 * https://learn.microsoft.com/rest/api/storageservices/create-service-sas and
 * https://learn.microsoft.com/rest/api/storageservices/create-user-delegation-sas for the pinned
 * version; test/unit/azure-sas.test.ts checks them byte for byte against @azure/storage-blob's
 * generateBlobSASQueryParameters. See docs/azure.md for why (speed).
 */
import { createHmac } from 'node:crypto';

/** Pinned SAS version (Azurite 3.35 accepts user-delegation SAS at this version; Azure does too). */
export const SAS_VERSION = '2025-11-05';

export interface DelegationKey {
  signedObjectId: string;
  signedTenantId: string;
  signedStartsOn: Date;
  signedExpiresOn: Date;
  signedService: string;
  signedVersion: string;
  signedDelegatedUserTenantId?: string;
  /** base64 */
  value: string;
}

export type SasKey = { kind: 'account'; accountKey: Buffer } | { kind: 'delegation'; key: DelegationKey; secret: Buffer };

export interface BlobSasInput {
  accountName: string;
  containerName: string;
  blobName: string;
  /** 'r' read (GET/HEAD), 'w' write (Put Blob, Put Block, Put Block List). */
  permissions: string;
  startsOn: Date;
  expiresOn: Date;
  protocol: 'https' | 'https,http';
  key: SasKey;
}

/** 2026-11-22T04:55:07Z (no milliseconds) */
export function sasTime(d: Date): string {
  return d.toISOString().slice(0, 19) + 'Z';
}

export function delegationSecret(key: DelegationKey): Buffer {
  return Buffer.from(key.value, 'base64');
}

/** Returns the SAS query string (without '?'). */
export function blobSas(input: BlobSasInput): string {
  const st = sasTime(input.startsOn);
  const se = sasTime(input.expiresOn);
  const canonical = `/blob/${input.accountName}/${input.containerName}/${input.blobName}`;
  const sp = input.permissions;
  const spr = input.protocol;
  const sv = SAS_VERSION;
  const sr = 'b';
  let stringToSign: string;
  let secret: Buffer;
  let extra = '';
  if (input.key.kind === 'account') {
    // sp st se resource si sip spr sv sr snapshot ses rscc rscd rsce rscl rsct
    stringToSign = [sp, st, se, canonical, '', '', spr, sv, sr, '', '', '', '', '', '', ''].join('\n');
    secret = input.key.accountKey;
  } else {
    const k = input.key.key;
    const skt = sasTime(k.signedStartsOn);
    const ske = sasTime(k.signedExpiresOn);
    // sp st se resource skoid sktid skt ske sks skv saoid suoid scid skdutid sduoid sip spr sv sr snapshot ses rscc rscd rsce rscl rsct
    stringToSign = [
      sp, st, se, canonical,
      k.signedObjectId, k.signedTenantId, skt, ske, k.signedService, k.signedVersion,
      '', '', '', k.signedDelegatedUserTenantId ?? '', '',
      '', spr, sv, sr, '', '', '', '', '', '', '',
    ].join('\n');
    secret = input.key.secret;
    extra =
      `&skoid=${encodeURIComponent(k.signedObjectId)}&sktid=${encodeURIComponent(k.signedTenantId)}` +
      `&skt=${encodeURIComponent(skt)}&ske=${encodeURIComponent(ske)}&sks=${encodeURIComponent(k.signedService)}` +
      `&skv=${encodeURIComponent(k.signedVersion)}` +
      (k.signedDelegatedUserTenantId ? `&skdutid=${encodeURIComponent(k.signedDelegatedUserTenantId)}` : '');
  }
  const sig = createHmac('sha256', secret).update(stringToSign, 'utf8').digest('base64');
  return (
    `sv=${sv}&spr=${encodeURIComponent(spr)}&st=${encodeURIComponent(st)}&se=${encodeURIComponent(se)}` +
    `${extra}&sr=${sr}&sp=${sp}&sig=${encodeURIComponent(sig)}`
  );
}

/** URL path of a blob below the service URL: /<container>/<blob segments, each percent-encoded>. */
export function blobPath(containerName: string, blobName: string): string {
  return `/${encodeURIComponent(containerName)}/${blobName.split('/').map(encodeURIComponent).join('/')}`;
}
