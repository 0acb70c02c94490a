import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CacheGateError } from '../../src/errors.ts';
import { withoutSignatures } from '../../src/redact-signatures.ts';

const SIG = 'a'.repeat(64);

describe('withoutSignatures: signed-request material a server echoed', () => {
  it('removes query signatures and credentials of every backend, Authorization values and bearer tokens; keeps the rest', () => {
    const cases: Array<[string, string[]]> = [
      [`PUT /b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261205%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=${SIG}&X-Amz-Security-Token=FQoGZXIvYXdzEJr`, ['AKID', SIG, 'FQoGZXIvYXdzEJr']],
      [`authorization=AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE1/20261205/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=${SIG}`, ['AKIDEXAMPLE1', SIG]],
      [`GET /o?X-Goog-Credential=sa%40p.iam&X-Goog-Signature=${SIG}`, ['sa%40p.iam', SIG]],
      ['GET /c/b?sv=2023-01-03&sig=Zm9vYmFyYmF6cXV4%3D&se=2026', ['Zm9vYmFyYmF6cXV4']],
      [`/v1/blob/x?X-Cachegate-Signature=${SIG}`, [SIG]],
      ['Authorization: Bearer glrt-abcdefghijkl', ['glrt-abcdefghijkl']],
      ['Authorization: SharedKey account:c2lnbmF0dXJl', ['c2lnbmF0dXJl']],
    ];
    for (const [text, secrets] of cases) {
      const out = withoutSignatures(text);
      for (const s of secrets) assert.ok(!out.includes(s), `${out} still holds ${s}`);
      assert.match(out, /removed\]/, out);
    }
    assert.equal(withoutSignatures('expected AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…'), 'expected AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…');
    assert.equal(withoutSignatures('S3 GetObject failed: SlowDown (HTTP 503): slow down'), 'S3 GetObject failed: SlowDown (HTTP 503): slow down');
  });

  it('every CacheGateError message goes through it', () => {
    const e = new CacheGateError('backend_unavailable', 503, `S3 PutObject failed: SlowDown (HTTP 503): PUT /b/k?X-Amz-Signature=${SIG}`);
    assert.ok(!e.message.includes(SIG));
    assert.ok(!JSON.stringify(e.toJSON()).includes(SIG));
  });
});
