import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hasErrors, loadConfig, parseConfigText } from '../../src/config/load.ts';
import { parseListen } from '../../src/config/listen.ts';
import type { Config } from '../../src/config/types.ts';

const parse = (toml: string, env: Record<string, string> = {}): Config => parseConfigText(toml, 'test.toml', env);
const errors = (c: Config): string[] => c.findings.filter((f) => f.level === 'error').map((f) => `${f.field}: ${f.message}`);
const warnings = (c: Config): string[] => c.findings.filter((f) => f.level === 'warning').map((f) => `${f.field}: ${f.message}`);

const RUNNER_TOML = `
concurrent = 4
log_level = "warning"
log_format = "json"
listen_address = "127.0.0.1:9252"

[[runners]]
  name = "docker-1"
  url = "https://gitlab.example.com"
  token = "glrt-t1_AbCdEfGhIjKlMnOp"
  executor = "docker"
  [runners.cache]
    Type = "s3"
    Path = "ci"
    Shared = true
    MaxUploadedArchiveSize = 1000000
    [runners.cache.s3]
      ServerAddress = "minio.example.com:9000"
      AccessKey = "AK"
      SecretKey = "SK"
      BucketName = "runner-cache"
      Insecure = true
      ServerSideEncryption = "kms"
      ServerSideEncryptionKeyID = "alias/cache"
  [runners.docker]
    image = "alpine"

[[runners]]
  name = "no-cache"
  token = "glrt-other"
  executor = "shell"
`;

describe('config.toml as GitLab Runner writes it', () => {
  it('turns every runner with [runners.cache] into a profile', () => {
    const c = parse(RUNNER_TOML.replace('log_level = "warning"', 'log_level = "warn"'));
    assert.deepEqual(errors(c), []);
    assert.equal(c.profiles.length, 1);
    const p = c.profiles[0];
    assert.equal(p.name, 'docker-1');
    assert.equal(p.shortToken, 'AbCdEfGhI');
    assert.equal(p.cache.type, 's3');
    assert.equal(p.cache.path, 'ci');
    assert.equal(p.cache.shared, true);
    assert.equal(p.cache.maxUploadedArchiveSize, 1000000);
    assert.equal(p.cache.s3?.authenticationType, 'access-key');
    assert.equal(p.cache.s3?.serverSideEncryption, 'aws:kms');
    assert.equal(p.cache.s3?.serverSideEncryptionKeyId, 'alias/cache');
    assert.equal(p.cache.s3?.dualStack, true);
    assert.equal(p.cache.s3?.pathStyle, undefined);
    assert.equal(p.cache.s3?.assumeRoleMaxConcurrency, 5);
    assert.equal(c.service.listen, '127.0.0.1:9170', "the global listen_address is the runner's metrics listener: never bound");
    assert.equal(c.service.logFormat, 'json');
  });

  it('refuses an unknown log level, naming the field', () => {
    assert.deepEqual(errors(parse(RUNNER_TOML)), ['log_level: "warning" is not one of trace, debug, info, warn, error, fatal, panic']);
  });

  it('reports invalid TOML with the line', () => {
    const c = parse('[[runners]]\nname = \n');
    assert.equal(hasErrors(c), true);
    assert.match(errors(c)[0], /^config: not valid TOML \(line 2/);
  });

  it('reports wrong types with the field path', () => {
    const c = parse('[[runners]]\n[runners.cache]\nShared = "yes"\n');
    assert.match(errors(c)[0], /^runners\[0\]\.cache\.Shared: /);
  });

  it('errors: no bucket, unknown Type, invalid AuthenticationType', () => {
    const c = parse(`
[[runners]]
token = "a"
[runners.cache]
Type = "s3"
[runners.cache.s3]
AuthenticationType = "password"
[[runners]]
token = "b"
[runners.cache]
Type = "ftp"
[[runners]]
token = "c"
[runners.cache]
Type = "gcs"
[[runners]]
token = "d"
[runners.cache]
Type = "azure"
[runners.cache.azure]
AccountName = "acc"
`);
    assert.deepEqual(errors(c), [
      'runners[0].cache.s3.AuthenticationType: invalid value "password" (use iam or access-key)',
      'runners[0].cache.s3.BucketName: required',
      'runners[1].cache.Type: unknown cache type "ftp": one of s3, s3v2, gcs, gcsv2, azure, local (lower case)',
      'runners[2].cache.gcs.BucketName: required',
      'runners[3].cache.azure.ContainerName: required',
    ]);
  });

  it('warnings: unknown SSE, KMS without key id, UploadRoleARN, RoleARN with S3 Express, unknown field', () => {
    const c = parse(`
[[runners]]
token = "a"
[runners.cache]
Type = "s3"
[runners.cache.s3]
BucketName = "b"
ServerSideEncryption = "rot13"
Typo = 1
[[runners]]
token = "b"
[runners.cache]
Type = "s3"
[runners.cache.s3]
BucketName = "b2"
ServerSideEncryption = "DSSE-KMS"
UploadRoleARN = "arn:aws:iam::1:role/x"
[[runners]]
token = "c"
[runners.cache]
Type = "s3"
[runners.cache.s3]
BucketName = "fast--usw2-az1--x-s3"
RoleARN = "arn:aws:iam::1:role/x"
`);
    assert.deepEqual(errors(c), []);
    const w = warnings(c).join('\n');
    assert.match(w, /runners\[0\]\.cache\.s3\.ServerSideEncryption: unknown value "rot13"/);
    assert.match(w, /runners\[0\]\.cache\.s3\.Typo: unknown field Typo, ignored/);
    assert.match(w, /runners\[1\]\.cache\.s3\.ServerSideEncryptionKeyID: DSSE-KMS without a key id/);
    assert.match(w, /runners\[1\]\.cache\.s3\.UploadRoleARN: deprecated/);
    assert.match(w, /runners\[2\]\.cache\.s3\.RoleARN: S3 Express/);
    assert.equal(c.profiles[1].cache.s3?.serverSideEncryption, 'aws:kms:dsse');
    assert.equal(c.profiles[2].cache.s3?.dualStack, false);
  });

  it('refuses SSE-C', () => {
    const c = parse('[[runners]]\ntoken="a"\n[runners.cache]\nType="s3"\n[runners.cache.s3]\nBucketName="b"\nServerSideEncryption="SSE-C"\n');
    assert.match(errors(c)[0], /SSE-C .* not supported/);
  });

  it('derives AuthenticationType = iam without a full key pair, and AssumeRoleMaxConcurrency < 0 = unlimited', () => {
    const c = parse('[[runners]]\ntoken="a"\n[runners.cache]\nType="s3v2"\n[runners.cache.s3]\nBucketName="b"\nAccessKey="x"\nAssumeRoleMaxConcurrency=-1\n');
    assert.equal(c.profiles[0].cache.s3?.authenticationType, 'iam');
    assert.equal(c.profiles[0].cache.s3?.assumeRoleMaxConcurrency, Infinity);
  });

  it('warns when runners share a bucket and Path without Shared', () => {
    const r = (t: string): string => `[[runners]]\nname="${t}"\ntoken="${t}"\n[runners.cache]\nType="gcs"\n[runners.cache.gcs]\nBucketName="same"\nAccessID="a@b"\nPrivateKey="k"\n`;
    const c = parse(r('one') + r('two'));
    assert.match(warnings(c).join('\n'), /runners "one", "two" use the same storage and Path with Shared = false/);
  });

  it('warns when two runners\' tokens have the same short form on the same storage and Path: they would share one namespace (not naming it)', () => {
    const r = (name: string, token: string, extra = ''): string => `[[runners]]\nname="${name}"\ntoken="${token}"\n[runners.cache]\nType="local"\n${extra}`;
    const c = parse(r('a', 'glrt-abcdefghi-111') + r('b', 'glrt-t2_abcdefghi-222') + r('c', 'glrt-abcdefghi-333', 'Path="other"\n') + r('d', 'glrt-zzzzzzzzz-444'));
    const w = warnings(c).filter((m) => /short form/.test(m));
    assert.equal(w.length, 1, w.join('\n'));
    assert.match(w[0], /runners "a" \(runners\[0\]\), "b" \(runners\[1\]\) .* share one namespace/);
    assert.ok(!w[0].includes('abcdefghi'), 'the short token is not printed');
    const shared = parse(r('a', 'glrt-abcdefghi-111', 'Shared=true\n') + r('b', 'glrt-abcdefghi-222', 'Shared=true\n'));
    assert.equal(warnings(shared).filter((m) => /short form/.test(m)).length, 0, 'Shared runners share on purpose');
  });

  it('refuses a token whose short form is not a namespace of its own (empty, ".", "..", a "/"): its objects would reach every runner\'s', () => {
    const r = (token: string, extra = ''): string => `[[runners]]\nname="odd"\ntoken="${token}"\n[runners.cache]\nType="local"\n${extra}`;
    for (const token of ['glrt-', 'glrt-t1_', 'glrt-.', 'glrt-..', 'glrt-../other', 'glrt-a/b', 'GR1348941']) {
      const e = errors(parse(r(token))).join('\n');
      assert.match(e, /short form of this token .* every other runner's namespace/, token);
      assert.ok(!e.includes(token), 'the token is not printed');
    }
    assert.deepEqual(errors(parse(r('glrt-abcdefghi-111'))), []);
    assert.deepEqual(errors(parse(r('glrt-', 'Shared=true\n'))), [], 'Shared runners use project/ on purpose');
  });

  it('refuses a front-door key for a runner without a token (not Shared): its namespace would be all of runner/', () => {
    const door = (runner: string): string => `[cachegate.s3_api]\nlisten="127.0.0.1:0"\n[[cachegate.s3_api.keys]]\naccess_key="AK"\nsecret_key="sk-0123456789abcdef"\nrunner="${runner}"\n`;
    const c = parse(`[[runners]]\nname="nat"\n[runners.cache]\nType="local"\n[[runners]]\nname="sh"\n[runners.cache]\nType="local"\nShared=true\n${door('nat')}`);
    assert.match(errors(c).join('\n'), /runner "nat" has no token, .* every runner's objects/);
    const ok = parse(`[[runners]]\nname="sh"\n[runners.cache]\nType="local"\nShared=true\n${door('sh')}`);
    assert.deepEqual(errors(ok), []);
  });

  it('refuses two runners with the same token', () => {
    const c = parse('[[runners]]\nname="a"\ntoken="t"\n[runners.cache]\n[[runners]]\nname="b"\ntoken="t"\n[runners.cache]\n');
    assert.match(errors(c).join('\n'), /the same token is used by runner "a"/);
  });
});

describe('[cachegate] section', () => {
  it('reads listen, tokens, lifetimes, proxy', () => {
    const c = parse(`
[cachegate]
listen = "0.0.0.0:9999"
public_url = "https://cache.example.com/"
proxy = false
max_url_lifetime = 3600
default_url_lifetime = 7200
[[cachegate.api_tokens]]
name = "dashboard"
token_env = "DASH_TOKEN"
runner = "r1"
read_only = true
[[runners]]
name = "r1"
token = "glrt-aaaaaaaaaaaa"
[runners.cache]
Type = "local"
`, { DASH_TOKEN: 'x'.repeat(32) });
    assert.deepEqual(errors(c), []);
    assert.equal(c.service.listen, '0.0.0.0:9999');
    assert.equal(c.service.publicUrl, 'https://cache.example.com');
    assert.equal(c.service.proxy, false);
    assert.equal(c.service.maxUrlLifetime, 3600);
    assert.equal(c.service.defaultUrlLifetime, 3600, 'the default is capped by the maximum');
    assert.deepEqual(c.service.apiTokens, [{ token: 'x'.repeat(32), profile: 'r1', readOnly: true, label: 'dashboard' }]);
  });

  it('refuses unknown keys in its own section and tokens for unknown runners', () => {
    const c = parse('[cachegate]\nlisten = "nope"\n[[cachegate.api_tokens]]\ntoken = "abc"\nrunner = "ghost"\n');
    const e = errors(c).join('\n');
    assert.match(e, /cachegate\.listen: "nope" is not HOST:PORT/);
    assert.match(e, /cachegate\.api_tokens\[0\]\.runner: no runner named "ghost"/);
    const c2 = parse('[cachegate]\nlisen = "x"\n');
    assert.match(errors(c2).join("\n"), /cachegate: unknown field lisen \(did you mean listen\?\)/);
  });

  it('an API token for a name that several runners share is refused (it cannot say which), naming the entries', () => {
    const ci = (t: string): string => `[[runners]]\nname = "ci"\ntoken = "${t}"\n[runners.cache]\nType = "local"\n`;
    const c = parse(`${ci('glrt-one')}${ci('glrt-two')}[[cachegate.api_tokens]]\ntoken = "${'x'.repeat(32)}"\nrunner = "ci"\n`);
    assert.match(errors(c).join('\n'), /cachegate\.api_tokens\[0\]\.runner: 2 runners are named "ci" \(runners\[0\], runners\[1\]\)/);
    assert.equal(c.profiles.length, 2, 'both runners stay profiles');
    assert.match(warnings(c).join('\n'), /runners\.ci\.name: 2 runners are named "ci" \(runners\[0\], runners\[1\]\): each keeps its own token/);
  });
});

describe('environment (CACHE_*) and defaults', () => {
  it('with nothing configured: one local profile', () => {
    const c = loadConfig({ env: {} });
    assert.equal(c.source, 'defaults');
    assert.equal(c.profiles.length, 1);
    assert.equal(c.profiles[0].cache.type, 'local');
    assert.deepEqual(c.findings, []);
    assert.equal(c.service.listen, '127.0.0.1:9170');
  });

  it('CACHE_* variables make the default profile', () => {
    const c = loadConfig({
      env: {
        CACHE_TYPE: 's3', CACHE_PATH: 'p', CACHE_SHARED: 'true', CACHE_MAXIMUM_UPLOADED_ARCHIVE_SIZE: '42',
        CACHE_S3_SERVER_ADDRESS: 'rgw:8000', CACHE_S3_ACCESS_KEY: 'a', CACHE_S3_SECRET_KEY: 's', CACHE_S3_BUCKET_NAME: 'b',
        CACHE_S3_INSECURE: '1', CACHE_S3_PATH_STYLE: 'false', CACHEGATE_RUNNER_TOKEN: 'glrt-zzzzzzzzzzzz',
      },
    });
    assert.deepEqual(errors(c), []);
    assert.equal(c.source, 'environment');
    const p = c.profiles[0];
    assert.deepEqual([p.cache.type, p.cache.path, p.cache.shared, p.cache.maxUploadedArchiveSize], ['s3', 'p', true, 42]);
    assert.equal(p.cache.s3?.insecure, true);
    assert.equal(p.cache.s3?.pathStyle, false);
    assert.equal(p.cache.s3?.authenticationType, 'access-key');
    assert.equal(p.shortToken, 'zzzzzzzzz');
  });

  it('GOOGLE_APPLICATION_CREDENTIALS is the GCS credentials file; bad booleans are errors', () => {
    const c = loadConfig({ env: { CACHE_TYPE: 'gcs', CACHE_GCS_BUCKET_NAME: 'b', GOOGLE_APPLICATION_CREDENTIALS: '/nonexistent.json', CACHE_SHARED: 'maybe' } });
    const e = errors(c).join('\n');
    assert.match(e, /CACHE_SHARED: "maybe" is not a boolean/);
    assert.match(e, /environment\.gcs\.CredentialsFile: cannot read \/nonexistent\.json/);
  });

  it('a missing config file is an error, not a crash', () => {
    const c = loadConfig({ file: '/nonexistent/config.toml', env: {} });
    assert.match(errors(c)[0], /cannot read .*: file not found/);
  });
});

describe('listen addresses', () => {
  it('parses HOST:PORT forms', () => {
    assert.deepEqual(parseListen('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
    assert.deepEqual(parseListen('[::1]:9170'), { host: '::1', port: 9170 });
    assert.deepEqual(parseListen(':80'), { host: '0.0.0.0', port: 80 });
    assert.equal(parseListen('localhost'), undefined);
    assert.equal(parseListen('a:99999'), undefined);
  });
});

describe('typos: did you mean, and misspelt credential settings are errors', () => {
  const s3Runner = (fields: string, table = '[runners.cache]'): string =>
    `[[runners]]\nname = "r"\ntoken = "glrt-typo-000000"\n${table}\nType = "s3"\n[runners.cache.s3]\nBucketName = "b"\n${fields}\n`;

  it('SeverAddress: an error naming ServerAddress (the static keys would silently fall back to IAM)', () => {
    const c = parse(s3Runner('SeverAddress = "minio:9000"\nAccessKey = "AK"\nSecretKey = "SK"'));
    assert.deepEqual(errors(c), ['runners[0].cache.s3.SeverAddress: unknown field SeverAddress (did you mean ServerAddress?): ServerAddress decides which credentials are used, so this is not ignored']);
  });

  it('a misspelt field that does not touch credentials is a warning with a suggestion', () => {
    const c = parse(s3Runner('BuckteLocation = "eu-west-1"'));
    assert.deepEqual(errors(c), []);
    assert.ok(warnings(c).includes('runners[0].cache.s3.BuckteLocation: unknown field BuckteLocation (did you mean BucketLocation?), ignored'), warnings(c).join('\n'));
  });

  it('[runners.cahce] and [cachgate] are named, with the table they were meant to be', () => {
    const c = parse('[cachgate]\nlisten = "127.0.0.1:1"\n[[runners]]\nname = "r"\ntoken = "glrt-x-00000000"\n[runners.cahce]\nType = "s3"\n[runners.docker]\nimage = "x"\n');
    const w = warnings(c);
    assert.ok(w.includes('runners[0].cahce: unknown table [runners.cahce] (did you mean [runners.cache]?), ignored'), w.join('\n'));
    assert.ok(w.includes('cachgate: unknown table [cachgate] (did you mean [cachegate]?), ignored'), w.join('\n'));
    assert.ok(!w.some((l) => l.includes('docker')), 'keys far from any known one are not reported');
  });

  it('an unknown table inside a cache section: [runners.cache.s4] → an error naming [runners.cache.s3]', () => {
    const c = parse('[[runners]]\nname = "r"\ntoken = "glrt-x-00000000"\n[runners.cache]\nType = "s3"\n[runners.cache.s4]\nBucketName = "b"\n');
    assert.ok(errors(c).some((e) => e.startsWith('runners[0].cache.s4: unknown table [runners.cache.s4] (did you mean [runners.cache.s3]?)')), errors(c).join('\n'));
  });

  it('Type = "S3": the error suggests "s3" and lists every accepted type, local included', () => {
    const c = parse('[[runners]]\nname = "r"\ntoken = "glrt-x-00000000"\n[runners.cache]\nType = "S3"\n');
    assert.deepEqual(errors(c), ['runners[0].cache.Type: unknown cache type "S3" (did you mean "s3"?): one of s3, s3v2, gcs, gcsv2, azure, local (lower case)']);
  });

  it('the suggestions come from the schema: a wrong type is named, a missing required field says required', () => {
    const c = parse('[cachegate]\n[[cachegate.api_tokens]]\ntoken = "abcdefghijklmnopq"\n');
    assert.deepEqual(errors(c), ['cachegate.api_tokens[0].runner: required']);
  });
});
