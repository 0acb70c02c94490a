/**
 * The S3 front door with the S3 clients users have, as separate programs: the AWS CLI v2 (Debian's,
 * /usr/bin/aws: a pyenv `aws` on PATH is v1), boto3 (Debian's, with /usr/bin/python3), and minio-go v7
 * (GitLab Runner's legacy S3 adapter library; built offline in GOPATH mode). All installed by
 * scripts/install-deps.sh. Backend: the embedded local backend.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { download, upload } from '../../src/transfer/index.ts';
import { run } from '../support/run.ts';
import { presign, startTestService, type TestService } from '../support/service.ts';

const AK = 'CLIENTSKEY000001';
const SK = 'clients-secret-000001';
const TOKEN = 'glrt-clientsrun-1';
const NS = 'runner/clientsru/project/5';
const MINIO_SRC = resolve(import.meta.dirname, '../fixtures/minio-go');

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('S3 front door with real clients (AWS CLI v2, boto3, minio-go)', () => {
  let svc: TestService;
  let s3: string;
  let dir: string;
  let minio: string;
  let awsEnv: Record<string, string>;

  before(async () => {
    svc = await startTestService({
      toml: `
[[runners]]
  name = "clients"
  token = "${TOKEN}"
  [runners.cache]
    Type = "local"
[cachegate.s3_api]
  listen = "127.0.0.1:0"
  [[cachegate.s3_api.keys]]
    access_key = "${AK}"
    secret_key = "${SK}"
    runner = "clients"
`,
    });
    s3 = svc.s3ApiUrl as string;
    dir = await mkdtemp(join(tmpdir(), 'cg-s3clients-'));
    minio = join(dir, 'minio-prog');
    const built = await run('go', ['build', '-o', minio, '.'], { GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOFLAGS: '', GOCACHE: join(tmpdir(), 'cg-go-cache') }, MINIO_SRC);
    assert.equal(built.code, 0, built.err);
    awsEnv = { AWS_ACCESS_KEY_ID: AK, AWS_SECRET_ACCESS_KEY: SK, AWS_DEFAULT_REGION: 'us-east-1', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };
  });
  after(async () => {
    await svc?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('AWS CLI v2: s3 cp of 21 MB (multipart), s3 ls, s3api head-object, s3 cp back, s3 rm; refused outside the namespace', async () => {
    const version = await run('/usr/bin/aws', ['--version']);
    assert.match(version.out + version.err, /aws-cli\/2\./);
    const data = randomBytes(21 * 1024 * 1024);
    await writeFile(join(dir, 'big.bin'), data);
    const aws = (...a: string[]) => run('/usr/bin/aws', ['--endpoint-url', s3, ...a], awsEnv);
    let r = await aws('s3', 'cp', join(dir, 'big.bin'), `s3://runner-cache/${NS}/cli/big.bin`);
    assert.equal(r.code, 0, r.err);
    r = await aws('s3api', 'head-object', '--bucket', 'runner-cache', '--key', `${NS}/cli/big.bin`);
    assert.equal(r.code, 0, r.err);
    assert.equal(JSON.parse(r.out).ContentLength, data.length);
    r = await aws('s3', 'ls', `s3://runner-cache/${NS}/cli/`);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`${data.length} big\\.bin`));
    r = await aws('s3', 'cp', `s3://runner-cache/${NS}/cli/big.bin`, join(dir, 'back.bin'));
    assert.equal(r.code, 0, r.err);
    assert.equal(sha(await readFile(join(dir, 'back.bin'))), sha(data));
    r = await aws('s3', 'cp', join(dir, 'big.bin'), 's3://runner-cache/runner/someoneel/project/5/x');
    assert.notEqual(r.code, 0);
    assert.match(r.err, /AccessDenied/);
    r = await aws('s3', 'rm', `s3://runner-cache/${NS}/cli/big.bin`);
    assert.equal(r.code, 0, r.err);
    r = await aws('s3api', 'head-object', '--bucket', 'runner-cache', '--key', `${NS}/cli/big.bin`);
    assert.notEqual(r.code, 0);
  });

  it('boto3: put_object, get_object with metadata, list_objects_v2, presigned PUT/GET, a wrong secret refused', async () => {
    const script = `
import boto3, sys, urllib.request, urllib.error
from botocore.config import Config
s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3], region_name='us-east-1', config=Config(s3={'addressing_style': 'path'}, retries={'max_attempts': 1}))
ns = sys.argv[4]
body = b'boto3 body ' * 10000
s3.put_object(Bucket='runner-cache', Key=ns + '/boto/a', Body=body, Metadata={'cachekey': 'boto key'})
got = s3.get_object(Bucket='runner-cache', Key=ns + '/boto/a')
assert got['Body'].read() == body
assert got['Metadata']['cachekey'] == 'boto key', got['Metadata']
keys = [o['Key'] for o in s3.list_objects_v2(Bucket='runner-cache', Prefix=ns + '/boto/')['Contents']]
assert keys == [ns + '/boto/a'], keys
try:
    urllib.request.urlopen(s3.generate_presigned_url('get_object', Params={'Bucket': 'runner-cache', 'Key': ns + '/boto/a'}, ExpiresIn=600))
    raise SystemExit('a Signature Version 2 presigned URL was accepted')
except urllib.error.HTTPError as e:
    assert e.code in (400, 403), e.code
# botocore presigns with Signature Version 2 in us-east-1 unless told otherwise: SigV4 is what the front door verifies
s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3], region_name='us-east-1', config=Config(signature_version='s3v4', s3={'addressing_style': 'path'}, retries={'max_attempts': 1}))
put = s3.generate_presigned_url('put_object', Params={'Bucket': 'runner-cache', 'Key': ns + '/boto/p'}, ExpiresIn=600)
urllib.request.urlopen(urllib.request.Request(put, data=b'presigned', method='PUT')).read()
get = s3.generate_presigned_url('get_object', Params={'Bucket': 'runner-cache', 'Key': ns + '/boto/p'}, ExpiresIn=600)
assert urllib.request.urlopen(get).read() == b'presigned'
bad = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2], aws_secret_access_key='wrong', region_name='us-east-1', config=Config(s3={'addressing_style': 'path'}, retries={'max_attempts': 1}))
try:
    bad.get_object(Bucket='runner-cache', Key=ns + '/boto/a')
    raise SystemExit('a wrong secret was accepted')
except bad.exceptions.ClientError as e:
    assert e.response['Error']['Code'] == 'SignatureDoesNotMatch', e.response
print('ok')
`;
    await writeFile(join(dir, 'boto.py'), script);
    const r = await run('/usr/bin/python3', [join(dir, 'boto.py'), s3, AK, SK, NS]);
    assert.equal(r.code, 0, r.err + r.out);
    assert.match(r.out, /ok/);
  });

  it('minio-go v7: presigned PUT/GET as the legacy runner adapter signs them, then the cachegate helper on them; signed-chunk PutObject, streamed multipart, stat, list, remove', async () => {
    const host = s3.replace(/^http:\/\//, '');
    const mc = (...a: string[]) => run(minio, [host, AK, SK, ...a]);
    const data = randomBytes(2 * 1024 * 1024 + 5);
    await writeFile(join(dir, 'mc.bin'), data);
    let r = await mc('presign-put', 'runner-cache', `${NS}/mc/presigned`);
    assert.equal(r.code, 0, r.err);
    const putUrl = r.out.trim();
    assert.match(putUrl, /X-Amz-SignedHeaders=host/);
    assert.equal((await upload({ file: join(dir, 'mc.bin'), url: putUrl })).status, 'uploaded');
    r = await mc('presign-get', 'runner-cache', `${NS}/mc/presigned`);
    const out = join(dir, 'mc-out', 'cache.zip');
    assert.equal((await download({ file: out, url: r.out.trim() })).status, 'downloaded');
    assert.equal(sha(await readFile(out)), sha(data));
    // the same object through /v1/presign
    const d = await presign(svc, { operation: 'download', key: 'mc/presigned', projectId: '5' }, TOKEN);
    assert.equal(d.json.objectName, `${NS}/mc/presigned`);
    // header-signed: over http minio-go sends STREAMING-AWS4-HMAC-SHA256-PAYLOAD (signed chunks)
    r = await mc('put', 'runner-cache', `${NS}/mc/put`, join(dir, 'mc.bin'));
    assert.equal(r.code, 0, r.err);
    r = await mc('stat', 'runner-cache', `${NS}/mc/put`);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`^${data.length} ${NS}/mc/put `));
    const big = randomBytes(12 * 1024 * 1024);
    await writeFile(join(dir, 'mc-big.bin'), big);
    r = await mc('put-stream', 'runner-cache', `${NS}/mc/stream`, join(dir, 'mc-big.bin'));
    assert.equal(r.code, 0, r.err);
    r = await mc('get', 'runner-cache', `${NS}/mc/stream`, join(dir, 'mc-big-back.bin'));
    assert.equal(r.code, 0, r.err);
    assert.equal(sha(await readFile(join(dir, 'mc-big-back.bin'))), sha(big));
    r = await mc('list', 'runner-cache', `${NS}/mc/`);
    assert.deepEqual(r.out.trim().split('\n').map((l) => l.split(' ')[0]), [`${NS}/mc/presigned`, `${NS}/mc/put`, `${NS}/mc/stream`]);
    r = await mc('remove', 'runner-cache', `${NS}/mc/put`);
    assert.equal(r.code, 0, r.err);
    r = await run(minio, [host, AK, 'wrong-secret', 'put', 'runner-cache', `${NS}/mc/x`, join(dir, 'mc.bin')]);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /SignatureDoesNotMatch/);
    const m = await (await fetch(`${svc.url}/metrics`)).text();
    assert.match(m, /cachegate_s3api_requests_total\{operation="CompleteMultipartUpload",outcome="ok"\} [1-9]/);
  });
});
