/**
 * The native SigV4 hashing (native/sigv4) gives the signatures node:crypto gives, for strings of
 * every shape the door meets: ASCII, multi-byte UTF-8 (object names), lone surrogates (what a JS
 * string may hold; both sides hash them as U+FFFD), and canonical requests longer than the addon's
 * stack buffer, at and around its edge. Both paths of signatureOf() run: the native one and the
 * fallback (hmacHex over node:crypto).
 */
import assert from 'node:assert/strict';
import { createHmac, hash } from 'node:crypto';
import fs from 'node:fs';
import { test } from 'node:test';
import { nativeSigV4, SIGV4_ADDON } from '../../src/sign/native-sigv4.ts';
import { hmacHex, signingKey } from '../../src/sign/sigv4.ts';

const pads = signingKey('wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', '20261204', 'us-east-1', 's3');
const prefix = 'AWS4-HMAC-SHA256\n20261204T161800Z\n20261204/us-east-1/s3/aws4_request\n';
const reference = (p: string, cr: string): string => createHmac('sha256', pads.key).update(p + hash('sha256', cr, 'hex')).digest('hex');

const requests: string[] = [
  '',
  'GET\n/runner-cache/k\n\nhost:127.0.0.1:9000\n\nhost\nUNSIGNED-PAYLOAD',
  `PUT\n/b/${'é'.repeat(300)}/日本\nx-id=PutObject\nhost:h\nx-amz-meta-cachekey:${'ü'.repeat(50)}\n\nhost;x-amz-meta-cachekey\nUNSIGNED-PAYLOAD`,
  'lone \ud800 surrogate \udfff',
  'x'.repeat(100_000),
];
// Around the addon's 4096-byte stack buffer, with 1-, 2-, 3- and 4-byte characters at the edge.
for (let n = 4085; n <= 4100; n++) for (const c of ['a', 'é', '日', '😀']) requests.push('a'.repeat(n) + c.repeat(3));

test('the native addon is built and loads here (else: npm run install)', (t) => {
  if (!fs.existsSync(SIGV4_ADDON)) return t.skip('not built on this machine (the node:crypto path is tested below)');
  if (process.env.CACHEGATE_NATIVE_SIGV4 === '0') return t.skip('CACHEGATE_NATIVE_SIGV4=0');
  assert.ok(nativeSigV4, 'native/sigv4/build/Release/cachegate_sigv4.node did not load');
});

test('native signatures equal node:crypto ones', (t) => {
  if (nativeSigV4 === null) return t.skip('the addon is not loaded');
  for (const cr of requests) {
    assert.equal(nativeSigV4.signature(pads.key, prefix, cr), reference(prefix, cr), `${cr.length} characters`);
    assert.equal(nativeSigV4.signature(pads.key, cr, 'GET'), reference(cr, 'GET'), `prefix of ${cr.length} characters`);
  }
});

test('the node:crypto fallback equals the reference HMAC', () => {
  for (const cr of requests) assert.equal(hmacHex(pads, prefix + hash('sha256', cr, 'hex')), reference(prefix, cr), `${cr.length} characters`);
});

test('bad arguments are a TypeError, not a crash', (t) => {
  if (nativeSigV4 === null) return t.skip('the addon is not loaded');
  const sig = nativeSigV4.signature as (...a: unknown[]) => string;
  assert.throws(() => sig(Buffer.alloc(31), prefix, ''), TypeError);
  assert.throws(() => sig('k'.repeat(32), prefix, ''), TypeError);
  assert.throws(() => sig(pads.key, 1, ''), TypeError);
  assert.throws(() => sig(pads.key, prefix), TypeError);
});
