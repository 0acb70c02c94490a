/**
 * Bucket region: BucketLocation when set, else GetBucketLocation (fallback us-east-1, 'EU' → eu-west-1).
 * S3 Express directory buckets do not answer GetBucketLocation: their region comes from the zone id.
 */
import { s3ExpressZone } from './endpoint.ts';

export const DEFAULT_REGION = 'us-east-1';

export interface RegionResult {
  region: string;
  /** false when detection failed for a reason that may pass (network, 5xx): the adapter answers 503 and tries again. */
  final: boolean;
  /** Why the fallback was used, for a log line. */
  reason?: string;
}

/** Normalize a LocationConstraint: '' / undefined → us-east-1, 'EU' → eu-west-1. */
export function normalizeLocation(location: string | undefined | null): string {
  if (location === undefined || location === null || location === '') return DEFAULT_REGION;
  if (location === 'EU') return 'eu-west-1';
  return location;
}

// Zone-id prefixes of S3 Express One Zone (AWS publishes them per region).
const EXPRESS_ZONE_REGIONS: Record<string, string> = {
  use1: 'us-east-1', use2: 'us-east-2', usw2: 'us-west-2', aps1: 'ap-south-1', apne1: 'ap-northeast-1',
  euw1: 'eu-west-1', eun1: 'eu-north-1',
};

export function regionOfExpressBucket(bucket: string): string | undefined {
  const zone = s3ExpressZone(bucket);
  if (zone === undefined) return undefined;
  const prefix = zone.replace(/-az\d+$/, '');
  return EXPRESS_ZONE_REGIONS[prefix];
}

export interface LocationClient {
  getBucketLocation(bucket: string): Promise<string | undefined>;
}

/** Errors the server answered (it has an HTTP status) are final; others (network) are worth retrying. */
export async function detectRegion(client: LocationClient, bucket: string): Promise<RegionResult> {
  const express = regionOfExpressBucket(bucket);
  if (express !== undefined) return { region: express, final: true };
  if (s3ExpressZone(bucket) !== undefined) {
    return { region: DEFAULT_REGION, final: true, reason: `S3 Express bucket "${bucket}" in an unknown zone: set BucketLocation` };
  }
  try {
    return { region: normalizeLocation(await client.getBucketLocation(bucket)), final: true };
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    const name = err instanceof Error ? err.name : 'Error';
    const message = err instanceof Error ? err.message : String(err);
    const final = status !== undefined && status < 500;
    const failed = `GetBucketLocation failed (${name}${status === undefined ? '' : ` ${status}`}: ${message})`;
    return { region: DEFAULT_REGION, final, reason: final ? `${failed}; using ${DEFAULT_REGION}` : failed };
  }
}
