/**
 * Bucket-level operations: HeadBucket, GetBucketLocation, ListBuckets (the one bucket), and
 * ListObjects V1/V2, confined to the caller's namespace. Listing pages through the adapter's list;
 * with a delimiter, each common prefix is reported once and skipped past.
 */
import type { CacheAdapter, ListedObject } from '../adapter.ts';
import { backendCall } from '../service/objects.ts';
import { S3Error, xmlEscape } from './errors.ts';
import type { Answer } from './object-ops.ts';

const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';
/** Names asked of the backend per list call. */
const LIST_PAGE = 1000;
const xml = (body: string): Answer => ({ status: 200, headers: { 'Content-Type': 'application/xml' }, body: `<?xml version="1.0" encoding="UTF-8"?>\n${body}` });

/** Empty LocationConstraint = us-east-1: what runners sign with when they ask (any region is accepted). */
export function bucketLocation(): Answer {
  return xml(`<LocationConstraint xmlns="${XMLNS}"></LocationConstraint>`);
}

export function headBucket(): Answer {
  return { status: 200, headers: { 'x-amz-bucket-region': 'us-east-1' } };
}

export function listBuckets(bucket: string, created: Date): Answer {
  return xml(`<ListAllMyBucketsResult xmlns="${XMLNS}"><Owner><ID>cachegate</ID><DisplayName>cachegate</DisplayName></Owner><Buckets><Bucket><Name>${xmlEscape(bucket)}</Name><CreationDate>${created.toISOString()}</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>`);
}

export interface ListRequest {
  adapter: CacheAdapter;
  timeoutMs: number;
  bucket: string;
  version: 1 | 2;
  prefix: string;
  delimiter: string;
  maxKeys: number;
  /** V2 continuation token / start-after, V1 marker: list names after this. */
  after: string;
  continuationToken?: string;
  startAfter?: string;
  encodeUrl: boolean;
}

function parseMaxKeys(v: string | undefined): number {
  if (v === undefined) return 1000;
  if (!/^[0-9]{1,9}$/.test(v)) throw new S3Error('InvalidArgument', 400, 'max-keys must be a non-negative integer');
  return Math.min(1000, Number(v));
}

export function listRequest(q: Map<string, string>, base: Pick<ListRequest, 'adapter' | 'timeoutMs' | 'bucket'>): ListRequest {
  const version = q.get('list-type') === '2' ? 2 : 1;
  let after = '';
  let continuationToken: string | undefined;
  if (version === 2) {
    continuationToken = q.get('continuation-token');
    if (continuationToken !== undefined) {
      after = Buffer.from(continuationToken, 'base64url').toString('utf8');
      if (after === '') throw new S3Error('InvalidArgument', 400, 'The continuation token provided is incorrect');
    } else after = q.get('start-after') ?? '';
  } else after = q.get('marker') ?? '';
  const encoding = q.get('encoding-type');
  if (encoding !== undefined && encoding !== 'url') throw new S3Error('InvalidArgument', 400, 'Invalid Encoding Method specified in Request');
  return {
    ...base, version, prefix: q.get('prefix') ?? '', delimiter: q.get('delimiter') ?? '', maxKeys: parseMaxKeys(q.get('max-keys')), after,
    ...(continuationToken !== undefined ? { continuationToken } : {}),
    ...(q.get('start-after') !== undefined ? { startAfter: q.get('start-after') as string } : {}),
    encodeUrl: encoding === 'url',
  };
}

export async function listObjects(r: ListRequest): Promise<Answer> {
  const { adapter } = r;
  if (!adapter.list) throw new S3Error('NotImplemented', 501, `listing is not supported by the ${adapter.kind} backend`);
  const list = adapter.list.bind(adapter);
  const objects: ListedObject[] = [];
  const prefixes: string[] = [];
  let cursor = r.after;
  let truncated = false;
  let last = '';
  const count = (): number => objects.length + prefixes.length;
  let more = true;
  let under = ''; // the last common prefix: names under it are skipped
  while (more && count() < r.maxKeys) {
    // Whole pages, read through (a backend list may cost a scan: the local one reads every header),
    // rather than one call per common prefix.
    const page = await backendCall(adapter, () => list(r.prefix, { ...(cursor !== '' ? { startAfter: cursor } : {}), max: LIST_PAGE }), r.timeoutMs);
    more = page.truncated;
    for (const o of page.objects) {
      if (count() >= r.maxKeys) {
        more = true;
        break;
      }
      if (under !== '' && o.name.startsWith(under)) {
        if (o.name > cursor) cursor = o.name;
        continue;
      }
      const cut = r.delimiter === '' ? -1 : o.name.indexOf(r.delimiter, r.prefix.length);
      if (cut === -1) {
        objects.push(o);
        last = cursor = o.name;
        continue;
      }
      const p = o.name.slice(0, cut + r.delimiter.length);
      prefixes.push(p);
      last = under = p;
      cursor = p + '\u{10ffff}'; // past every name under this common prefix: ask again from there
    }
    if (page.objects.length === 0) more = false;
  }
  if (more && count() >= r.maxKeys) {
    // Whether anything follows is known only by asking.
    const next = await backendCall(adapter, () => list(r.prefix, { startAfter: cursor, max: 1 }), r.timeoutMs);
    truncated = next.objects.length > 0;
  }
  const enc = (s: string): string => xmlEscape(r.encodeUrl ? encodeURIComponent(s).replace(/%2F/g, '/') : s);
  let out = `<ListBucketResult xmlns="${XMLNS}"><Name>${xmlEscape(r.bucket)}</Name><Prefix>${enc(r.prefix)}</Prefix>`;
  if (r.version === 2) {
    out += `<KeyCount>${objects.length + prefixes.length}</KeyCount>`;
    if (r.continuationToken !== undefined) out += `<ContinuationToken>${xmlEscape(r.continuationToken)}</ContinuationToken>`;
    if (r.startAfter !== undefined) out += `<StartAfter>${enc(r.startAfter)}</StartAfter>`;
    if (truncated) out += `<NextContinuationToken>${Buffer.from(cursor, 'utf8').toString('base64url')}</NextContinuationToken>`;
  } else {
    out += `<Marker>${enc(r.after)}</Marker>`;
    if (truncated && r.delimiter !== '') out += `<NextMarker>${enc(last)}</NextMarker>`;
  }
  out += `<MaxKeys>${r.maxKeys}</MaxKeys>${r.delimiter !== '' ? `<Delimiter>${enc(r.delimiter)}</Delimiter>` : ''}<IsTruncated>${truncated}</IsTruncated>`;
  if (r.encodeUrl) out += '<EncodingType>url</EncodingType>';
  for (const o of objects) {
    out += `<Contents><Key>${enc(o.name)}</Key><LastModified>${o.lastModified.toISOString()}</LastModified>${o.etag ? `<ETag>${xmlEscape(o.etag)}</ETag>` : ''}<Size>${o.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`;
  }
  for (const p of prefixes) out += `<CommonPrefixes><Prefix>${enc(p)}</Prefix></CommonPrefixes>`;
  return xml(out + '</ListBucketResult>');
}
