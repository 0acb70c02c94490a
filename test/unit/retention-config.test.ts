/** [cachegate.retention], [cachegate.disk_cache] and admin_token: what `cachegate check` says about them. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigText } from '../../src/config/load.ts';

const LOCAL = '[[runners]]\nname = "r"\ntoken = "glrt-abcdefghijkl"\n[runners.cache]\nType = "local"\n';
const S3 = '[[runners]]\nname = "c"\ntoken = "glrt-cloudcloudcl"\n[runners.cache]\nType = "s3"\n[runners.cache.s3]\nBucketName = "b"\n';
const load = (text: string, env: Record<string, string> = {}) =>
  parseConfigText(text, '/etc/cachegate/config.toml', env, { dataDir: '/var/lib/cachegate' });
const messages = (c: ReturnType<typeof load>) => c.findings.map((f) => `${f.level} ${f.field}: ${f.message}`);

describe('retention configuration', () => {
  it('reads [cachegate.retention] and [cachegate.disk_cache]', () => {
    const c = load(`[cachegate.retention]\nmax_size = 50000000000\nmax_age = 1209600\n[cachegate.disk_cache]\ndir = "/var/cache/cachegate"\nmax_size = 20000000000\n${LOCAL}${S3}`);
    assert.deepEqual(c.service.retention, { maxSize: 50_000_000_000, maxAge: 1_209_600 });
    assert.deepEqual(c.service.diskCache, { dir: '/var/cache/cachegate', maxSize: 20_000_000_000 });
    assert.deepEqual(messages(c).filter((m) => m.startsWith('error')), []);
  });

  it('refuses sizes that are not positive integers and unknown keys', () => {
    const c = load(`[cachegate.retention]\nmax_size = 0\nmax_age = -1\n${LOCAL}`);
    assert.ok(messages(c).some((m) => /^error cachegate\.retention\.max_size/.test(m)), messages(c).join('\n'));
    assert.ok(messages(c).some((m) => /^error cachegate\.retention\.max_age/.test(m)));
    const typo = load(`[cachegate.retention]\nmax_size = 1000000000\nmaxage = 5\n${LOCAL}`);
    assert.ok(messages(typo).some((m) => /^error cachegate\.retention/.test(m) && /maxage/.test(m)), messages(typo).join('\n'));
  });

  it('warns when a section has no effect or a size cannot hold', () => {
    const c = load(`[cachegate.retention]\nmax_size = 1000\n[cachegate.disk_cache]\ndir = "/var/cache/cg"\nmax_size = 9000000000000000\n${S3}`);
    const m = messages(c);
    assert.ok(m.includes('warning cachegate.retention: no profile uses the embedded local backend: retention has no effect (cloud buckets: see `cachegate lifecycle`)'), m.join('\n'));
    assert.ok(m.some((x) => /^warning cachegate\.retention\.max_size: 1000 bytes is less than 1 MiB/.test(x)));
    assert.ok(m.some((x) => /^warning cachegate\.disk_cache\.max_size: .* more than the whole filesystem/.test(x)), m.join('\n'));
    const noCloud = messages(load(`[cachegate.disk_cache]\ndir = "/var/cache/cg"\nmax_size = 100000000\n${LOCAL}`));
    assert.ok(noCloud.includes('warning cachegate.disk_cache: no profile uses a cloud backend: the disk tier has no effect'));
  });

  it('the tier directory must be a directory of its own', () => {
    for (const dir of ['/', '/var/lib/cachegate', '/var/lib/cachegate/tier', '/var/lib', '/etc']) {
      const c = load(`[cachegate.disk_cache]\ndir = "${dir}"\nmax_size = 100000000\n${S3}`);
      assert.ok(messages(c).some((m) => m.startsWith('error cachegate.disk_cache.dir: must not')), `${dir}: ${messages(c).join('\n')}`);
    }
  });

  it('admin token from the file or the environment', () => {
    assert.equal(load(`[cachegate]\nadmin_token = "0123456789abcdefXYZ"\n${LOCAL}`).service.adminToken, '0123456789abcdefXYZ');
    assert.equal(load(`[cachegate]\nadmin_token_env = "ADM"\n${LOCAL}`, { ADM: 'from-the-environment-123' }).service.adminToken, 'from-the-environment-123');
    const unset = load(`[cachegate]\nadmin_token_env = "ADM"\n${LOCAL}`);
    assert.ok(messages(unset).includes('error cachegate.admin_token_env: environment variable ADM is not set'));
    assert.ok(messages(load(`[cachegate]\nadmin_token = "short"\n${LOCAL}`)).includes('warning cachegate.admin_token: shorter than 16 characters: easy to guess'));
  });
});
