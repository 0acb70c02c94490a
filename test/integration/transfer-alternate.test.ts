/**
 * `cache-extractor --alternate-url` (and `--alternate-gocloud-url`) downloads the newer of the two
 * objects, GitLab Runner's rule (MR !6574): real `cachegate cache-extractor` processes against the
 * local service and Ceph RGW (presigned URLs from /v1/presign, and gocloud URLs with the RGW user's
 * keys in an env file), with two objects of different ages, one missing, both missing.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createArchiveFile, selectFiles } from '../../src/archive/index.ts';
import { formatEnvFile, upload } from '../../src/transfer/index.ts';
import { cachegate } from '../support/cli.ts';
import { rgw, type Rgw } from '../support/rgw.ts';
import { presign, startTestService, type TestService } from '../support/service.ts';

const LOCAL = 'glrt-alternate-local-1';
const S3 = 'glrt-alternate-s3-0001';

/** A zip holding `marker.txt` with `content`. */
async function archiveOf(dir: string, content: string): Promise<Buffer> {
  const tree = join(dir, `tree-${content}`);
  await mkdir(tree, { recursive: true });
  await writeFile(join(tree, 'marker.txt'), content);
  const file = join(dir, `${content}.zip`);
  await createArchiveFile((await selectFiles({ cwd: tree, paths: ['marker.txt'] })).entries, file, 'zip', 'fast');
  return readFile(file);
}

interface Urls {
  url: string;
  headUrl: string;
}

describe('cache-extractor --alternate-url: the newer object', () => {
  let dir: string;
  let svc: TestService;
  let server: Rgw;
  let bucket: string;
  let n = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cg-alternate-'));
    server = await rgw();
    bucket = await server.bucket('alternate');
    svc = await startTestService({
      toml: `
[[runners]]
  name = "local"
  token = "${LOCAL}"
  [runners.cache]
    Type = "local"
[[runners]]
  name = "s3"
  token = "${S3}"
  [runners.cache]
    Type = "s3"
${server.toml(bucket)}`,
    });
  });
  after(async () => {
    await svc?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const urls = async (token: string, key: string): Promise<Urls> => {
    const d = await presign(svc, { operation: 'download', key, projectId: '9' }, token);
    const h = await presign(svc, { operation: 'head', key, projectId: '9' }, token);
    assert.equal(d.status, 200, JSON.stringify(d.json));
    assert.equal(h.status, 200, JSON.stringify(h.json));
    return { url: d.json.url, headUrl: h.json.url };
  };

  /** Runs cache-extractor in a fresh directory; returns its exit code, output and marker.txt (or null). */
  const extract = async (args: string[], env?: Record<string, string>): Promise<{ status: number | null; out: string; marker: string | null }> => {
    const cwd = join(dir, `run-${n++}`);
    await mkdir(cwd);
    if (env) await writeFile(join(cwd, 'cache.env'), formatEnvFile(env));
    const r = await cachegate(['cache-extractor', '--file', 'cache/cache.zip', ...args, ...(env ? ['--env-file', 'cache.env'] : [])], cwd);
    const marker = await readFile(join(cwd, 'marker.txt'), 'utf8').catch(() => null);
    return { ...r, marker };
  };

  const presigned = (p: Urls, a: Urls): string[] => ['--url', p.url, '--head-url', p.headUrl, '--alternate-url', a.url, '--alternate-head-url', a.headUrl];

  for (const [backend, token] of [['local service', LOCAL], ['S3 on RGW', S3]] as const) {
    describe(backend, () => {
      let older: Urls;
      let newer: Urls;
      let missing: Urls;

      before(async () => {
        const put = async (key: string, content: string): Promise<void> => {
          const file = join(dir, `${backend}-${key}.zip`);
          await writeFile(file, await archiveOf(dir, content));
          const up = await presign(svc, { operation: 'upload', key, projectId: '9' }, token);
          assert.equal(up.status, 200, JSON.stringify(up.json));
          assert.equal((await upload({ file, url: up.json.url, headers: up.json.headers })).status, 'uploaded');
        };
        await put('older', 'older');
        await sleep(1100); // Last-Modified has whole seconds
        await put('newer', 'newer');
        [older, newer, missing] = await Promise.all([urls(token, 'older'), urls(token, 'newer'), urls(token, 'never-uploaded')]);
      });

      const cases: Array<[string, () => [Urls, Urls], RegExp, string | null]> = [
        ['the alternate is newer → the alternate', () => [older, newer], /Selecting alternate cache URL: newer timestamp/, 'newer'],
        ['the primary is newer → the primary', () => [newer, older], /Selecting primary cache URL/, 'newer'],
        ['the primary is missing → the alternate', () => [missing, older], /Selecting alternate cache URL: primary not available/, 'older'],
        ['the alternate is missing → the primary', () => [older, missing], /Selecting primary cache URL/, 'older'],
        ['both are missing → exit 1, cache not found', () => [missing, missing], /cache not found/, null],
      ];
      for (const [title, pair, reason, marker] of cases) {
        it(title, async () => {
          const r = await extract(presigned(...pair()));
          assert.equal(r.status, marker === null ? 1 : 0, r.out);
          assert.equal(r.marker, marker);
          assert.match(r.out, reason);
        });
      }
    });
  }

  describe('gocloud URLs on RGW (role-less keys in the env file)', () => {
    const gocloud = (key: string): string => `s3://${bucket}/${key}?endpoint=${encodeURIComponent(server.endpoint)}&use_path_style=true&region=${server.region}`;
    const env = (): Record<string, string> => ({ AWS_ACCESS_KEY_ID: server.accessKey, AWS_SECRET_ACCESS_KEY: server.secretKey });

    before(async () => {
      await server.client.send(new PutObjectCommand({ Bucket: bucket, Key: 'gc/older', Body: await archiveOf(dir, 'gc-older') }));
      await sleep(1100);
      await server.client.send(new PutObjectCommand({ Bucket: bucket, Key: 'gc/newer', Body: await archiveOf(dir, 'gc-newer') }));
    });

    const cases: Array<[string, string, string, RegExp, string | null]> = [
      ['the alternate is newer → the alternate', 'gc/older', 'gc/newer', /Selecting alternate GoCloud cache: newer timestamp/, 'gc-newer'],
      ['the primary is newer → the primary', 'gc/newer', 'gc/older', /Selecting primary GoCloud cache/, 'gc-newer'],
      ['the primary is missing → the alternate', 'gc/none', 'gc/older', /Selecting alternate GoCloud cache: primary not available/, 'gc-older'],
      ['the alternate is missing → the primary', 'gc/older', 'gc/none', /Selecting primary GoCloud cache/, 'gc-older'],
      ['both are missing → exit 1', 'gc/none', 'gc/none2', /Selecting primary GoCloud cache/, null],
    ];
    for (const [title, p, a, reason, marker] of cases) {
      it(title, async () => {
        const r = await extract(['--gocloud-url', gocloud(p), '--alternate-gocloud-url', gocloud(a)], env());
        assert.equal(r.status, marker === null ? 1 : 0, r.out);
        assert.equal(r.marker, marker);
        assert.match(r.out, reason);
      });
    }
  });
});
