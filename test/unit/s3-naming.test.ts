/** vectors/naming.json: goCloudUrl and s3Endpoint cases for the S3 adapter, plus AWS host rules. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { autoPathStyle, customEndpoint, effectivePathStyle, encodeObjectPath, resolveTarget, s3ExpressZone } from '../../adapters/s3/endpoint.ts';
import { goCloudUrl } from '../../adapters/s3/gocloud.ts';
import { normalizeLocation, regionOfExpressBucket } from '../../adapters/s3/region.ts';
import type { S3Settings, ServerSideEncryption } from '../../src/config/types.ts';
import { s3Settings } from '../support/rgw.ts';

interface GoCloudCase {
  bucket: string; serverAddress?: string; location: string; pathStyle?: boolean; insecure?: boolean;
  dualStack?: boolean; accelerate?: boolean; sse?: string; kmsKeyId?: string; url: string;
}
interface EndpointCase { serverAddress: string; insecure?: boolean; pathStyleSetting?: boolean; endpoint: string; pathStyle: boolean }

const vectors = JSON.parse(readFileSync(new URL('../vectors/naming.json', import.meta.url), 'utf8')) as {
  goCloudUrl: { cases: GoCloudCase[] };
  s3Endpoint: { cases: EndpointCase[] };
};

/** The config loader's SSE normalization (src/config), repeated for the vectors' raw values. */
function sse(v: string | undefined): ServerSideEncryption | '' {
  switch ((v ?? '').toUpperCase()) {
    case 'S3': case 'AES256': return 'AES256';
    case 'KMS': case 'AWS:KMS': return 'aws:kms';
    case 'DSSE-KMS': case 'AWS:KMS:DSSE': return 'aws:kms:dsse';
    default: return '';
  }
}

describe('goCloudUrl vectors', () => {
  for (const c of vectors.goCloudUrl.cases) {
    test(c.bucket, () => {
      const s = s3Settings({
        bucketName: c.bucket, serverAddress: c.serverAddress ?? '', bucketLocation: c.location, pathStyle: c.pathStyle,
        insecure: c.insecure ?? false, dualStack: c.dualStack ?? true, accelerate: c.accelerate ?? false,
        serverSideEncryption: sse(c.sse), serverSideEncryptionKeyId: c.kmsKeyId ?? '',
      });
      assert.equal(goCloudUrl(s, 'key', c.location), c.url);
    });
  }
  test('object names are URL-encoded per segment and decode back', () => {
    const s = s3Settings({ bucketName: 'b', bucketLocation: 'us-east-1' });
    const name = 'runner/x/project/1/a b?c#d%e';
    const u = new URL(goCloudUrl(s, name, 'us-east-1'));
    assert.equal(decodeURIComponent(u.pathname.slice(1)), name);
    assert.equal(u.search, '?awssdk=v2&dualstack=true&region=us-east-1');
  });
  test('AES256 carries no kmskeyid; DSSE-KMS does', () => {
    assert.equal(
      goCloudUrl(s3Settings({ bucketName: 'b', serverSideEncryption: 'AES256', serverSideEncryptionKeyId: 'k' }), 'o', 'eu-west-1'),
      's3://b/o?awssdk=v2&dualstack=true&region=eu-west-1&ssetype=AES256',
    );
    assert.equal(
      goCloudUrl(s3Settings({ bucketName: 'b', serverSideEncryption: 'aws:kms:dsse', serverSideEncryptionKeyId: 'k' }), 'o', 'eu-west-1'),
      's3://b/o?awssdk=v2&dualstack=true&kmskeyid=k&region=eu-west-1&ssetype=aws%3Akms%3Adsse',
    );
  });
});

describe('s3Endpoint vectors', () => {
  for (const c of vectors.s3Endpoint.cases) {
    test(`${c.serverAddress}${c.insecure ? ' insecure' : ''}${c.pathStyleSetting === undefined ? '' : ` PathStyle=${c.pathStyleSetting}`}`, () => {
      const s = s3Settings({ serverAddress: c.serverAddress, insecure: c.insecure ?? false, pathStyle: c.pathStyleSetting, bucketName: 'bucket' });
      assert.equal(customEndpoint(s)?.url, c.endpoint);
      assert.equal(effectivePathStyle(s), c.pathStyle);
    });
  }
});

describe('endpoint rules', () => {
  test('no ServerAddress or s3.amazonaws.com: AWS endpoint', () => {
    assert.equal(customEndpoint(s3Settings({ serverAddress: '' })), undefined);
    assert.equal(customEndpoint(s3Settings({ serverAddress: 's3.amazonaws.com' })), undefined);
    assert.equal(customEndpoint(s3Settings({ serverAddress: 'S3.AmazonAWS.com' })), undefined);
  });
  test('malformed ServerAddress is refused', () => {
    assert.throws(() => customEndpoint(s3Settings({ serverAddress: 'https://minio:9000' })), /host\[:port\]/);
    assert.throws(() => customEndpoint(s3Settings({ serverAddress: 'minio:9000/path' })), /host\[:port\]/);
  });
  test('IPv6 literal and explicit non-default ports are kept', () => {
    assert.equal(customEndpoint(s3Settings({ serverAddress: '[::1]:9000', insecure: true }))?.url, 'http://[::1]:9000');
    assert.equal(customEndpoint(s3Settings({ serverAddress: 'host:80' }))?.url, 'https://host:80');
  });
  test('path style auto: non-AWS hosts path style; AWS/Google/Aliyun virtual; https + dotted bucket path style', () => {
    assert.equal(autoPathStyle('minio.local', true, 'bucket'), true);
    assert.equal(autoPathStyle('localhost', false, 'bucket'), true);
    assert.equal(autoPathStyle('s3.eu-west-1.amazonaws.com', true, 'bucket'), false);
    assert.equal(autoPathStyle('oss-cn-hangzhou.aliyuncs.com', true, 'bucket'), false);
    assert.equal(autoPathStyle('s3.eu-west-1.amazonaws.com', true, 'my.bucket'), true);
    assert.equal(autoPathStyle('s3.eu-west-1.amazonaws.com', false, 'my.bucket'), false);
    assert.equal(effectivePathStyle(s3Settings({ bucketName: 'my.dotted.bucket' })), true);
    assert.equal(effectivePathStyle(s3Settings({ bucketName: 'plain' })), false);
  });

  const host = (extra: Partial<S3Settings>, region = 'eu-west-1'): string => {
    const t = resolveTarget(s3Settings(extra), region);
    return `${t.protocol}//${t.host}${t.pathPrefix}`;
  };
  test('AWS hostnames: DualStack (default), plain, Accelerate, path style, China', () => {
    assert.equal(host({ bucketName: 'b' }), 'https://b.s3.dualstack.eu-west-1.amazonaws.com/');
    assert.equal(host({ bucketName: 'b', dualStack: false }), 'https://b.s3.eu-west-1.amazonaws.com/');
    assert.equal(host({ bucketName: 'b', accelerate: true }), 'https://b.s3-accelerate.dualstack.amazonaws.com/');
    assert.equal(host({ bucketName: 'b', accelerate: true, dualStack: false }), 'https://b.s3-accelerate.amazonaws.com/');
    assert.equal(host({ bucketName: 'b', pathStyle: true, dualStack: false }), 'https://s3.eu-west-1.amazonaws.com/b/');
    assert.equal(host({ bucketName: 'my.b', dualStack: false }), 'https://s3.eu-west-1.amazonaws.com/my.b/');
    assert.equal(host({ bucketName: 'b', dualStack: false }, 'cn-north-1'), 'https://b.s3.cn-north-1.amazonaws.com.cn/');
  });
  test('Accelerate with path style is dropped with a warning', () => {
    const warnings: string[] = [];
    const t = resolveTarget(s3Settings({ bucketName: 'my.b', accelerate: true }), 'us-east-1', { warn: (m) => warnings.push(m) });
    assert.equal(t.accelerate, false);
    assert.equal(t.host, 's3.dualstack.us-east-1.amazonaws.com');
    assert.equal(warnings.length, 1);
  });
  test('custom endpoints: DualStack/Accelerate do not apply; virtual host when PathStyle=false', () => {
    assert.equal(host({ bucketName: 'b', serverAddress: 'minio:9000', insecure: true, accelerate: true }), 'http://minio:9000/b/');
    assert.equal(host({ bucketName: 'b', serverAddress: 'minio.example.com:443', pathStyle: false }), 'https://b.minio.example.com/');
    assert.equal(host({ bucketName: 'b', serverAddress: 's3.us-east-2.amazonaws.com' }), 'https://b.s3.us-east-2.amazonaws.com/');
  });
  test('S3 Express One Zone: zonal virtual host, signing name s3express, no DualStack', () => {
    const bucket = 'cache--usw2-az1--x-s3';
    assert.equal(s3ExpressZone(bucket), 'usw2-az1');
    assert.equal(s3ExpressZone('cache--x-s3'), undefined);
    assert.equal(s3ExpressZone('plain'), undefined);
    assert.equal(regionOfExpressBucket(bucket), 'us-west-2');
    const warnings: string[] = [];
    const t = resolveTarget(s3Settings({ bucketName: bucket, pathStyle: true }), 'us-west-2', { warn: (m) => warnings.push(m) });
    assert.equal(t.host, 'cache--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com');
    assert.equal(t.signingName, 's3express');
    assert.equal(t.pathPrefix, '/');
    assert.equal(t.dualStack, false);
    assert.match(warnings[0], /DualStack/);
  });
  test('GetBucketLocation answers: empty → us-east-1, EU → eu-west-1', () => {
    assert.equal(normalizeLocation(''), 'us-east-1');
    assert.equal(normalizeLocation(undefined), 'us-east-1');
    assert.equal(normalizeLocation('EU'), 'eu-west-1');
    assert.equal(normalizeLocation('ap-south-1'), 'ap-south-1');
  });
  test('object paths: S3 URI encoding, slashes kept', () => {
    assert.equal(encodeObjectPath("a b/c+d/é/x!'()*~._-"), "a%20b/c%2Bd/%C3%A9/x%21%27%28%29%2A~._-");
  });
});
