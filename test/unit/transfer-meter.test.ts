import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMeter, formatBytes, meterFrequency, parseGoDuration } from '../../src/transfer/meter.ts';
import { metadataFromHeaders } from '../../src/transfer/metadata.ts';
import { parseHeaderFlags } from '../../src/transfer/remote.ts';
import { isAzureSasUrl, tooBigMessage } from '../../src/transfer/upload.ts';
import { parseContentRange } from '../../src/transfer/download.ts';
import { parseErrorXml, httpError, isRetryable } from '../../src/transfer/errors.ts';

describe('progress meter', () => {
  it('parses Go durations', () => {
    assert.equal(parseGoDuration('5s'), 5000);
    assert.equal(parseGoDuration('1m30s'), 90_000);
    assert.equal(parseGoDuration('1.5h'), 5_400_000);
    assert.equal(parseGoDuration('250ms'), 250);
    assert.equal(parseGoDuration('0'), 0);
    for (const bad of ['', '5', 's', '5 s', '1d', '5s junk']) assert.throws(() => parseGoDuration(bad), /invalid duration/, bad);
  });

  it('TRANSFER_METER_FREQUENCY: given → that period, 0 → off, unset → 1 s on a terminal only', () => {
    assert.equal(meterFrequency('2s', false), 2000);
    assert.equal(meterFrequency('0', true), 0);
    assert.equal(meterFrequency(undefined, true), 1000);
    assert.equal(meterFrequency(undefined, false), 0);
    assert.equal(meterFrequency('', false), 0);
  });

  it('prints done / total, percent and rate; a final line on done(); nothing when off', () => {
    const lines: string[] = [];
    const stream = { write: (s: string) => lines.push(s) !== 0, isTTY: false } as unknown as NodeJS.WritableStream;
    let t = 0;
    const meter = createMeter({ label: 'Uploading cache.zip', frequencyMs: 60_000, stream, now: () => t });
    meter.onProgress(3 * 1024 * 1024, 12 * 1024 * 1024);
    t = 2000;
    meter.done();
    assert.deepEqual(lines, ['Uploading cache.zip 3.00 MiB / 12.0 MiB (25%), 1.50 MiB/s\n']);
    const off = createMeter({ label: 'x', frequencyMs: 0, stream });
    off.onProgress(1, 2);
    off.done();
    assert.equal(lines.length, 1);
    assert.equal(formatBytes(1023), '1023 B');
  });
});

describe('transfer helpers', () => {
  it('metadata.json from x-amz/x-goog/x-ms meta headers: lower-case, sorted, RFC 2047 decoded', () => {
    assert.deepEqual(metadataFromHeaders({ 'x-amz-meta-zeta': 'z', 'x-amz-meta-cachekey': '=?UTF-8?B?w7xtbGF1dCBrZXk=?=', 'content-type': 'x', 'x-amz-meta-': 'empty name' }), { cachekey: 'ümlaut key', zeta: 'z' });
    assert.equal(JSON.stringify(metadataFromHeaders({ 'x-ms-meta-B': '2', 'x-goog-meta-a': '1' })), '{"a":"1","b":"2"}');
    assert.deepEqual(metadataFromHeaders({ etag: '"x"' }), {});
  });

  it('--header flags', () => {
    assert.deepEqual(parseHeaderFlags(['x-amz-meta-cachekey: a:b', 'Content-Type:text/plain']), { 'x-amz-meta-cachekey': 'a:b', 'Content-Type': 'text/plain' });
    assert.throws(() => parseHeaderFlags(['nocolon']), /expected "Name: value"/);
  });

  it('a malformed --header is refused without echoing it (a header value may be a secret: the job log is widely readable)', () => {
    for (const bad of ['Authorization Bearer s3cr3t-t0ken-value', ': s3cr3t-t0ken-value', 's3cr3t-t0ken-value']) {
      assert.throws(() => parseHeaderFlags(['x-ok: 1', bad]), (err: Error) => /--header 2 of 2.*expected "Name: value"/.test(err.message) && !err.message.includes('t0ken'));
    }
  });

  it('Azure SAS detection', () => {
    assert.ok(isAzureSasUrl('https://acct.blob.core.windows.net/c/b?sv=1&sig=x'));
    assert.ok(isAzureSasUrl('http://127.0.0.1:10000/devstoreaccount1/c/b?sv=2025-11-05&sr=b&sp=w&sig=abc'));
    assert.ok(!isAzureSasUrl('http://127.0.0.1:9000/bucket/k?X-Amz-Signature=abc'));
    assert.ok(!isAzureSasUrl('not a url'));
  });

  it('upstream oversize message', () => {
    assert.equal(tooBigMessage(2000, 1000), 'Cache archive size (2000) is too big (Limit is set to 1000). Cache will be stored only locally.');
  });

  it('Content-Range and S3 error XML', () => {
    assert.deepEqual(parseContentRange('bytes 0-9/100'), { start: 0, end: 9, total: 100 });
    assert.deepEqual(parseContentRange('bytes 5-9/*'), { start: 5, end: 9, total: undefined });
    assert.equal(parseContentRange('items 0-1/2'), undefined);
    const xml = '<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Access &amp; Denied</Message></Error>';
    assert.deepEqual(parseErrorXml(xml), { code: 'AccessDenied', message: 'Access & Denied' });
    const err = httpError('upload', 403, 'Forbidden', xml);
    assert.equal(err.message, 'upload failed: 403 Forbidden (AccessDenied: Access & Denied)');
    assert.equal(err.status, 403);
    assert.equal(httpError('upload', 500, '', 'oops').message, 'upload failed: 500');
  });

  it('a 403 whose storage says the signature does not match says a signed header is missing or different', () => {
    const s3 = httpError('upload', 403, 'Forbidden', '<Error><Code>SignatureDoesNotMatch</Code><Message></Message></Error>');
    assert.match(s3.message, /^upload failed: 403 Forbidden \(SignatureDoesNotMatch\): a signed header is missing or different/);
    const local = httpError('upload', 403, 'Forbidden', '{"error":{"code":"forbidden","message":"request signature is not valid: signature does not match"}}');
    assert.match(local.message, /\(forbidden: request signature is not valid: signature does not match\): a signed header is missing or different/);
    const expired = httpError('upload', 403, 'Forbidden', '{"error":{"code":"forbidden","message":"request signature is not valid: URL expired"}}');
    assert.doesNotMatch(expired.message, /signed header/);
  });

  it("cachegate's 502 backend_error (a configuration fault) is not retried; its 503 is", () => {
    const fault = httpError('download', 502, 'Bad Gateway', '{"error":{"code":"backend_error","message":"S3 GetObject failed: …: check SecretKey"}}');
    assert.equal(fault.code, 'backend_error');
    assert.match(fault.message, /check SecretKey/);
    assert.equal(isRetryable(fault), false);
    assert.equal(isRetryable(httpError('download', 503, '', '{"error":{"code":"backend_unavailable","message":"x"}}')), true);
    assert.equal(isRetryable(httpError('download', 502, '', '')), true, 'a 502 of some proxy in between may pass');
  });
});
