/** adapters/local/signer.ts: /v1/blob URLs are accepted in exactly the form sign() writes. */
import assert from 'node:assert/strict';
import { createSecretKey } from 'node:crypto';
import { describe, it } from 'node:test';
import { sign, verify } from '../../adapters/local/signer.ts';
import { CacheGateError } from '../../src/errors.ts';

const key = createSecretKey(Buffer.alloc(32, 3));
const NOW = 1_800_000_000_000;
const headers = { 'content-length': '100', 'x-amz-meta-cachekey': 'k' };
const signed = sign(key, { method: 'PUT', objectName: 'runner/x/project/1/k', expires: NOW / 1000 + 60, maxSize: 1000, headers });
const check = (query: string): { maxSize: number; signedHeaders: string[] } =>
  verify(key, { method: 'PUT', objectName: 'runner/x/project/1/k', query: new URLSearchParams(query), header: (n) => headers[n as keyof typeof headers] }, NOW);
const sig = new URLSearchParams(signed).get('X-Cachegate-Signature') as string;
const without = (name: string): string => signed.split('&').filter((p) => !p.startsWith(`${name}=`)).join('&');

function refused(query: string, code = 'malformed_signature'): CacheGateError {
  try {
    check(query);
  } catch (err) {
    assert.ok(err instanceof CacheGateError, String(err));
    assert.equal(err.status, 403);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`accepted: ${query}`);
}

describe('local signer: one canonical form', () => {
  it('accepts what sign() wrote', () => {
    assert.deepEqual(check(signed), { maxSize: 1000, signedHeaders: ['content-length', 'x-amz-meta-cachekey'] });
  });

  it('refuses junk after the signature, upper-case hex, and a signature of the wrong length', () => {
    refused(`${without('X-Cachegate-Signature')}&X-Cachegate-Signature=${sig}zz`);
    refused(`${without('X-Cachegate-Signature')}&X-Cachegate-Signature=${sig}00`);
    refused(`${without('X-Cachegate-Signature')}&X-Cachegate-Signature=${sig.toUpperCase()}`);
    refused(`${without('X-Cachegate-Signature')}&X-Cachegate-Signature=${sig.slice(0, 62)}`);
    refused(`${without('X-Cachegate-Signature')}&X-Cachegate-Signature=%20${sig}`);
  });

  it('refuses a second signature, expiry, size cap or header list, whichever comes first', () => {
    refused(`${signed}&X-Cachegate-Signature=${'0'.repeat(64)}`);
    refused(`X-Cachegate-Signature=${'0'.repeat(64)}&${signed}`);
    refused(`${signed}&X-Cachegate-Expires=9999999999`);
    refused(`${signed}&X-Cachegate-MaxSize=1000`);
    refused(`${signed}&X-Cachegate-SignedHeaders=content-length`);
  });

  it('refuses other parameters, other spellings of the names, and values not as sign() writes them', () => {
    refused(`${signed}&foo=1`);
    refused(`${signed}&x-cachegate-signature=${sig}`);
    refused(signed.replace('X-Cachegate-Expires=', 'X-Cachegate-Expires=0'));
    refused(signed.replace('X-Cachegate-Expires=', 'X-Cachegate-Expires=+'));
    refused(signed.replace('X-Cachegate-MaxSize=1000', 'X-Cachegate-MaxSize=01000'));
    refused(signed.replace('X-Cachegate-MaxSize=1000', 'X-Cachegate-MaxSize=0'));
    refused(signed.replace('content-length%3Bx-amz-meta-cachekey', 'x-amz-meta-cachekey%3Bcontent-length'));
    refused(signed.replace('content-length%3Bx-amz-meta-cachekey', 'content-length%3Bcontent-length%3Bx-amz-meta-cachekey'));
    refused(signed.replace('content-length%3Bx-amz-meta-cachekey', 'Content-Length%3Bx-amz-meta-cachekey'));
    refused(without('X-Cachegate-Signature'));
    refused(without('X-Cachegate-Expires'));
  });

  it('a well-formed but wrong signature, or an expired URL, is still "forbidden"', () => {
    refused(`${without('X-Cachegate-Signature')}&X-Cachegate-Signature=${'0'.repeat(64)}`, 'forbidden');
    assert.throws(
      () => verify(key, { method: 'PUT', objectName: 'runner/x/project/1/k', query: new URLSearchParams(signed), header: (n) => headers[n as keyof typeof headers] }, NOW + 3_600_000),
      /expired/,
    );
  });
});
