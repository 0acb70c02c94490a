/**
 * The lifecycle rules a cloud bucket needs so that caches expire and abandoned multipart uploads are
 * cleaned up (`cachegate lifecycle`): S3 (JSON for the aws CLI, and the XML of the API), GCS
 * lifecycle JSON, an Azure management policy; each with the command that applies it. Pure: no SDK,
 * no network. The rules are scoped to the profile's namespace prefix, so that one bucket can hold
 * other data (docs/retention.md).
 */
import { posix } from 'node:path';
import type { CacheProfile } from './config/types.ts';

export interface LifecycleOutput {
  runner: string;
  backend: 's3' | 'gcs' | 'azure';
  /** The prefix the rule applies to ('' = the whole bucket/container). */
  prefix: string;
  /** File name to save `document` as, and the command that applies it. */
  file: string;
  document: string;
  command: string;
  /** The same rule as the S3 API's XML (S3 only), for tools that take XML (s3cmd setlifecycle). */
  xml?: string;
  notes: string[];
}

/** Days after which an incomplete multipart upload is aborted. */
const ABORT_MULTIPART_DAYS = 1;

/** `[Path/][runner/<short token>/]`: the part of every object name that belongs to this profile. */
export function namespacePrefix(p: CacheProfile): string {
  const joined = posix.join(p.cache.path, p.cache.shared ? '' : `runner/${p.shortToken}`);
  const trimmed = joined.replace(/^\.?\/*/, '').replace(/\/+$/, '');
  return trimmed === '' ? '' : `${trimmed}/`;
}

export function lifecycleFor(p: CacheProfile, days: number): LifecycleOutput | undefined {
  const prefix = namespacePrefix(p);
  const id = `cachegate-${p.name}`.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 255);
  const notes: string[] = [];
  if (prefix === '') notes.push('Shared = true without Path: the rule applies to the whole bucket; set Path to keep other data out of it');
  notes.push(`objects expire ${days} day(s) after their last upload (the storage does not know about downloads); a cache re-uploaded by its jobs lives on`);
  if (p.cache.type === 's3' && p.cache.s3) return s3Rule(p, prefix, id, days, notes);
  if (p.cache.type === 'gcs' && p.cache.gcs) return gcsRule(p, prefix, days, notes);
  if (p.cache.type === 'azure' && p.cache.azure) return azureRule(p, prefix, id, days, notes);
  return undefined;
}

function s3Rule(p: CacheProfile, prefix: string, id: string, days: number, notes: string[]): LifecycleOutput {
  const s3 = p.cache.s3!;
  const rule = {
    ID: id,
    Filter: { Prefix: prefix },
    Status: 'Enabled',
    Expiration: { Days: days },
    AbortIncompleteMultipartUpload: { DaysAfterInitiation: ABORT_MULTIPART_DAYS },
  };
  const file = `lifecycle-${id}.json`;
  const custom = s3.serverAddress !== '' && s3.serverAddress !== 's3.amazonaws.com';
  const endpoint = custom ? ` --endpoint-url ${s3.insecure ? 'http' : 'https'}://${s3.serverAddress.replace(/:(443|80)$/, '')}` : '';
  notes.push('put-bucket-lifecycle-configuration replaces the bucket\'s whole lifecycle configuration: merge with existing rules (aws s3api get-bucket-lifecycle-configuration) first');
  return {
    runner: p.name, backend: 's3', prefix, file,
    document: JSON.stringify({ Rules: [rule] }, null, 2),
    command: `aws s3api put-bucket-lifecycle-configuration${endpoint} --bucket ${shellWord(s3.bucketName)} --lifecycle-configuration file://${file}`,
    xml: [
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
      '  <Rule>',
      `    <ID>${xmlText(id)}</ID>`,
      `    <Filter><Prefix>${xmlText(prefix)}</Prefix></Filter>`,
      '    <Status>Enabled</Status>',
      `    <Expiration><Days>${days}</Days></Expiration>`,
      `    <AbortIncompleteMultipartUpload><DaysAfterInitiation>${ABORT_MULTIPART_DAYS}</DaysAfterInitiation></AbortIncompleteMultipartUpload>`,
      '  </Rule>',
      '</LifecycleConfiguration>',
    ].join('\n'),
    notes,
  };
}

function gcsRule(p: CacheProfile, prefix: string, days: number, notes: string[]): LifecycleOutput {
  const gcs = p.cache.gcs!;
  const condition = (age: number): Record<string, unknown> => (prefix === '' ? { age } : { age, matchesPrefix: [prefix] });
  const doc = {
    lifecycle: {
      rule: [
        { action: { type: 'Delete' }, condition: condition(days) },
        { action: { type: 'AbortIncompleteMultipartUpload' }, condition: condition(ABORT_MULTIPART_DAYS) },
      ],
    },
  };
  const file = `lifecycle-gcs-${p.name.replace(/[^A-Za-z0-9._-]/g, '-')}.json`;
  notes.push('--lifecycle-file replaces the bucket\'s whole lifecycle configuration: merge with existing rules (gcloud storage buckets describe) first');
  return {
    runner: p.name, backend: 'gcs', prefix, file,
    document: JSON.stringify(doc, null, 2),
    command: `gcloud storage buckets update gs://${shellWord(gcs.bucketName)} --lifecycle-file=${file}`,
    notes,
  };
}

function azureRule(p: CacheProfile, prefix: string, id: string, days: number, notes: string[]): LifecycleOutput {
  const az = p.cache.azure!;
  const policy = {
    rules: [{
      enabled: true,
      name: id.replace(/[^A-Za-z0-9]/g, '').slice(0, 256) || 'cachegate',
      type: 'Lifecycle',
      definition: {
        actions: { baseBlob: { delete: { daysAfterModificationGreaterThan: days } } },
        filters: { blobTypes: ['blockBlob'], prefixMatch: [`${az.containerName}/${prefix}`] },
      },
    }],
  };
  const file = `policy-${p.name.replace(/[^A-Za-z0-9._-]/g, '-')}.json`;
  notes.push('Azure removes uncommitted blocks of an abandoned block upload by itself after 7 days: no rule needed for them');
  notes.push('with last-access tracking on (az storage account blob-service-properties update --enable-last-access-tracking true), daysAfterLastAccessTimeGreaterThan expires by last download instead');
  notes.push('management-policy create replaces the account\'s whole policy: merge with existing rules (az storage account management-policy show) first');
  return {
    runner: p.name, backend: 'azure', prefix, file,
    document: JSON.stringify(policy, null, 2),
    command: `az storage account management-policy create --account-name ${shellWord(az.accountName)} --resource-group <RESOURCE_GROUP> --policy @${file}`,
    notes,
  };
}

function xmlText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A word safe to paste into a POSIX shell. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9._\-/:@=]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
