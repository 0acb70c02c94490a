/**
 * The steps of one SigV4 verification (bench/s3api-verify.ts's two requests), each timed alone:
 * CPU µs per call, 200,000 calls after 20,000 of warm-up. For finding where the time goes; the
 * sum is not the whole (the bench's number is).
 *
 *   ./node_modules/.bin/node bench/s3api-verify-steps.ts
 */
import { createHash, hash } from 'node:crypto';
import { addressOf } from '../src/s3api/address.ts';
import { canonicalHeaders, canonicalUri, readQuery } from '../src/s3api/canonical.ts';
import { verifySigV4 } from '../src/s3api/sigv4-verify.ts';
import { hmacHex, signatureOf, signingKey } from '../src/sign/sigv4.ts';
import { nativeSigV4 } from '../src/sign/native-sigv4.ts';
import { SK, sampleRequests } from './s3api-verify.ts';

const N = 200_000;
function time(f: () => unknown): number {
  for (let i = 0; i < 20_000; i++) f();
  const t0 = process.cpuUsage();
  for (let i = 0; i < N; i++) f();
  const u = process.cpuUsage(t0);
  return Math.round(((u.user + u.system) / N) * 1000) / 1000;
}

const out: Record<string, Record<string, number>> = {};
for (const [form, r] of Object.entries(await sampleRequests())) {
  const q = r.url.indexOf('?');
  const rawQuery = q === -1 ? '' : r.url.slice(q + 1);
  const rawPath = q === -1 ? r.url : r.url.slice(0, q);
  const query = readQuery(rawQuery)!;
  const addr = addressOf(rawPath, r.headers.host[0], 'runner-cache');
  const header = (n: string): string[] | undefined => r.headers[n];
  const req = { method: r.method, path: addr.path, query, header };
  const signed = (r.headers.authorization?.[0] ?? decodeURIComponent(/X-Amz-SignedHeaders=([^&]*)/.exec(rawQuery)?.[1] ?? '')).replace(/.*SignedHeaders=([^,]*),.*/, '$1').split(';');
  const canonicalRequest = `${r.method}\n${canonicalUri(addr.path)}\n${query.canonicalUnsigned ?? query.canonical}\n${canonicalHeaders(signed, header)}\n${signed.join(';')}\nUNSIGNED-PAYLOAD`;
  const prefix = 'AWS4-HMAC-SHA256\n20261204T161800Z\n20261204/us-east-1/s3/aws4_request\n';
  const pads = signingKey(SK, '20261204', 'us-east-1', 's3');
  const stringToSign = prefix + hash('sha256', canonicalRequest, 'hex');
  const pieces = canonicalRequest.split(/(?<=\n)/); // the same bytes, one piece per line
  out[form] = {
    'readQuery (raw query)': time(() => readQuery(rawQuery)),
    'addressOf (raw path)': time(() => addressOf(rawPath, r.headers.host[0], 'runner-cache')),
    'verifySigV4 (after the two above)': time(() => verifySigV4(req, () => SK)),
    canonicalUri: time(() => canonicalUri(addr.path)),
    canonicalHeaders: time(() => canonicalHeaders(signed, header)),
    'signingKey (cached)': time(() => signingKey(SK, '20261204', 'us-east-1', 's3')),
    [`signatureOf (${nativeSigV4 ? 'native' : 'node:crypto'})`]: time(() => signatureOf(pads, prefix, canonicalRequest)),
    'node:crypto hash() of the canonical request': time(() => hash('sha256', canonicalRequest, 'hex')),
    'node:crypto createHash() fed line by line': time(() => {
      const h = createHash('sha256');
      for (const piece of pieces) h.update(piece);
      return h.digest('hex');
    }),
    'node:crypto hmacHex (two hash() calls)': time(() => hmacHex(pads, stringToSign)),
  };
}
process.stdout.write(JSON.stringify({ bench: 's3api-verify-steps', date: new Date().toISOString(), nativeAddon: nativeSigV4 !== null, microseconds: out }, null, 2) + '\n');
