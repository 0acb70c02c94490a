/**
 * The S3 front door's SigV4 verification cost, in-process, no server: µs per request for a runner's
 * presigned PUT URL (AWS SDK presigner, x-amz-meta-cachekey signed as a header, x-id) and for a
 * header-signed GET (@smithy/signature-v4, UNSIGNED-PAYLOAD).
 *
 * What one measured request covers: everything the door does for authentication once Node's HTTP
 * parser has handed it the request: splitting and percent-decoding the raw path and query string,
 * the signature's parsing, the date rules, the canonical request, its SHA-256, the HMAC with the
 * (cached, per day) signing key and the constant-time comparison, up to the verdict. Not included:
 * HTTP parsing, the rate limiter, the operation itself.
 *
 *   ./node_modules/.bin/node bench/s3api-verify.ts        (also run at the end of bench/s3api.ts)
 *   ./node_modules/.bin/node bench/s3api-verify-ab.ts …   (versions side by side, alternating)
 *   ./node_modules/.bin/node bench/s3api-verify-steps.ts  (each step timed alone)
 */
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { addressOf } from '../src/s3api/address.ts';
import { readQuery } from '../src/s3api/canonical.ts';
import { verifySigV4 } from '../src/s3api/sigv4-verify.ts';

export const AK = 'BENCHFRONTDOOR01';
export const SK = 'bench-front-door-secret';
const BUCKET = 'runner-cache';
const KEY = 'runner/benchfron/project/1/bench-1mb';

interface RawRequest {
  method: string;
  /** As it arrives: path and query string, percent-encoded. */
  url: string;
  /** Lower-case name → values, as node's req.headersDistinct gives them. */
  headers: Record<string, string[]>;
}

const secrets = (ak: string): string | undefined => (ak === AK ? SK : undefined);

/** One request, from raw URL to verdict (see the file comment). */
function verifyRaw(r: RawRequest): void {
  const q = r.url.indexOf('?');
  const query = readQuery(q === -1 ? '' : r.url.slice(q + 1));
  if (query === undefined) throw new Error('bad query');
  const addr = addressOf(q === -1 ? r.url : r.url.slice(0, q), r.headers.host?.[0], BUCKET);
  verifySigV4({ method: r.method, path: addr.path, query, header: (n) => r.headers[n] }, secrets);
}

function microseconds(r: RawRequest, n: number): number {
  for (let i = 0; i < 5000; i++) verifyRaw(r);
  // CPU time of this thread, not wall time: on a shared machine the wall clock also counts the
  // time other processes held the core (the same on a quiet one).
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) verifyRaw(r);
  const used = process.cpuUsage(t0);
  return (used.user + used.system) / n;
}

export async function sampleRequests(endpoint = 'http://127.0.0.1:9000'): Promise<{ presigned: RawRequest; headerSigned: RawRequest }> {
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: AK, secretAccessKey: SK }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  const put = new URL(await getSignedUrl(client, new PutObjectCommand({ Bucket: BUCKET, Key: KEY, Metadata: { cachekey: 'bench' } }), { expiresIn: 3600, unhoistableHeaders: new Set(['x-amz-meta-cachekey']) }));
  const get = new URL(await getSignedUrl(client, new GetObjectCommand({ Bucket: BUCKET, Key: KEY }), { expiresIn: 3600 }));
  const signer = new SignatureV4({ credentials: { accessKeyId: AK, secretAccessKey: SK }, region: 'us-east-1', service: 's3', sha256: Hash.bind(null, 'sha256'), uriEscapePath: false });
  const signed = await signer.sign({ method: 'GET', protocol: 'http:', hostname: get.hostname, port: Number(get.port), path: get.pathname, query: {}, headers: { host: get.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
  const common = { 'user-agent': ['aws-sdk-go-v2/1.36.3'], accept: ['*/*'], connection: ['keep-alive'] };
  return {
    presigned: { method: 'PUT', url: put.pathname + put.search, headers: { host: [put.host], 'x-amz-meta-cachekey': ['bench'], 'content-length': ['1048576'], ...common } },
    headerSigned: { method: 'GET', url: get.pathname, headers: { ...common, ...Object.fromEntries(Object.entries(signed.headers).map(([k, v]) => [k.toLowerCase(), [String(v)]])) } },
  };
}

/** µs per verification, median of `runs` runs of `n` requests each. */
export async function verifyCost(runs = 5, n = 50_000): Promise<{ presigned: number; headerSigned: number }> {
  const s = await sampleRequests();
  const median = (xs: number[]): number => xs.sort((a, b) => a - b)[xs.length >> 1];
  const p: number[] = [];
  const h: number[] = [];
  for (let i = 0; i < runs; i++) {
    p.push(microseconds(s.presigned, n));
    h.push(microseconds(s.headerSigned, n));
  }
  const round = (x: number): number => Math.round(x * 100) / 100;
  return { presigned: round(median(p)), headerSigned: round(median(h)) };
}

if (import.meta.main) {
  process.stdout.write(JSON.stringify({ bench: 's3api-verify', date: new Date().toISOString(), microseconds: await verifyCost() }, null, 2) + '\n');
}
