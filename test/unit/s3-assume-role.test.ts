/** RoleARN without a server: session policy, cache, single flight, concurrency cap, errors. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ROLE_CREDENTIALS_MARGIN_MS, RoleCredentialCache, Semaphore, sessionPolicy } from '../../adapters/s3/assume-role.ts';
import type { AssumeRoleInput, RoleCredentials } from '../../adapters/s3/assume-role.ts';
import { createS3Adapter } from '../../adapters/s3/index.ts';
import type { S3Settings } from '../../src/config/types.ts';
import { CacheGateError } from '../../src/errors.ts';
import { s3Context, s3Settings } from '../support/rgw.ts';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function fakeSts(opts: { fail?: (i: AssumeRoleInput) => Error | undefined; hold?: boolean; now?: () => number } = {}) {
  const inputs: AssumeRoleInput[] = [];
  let active = 0;
  let maxActive = 0;
  const waiting: Array<() => void> = [];
  const call = async (input: AssumeRoleInput): Promise<RoleCredentials> => {
    inputs.push(input);
    active++;
    maxActive = Math.max(maxActive, active);
    try {
      if (opts.hold) await new Promise<void>((r) => waiting.push(r));
      else await tick();
      const err = opts.fail?.(input);
      if (err) throw err;
      const n = inputs.length;
      return { accessKeyId: `ASIA${n}`, secretAccessKey: `secret${n}`, sessionToken: `token${n}`, expiration: new Date((opts.now ?? Date.now)() + 3600_000) };
    } finally {
      active--;
    }
  };
  return { call, inputs, get maxActive() { return maxActive; }, release: () => waiting.splice(0).forEach((r) => r()), waiting };
}

describe('session policy (SPEC §3)', () => {
  test('upload, aws partition, exact compact JSON', () => {
    assert.equal(
      sessionPolicy({ bucket: 'b', objectName: 'runner/x/project/1/k', direction: 'upload', region: 'us-east-1', sse: '', kmsKeyId: '' }),
      '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject"],"Resource":"arn:aws:s3:::b/runner/x/project/1/k"}]}',
    );
  });
  test('download → s3:GetObject; partitions by region', () => {
    const p = (region: string) => JSON.parse(sessionPolicy({ bucket: 'b', objectName: 'o', direction: 'download', region, sse: '', kmsKeyId: '' })).Statement[0];
    assert.deepEqual(p('eu-west-1'), { Effect: 'Allow', Action: ['s3:GetObject'], Resource: 'arn:aws:s3:::b/o' });
    assert.equal(p('us-gov-west-1').Resource, 'arn:aws-us-gov:s3:::b/o');
    assert.equal(p('cn-north-1').Resource, 'arn:aws-cn:s3:::b/o');
    assert.equal(p('us-east-1').Resource, 'arn:aws:s3:::b/o');
  });
  test('KMS and DSSE-KMS add the key statement; AES256 or no key id do not', () => {
    for (const sse of ['aws:kms', 'aws:kms:dsse'] as const) {
      assert.equal(
        sessionPolicy({ bucket: 'b', objectName: 'o', direction: 'upload', region: 'us-east-1', sse, kmsKeyId: 'arn:aws:kms:us-east-1:1:key/x' }),
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject"],"Resource":"arn:aws:s3:::b/o"},' +
          '{"Effect":"Allow","Action":["kms:Decrypt","kms:GenerateDataKey"],"Resource":"arn:aws:kms:us-east-1:1:key/x"}]}',
      );
    }
    assert.equal(JSON.parse(sessionPolicy({ bucket: 'b', objectName: 'o', direction: 'upload', region: 'x', sse: 'AES256', kmsKeyId: 'k' })).Statement.length, 1);
    assert.equal(JSON.parse(sessionPolicy({ bucket: 'b', objectName: 'o', direction: 'upload', region: 'x', sse: 'aws:kms', kmsKeyId: '' })).Statement.length, 1);
  });
  test('the object name stays JSON-escaped (no injection of statements)', () => {
    const evil = 'k"}],"Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":"*';
    const json = sessionPolicy({ bucket: 'b', objectName: evil, direction: 'upload', region: 'us-east-1', sse: '', kmsKeyId: '' });
    const parsed = JSON.parse(json);
    assert.equal(parsed.Statement.length, 1);
    assert.equal(parsed.Statement[0].Resource, `arn:aws:s3:::b/${evil}`);
    assert.deepEqual(parsed.Statement[0].Action, ['s3:PutObject']);
  });
});

describe('role credential cache', () => {
  const req = (objectName: string, direction: 'upload' | 'download' = 'upload') => ({ roleArn: 'arn:aws:iam::1:role/r', bucket: 'b', objectName, direction, policy: '{}' });

  test('20 concurrent requests for one object → one AssumeRole; results counted', async () => {
    const sts = fakeSts();
    const results: string[] = [];
    const cache = new RoleCredentialCache({ call: sts.call, maxConcurrency: 5, disableCaching: false, onResult: (r) => results.push(r) });
    const all = await Promise.all(Array.from({ length: 20 }, () => cache.get(req('o'))));
    assert.equal(sts.inputs.length, 1);
    assert.ok(all.every((c) => c === all[0]));
    assert.equal(results.filter((r) => r === 'ok').length, 1);
    assert.equal(results.filter((r) => r === 'cached').length, 19);
    assert.match(sts.inputs[0].RoleSessionName, /^cachegate-[0-9a-f]{16}$/);
    assert.equal(sts.inputs[0].DurationSeconds, 3600);
  });

  test('keyed by object and direction', async () => {
    const sts = fakeSts();
    const cache = new RoleCredentialCache({ call: sts.call, maxConcurrency: 5, disableCaching: false });
    await cache.get(req('a'));
    await cache.get(req('a', 'download'));
    await cache.get(req('b'));
    await cache.get(req('a'));
    assert.equal(sts.inputs.length, 3);
  });

  test('reused until expiry minus the margin, then renewed', async () => {
    let now = 1_000_000;
    const sts = fakeSts({ now: () => now });
    const cache = new RoleCredentialCache({ call: sts.call, maxConcurrency: 5, disableCaching: false, now: () => now });
    const first = await cache.get(req('o'));
    now += 3600_000 - ROLE_CREDENTIALS_MARGIN_MS - 1000;
    assert.equal(await cache.get(req('o')), first);
    now += 2000;
    const second = await cache.get(req('o'));
    assert.notEqual(second, first);
    assert.equal(sts.inputs.length, 2);
  });

  test('at most maxConcurrency calls in flight; Infinity (negative setting) lets all through', async () => {
    const sts = fakeSts({ hold: true });
    const cache = new RoleCredentialCache({ call: sts.call, maxConcurrency: 2, disableCaching: false });
    const pending = Array.from({ length: 7 }, (_, i) => cache.get(req(`o${i}`)));
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(sts.inputs.length, 2);
    while (sts.inputs.length < 7 || sts.waiting.length > 0) {
      sts.release();
      await tick();
    }
    await Promise.all(pending);
    assert.equal(sts.maxActive, 2);

    const open = fakeSts({ hold: true });
    const unlimited = new RoleCredentialCache({ call: open.call, maxConcurrency: Infinity, disableCaching: false });
    const all = Array.from({ length: 12 }, (_, i) => unlimited.get(req(`o${i}`)));
    await tick();
    assert.equal(open.inputs.length, 12);
    open.release();
    await Promise.all(all);
  });

  test('failures are not cached and are counted', async () => {
    let fail = true;
    const sts = fakeSts({ fail: () => (fail ? new Error('AccessDenied') : undefined) });
    const results: string[] = [];
    const cache = new RoleCredentialCache({ call: sts.call, maxConcurrency: 5, disableCaching: false, onResult: (r) => results.push(r) });
    await assert.rejects(Promise.all([cache.get(req('o')), cache.get(req('o'))]), /AccessDenied/);
    assert.equal(sts.inputs.length, 1);
    fail = false;
    await cache.get(req('o'));
    assert.equal(sts.inputs.length, 2);
    assert.deepEqual(results, ['cached', 'error', 'ok']); // the second caller joined the first call
  });

  test('disabled caching: one call per request', async () => {
    const sts = fakeSts();
    const cache = new RoleCredentialCache({ call: sts.call, maxConcurrency: 5, disableCaching: true });
    await Promise.all([cache.get(req('o')), cache.get(req('o')), cache.get(req('o'))]);
    assert.equal(sts.inputs.length, 3);
    assert.equal(cache.size, 0);
  });

  test('semaphore limit ≤ 0 means unlimited', () => {
    assert.equal(new Semaphore(0).limit, Infinity);
    assert.equal(new Semaphore(-1).limit, Infinity);
    assert.equal(new Semaphore(3).limit, 3);
  });
});

describe('adapter.scopedCredentials', () => {
  const make = (extra: Partial<S3Settings>, call = fakeSts().call) => {
    const s = s3Settings({ bucketName: 'bkt', bucketLocation: 'us-west-1', authenticationType: 'access-key', accessKey: 'AK', secretKey: 'SUPERSECRET', ...extra });
    const { ctx, logs } = s3Context(s);
    return { a: createS3Adapter(ctx, { assumeRole: call }), logs };
  };

  test('goCloudUrl + env + expiry, with the vector query for the profile', async () => {
    const sts = fakeSts();
    const { a } = make({ roleArn: 'arn:aws:iam::1:role/r' }, sts.call);
    const c = await a.scopedCredentials('runner/x/project/1/key', 'upload');
    assert.ok(c);
    assert.equal(c.goCloudUrl, 's3://bkt/runner/x/project/1/key?awssdk=v2&dualstack=true&region=us-west-1');
    assert.deepEqual(c.env, { AWS_ACCESS_KEY_ID: 'ASIA1', AWS_SECRET_ACCESS_KEY: 'secret1', AWS_SESSION_TOKEN: 'token1', AWS_PROFILE: '' });
    assert.ok(c.expiresAt.getTime() > Date.now());
    assert.equal(sts.inputs[0].Policy, '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject"],"Resource":"arn:aws:s3:::bkt/runner/x/project/1/key"}]}');
  });

  test('onAssumeRole hook assigned after creation is used', async () => {
    const { a } = make({ roleArn: 'arn:aws:iam::1:role/r' });
    const seen: string[] = [];
    a.onAssumeRole = (r) => seen.push(r);
    await a.scopedCredentials('o', 'upload');
    await a.scopedCredentials('o', 'upload');
    assert.deepEqual(seen, ['ok', 'cached']);
  });

  test('refused (403) → 502 backend_error with the reason, the setting to check, and no secret', async () => {
    const sts = fakeSts({ fail: () => Object.assign(new Error('User: AK with SUPERSECRET is not authorized'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }) });
    const { a, logs } = make({ roleArn: 'arn:aws:iam::1:role/r' }, sts.call);
    await assert.rejects(a.scopedCredentials('o', 'upload'), (e: unknown) => {
      assert.ok(e instanceof CacheGateError);
      assert.equal(e.status, 502);
      assert.equal(e.code, 'backend_error');
      assert.match(e.message, /AccessDenied \(HTTP 403\).*check AccessKey\/SecretKey .* may assume RoleARN/);
      assert.doesNotMatch(e.message, /SUPERSECRET/);
      return true;
    });
    assert.ok(!JSON.stringify(logs).includes('SUPERSECRET'));
  });

  test('S3 Express bucket: no role credentials (warned once), presigned URLs instead', async () => {
    const sts = fakeSts();
    const { a, logs } = make({ roleArn: 'arn:aws:iam::1:role/r', bucketName: 'c--usw2-az1--x-s3', dualStack: false }, sts.call);
    assert.equal(await a.scopedCredentials('o', 'upload'), undefined);
    assert.equal(await a.scopedCredentials('o', 'download'), undefined);
    assert.equal(sts.inputs.length, 0);
    assert.equal(logs.filter((l) => l.level === 'warn' && /S3 Express/.test(l.msg)).length, 1);
  });
});
