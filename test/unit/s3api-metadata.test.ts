import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { decodeHeaderValue, metadataHeaderValue } from '../../src/keys/header-value.ts';
import { signedMetadata } from '../../src/s3api/metadata.ts';

/** A header value as Node hands it over: one character per received byte. */
const asReceived = (utf8: string): string => Buffer.from(utf8, 'utf8').toString('latin1');

describe('front door metadata values (S3 rules: Unicode in, RFC 2047 out)', () => {
  const words = ['café', '€5', '日本語', '✓ done', 'a\tb', ' padded ', 'plain ascii', '=?UTF-8?B?not base64 ?='];
  it('every value reaches the backend as printable ASCII that decodes to what the client meant; unsigned headers are left out', () => {
    const headers: Record<string, string> = { 'x-amz-meta-unsigned': 'x' };
    words.forEach((w, i) => (headers[`x-amz-meta-k${i}`] = asReceived(w)));
    headers['x-amz-meta-word'] = `=?UTF-8?B?${Buffer.from('日本', 'utf8').toString('base64')}?=`; // boto3's way: S3 decodes it
    headers['x-amz-meta-hello'] = '=?utf-8?b?aGVsbG8=?='; // an encoded plain word is stored plain, as S3 does
    headers['x-amz-meta-latin1'] = 'caf\xe9'; // not UTF-8 (a latin1 byte): kept as that character
    const signed = [...Object.keys(headers).filter((n) => n !== 'x-amz-meta-unsigned'), 'host'];
    const m = signedMetadata({ headers } as unknown as IncomingMessage, signed);
    assert.equal(m.unsigned, undefined);
    for (const v of Object.values(m)) assert.match(v, /^[\x20-\x7e]*$/);
    words.forEach((w, i) => assert.equal(decodeHeaderValue(m[`k${i}`]), w, `k${i}`));
    assert.equal(m.k6, 'plain ascii');
    assert.equal(decodeHeaderValue(m.word), '日本');
    assert.equal(m.hello, 'hello');
    assert.equal(decodeHeaderValue(m.latin1), 'café');
  });

  it('stored values leave as printable ASCII: encoded words as they are, raw bytes of older objects encoded', () => {
    assert.equal(metadataHeaderValue('=?UTF-8?B?w6k=?='), '=?UTF-8?B?w6k=?=');
    assert.equal(metadataHeaderValue('plain'), 'plain');
    assert.equal(decodeHeaderValue(metadataHeaderValue(asReceived('café'))), 'café');
    assert.equal(decodeHeaderValue(metadataHeaderValue('日本')), '日本');
    assert.equal(decodeHeaderValue(metadataHeaderValue('a\r\nb')), 'a\r\nb');
  });
});
