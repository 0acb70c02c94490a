/** [cachegate.s3_api]: the section's shape and what `cachegate check` refuses. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hasErrors, parseConfigText } from '../../src/config/load.ts';

const runners = `
[[runners]]
  name = "r1"
  token = "glrt-aaaaaaaaaaaa"
  [runners.cache]
    Type = "local"
[[runners]]
  name = "twin"
  token = "glrt-bbbbbbbbbbbb"
  [runners.cache]
    Type = "local"
[[runners]]
  name = "twin"
  token = "glrt-cccccccccccc"
  [runners.cache]
    Type = "local"
`;
const parse = (section: string, env: Record<string, string> = {}) => parseConfigText(runners + section, 'config.toml', env);
const errors = (section: string, env: Record<string, string> = {}): string[] =>
  parse(section, env).findings.filter((f) => f.level === 'error').map((f) => `${f.field}: ${f.message}`);

describe('[cachegate.s3_api]', () => {
  it('the documented shape loads, secret from the file or the environment, bucket defaulting to runner-cache', () => {
    const c = parse(`
[cachegate.s3_api]
  listen = "0.0.0.0:9000"
  [[cachegate.s3_api.keys]]
    access_key = "FRONTDOORKEY0001"
    secret_key = "front-door-secret-0001"
    runner = "r1"
    read_only = false
  [[cachegate.s3_api.keys]]
    access_key = "FRONTDOORKEY0002"
    secret_key_env = "FD_SECRET"
    runner = "r1"
    read_only = true
`, { FD_SECRET: 'from-env' });
    assert.equal(hasErrors(c), false, JSON.stringify(c.findings));
    assert.deepEqual(c.service.s3Api, {
      listen: '0.0.0.0:9000', bucket: 'runner-cache', multipartMaxAge: 86400, keepAliveTimeout: 60, redirectGet: false,
      keys: [
        { accessKey: 'FRONTDOORKEY0001', secretKey: 'front-door-secret-0001', runner: 'r1', readOnly: false },
        { accessKey: 'FRONTDOORKEY0002', secretKey: 'from-env', runner: 'r1', readOnly: true },
      ],
    });
    assert.equal(parse('').service.s3Api, undefined, 'off without the section');
  });

  it('refuses an unknown runner, an ambiguous runner name, a duplicate access key, a missing secret, a bad listen address', () => {
    const e = errors(`
[cachegate.s3_api]
  listen = "nowhere"
  bucket = "other"
  [[cachegate.s3_api.keys]]
    access_key = "K1"
    secret_key = "s1"
    runner = "nobody"
  [[cachegate.s3_api.keys]]
    access_key = "K1"
    secret_key = "s2"
    runner = "r1"
  [[cachegate.s3_api.keys]]
    access_key = "K3"
    runner = "r1"
  [[cachegate.s3_api.keys]]
    access_key = "K4"
    secret_key_env = "UNSET_VAR"
    runner = "r1"
  [[cachegate.s3_api.keys]]
    access_key = "K5"
    secret_key = "s5"
    runner = "twin"
`);
    assert.deepEqual(e, [
      'cachegate.s3_api.listen: "nowhere" is not HOST:PORT',
      'cachegate.s3_api.keys[0].runner: no runner named "nobody" has a [runners.cache] section',
      'cachegate.s3_api.keys[1].access_key: access key "K1" is listed twice: each must map to one runner',
      'cachegate.s3_api.keys[2].secret_key: secret_key or secret_key_env is required',
      'cachegate.s3_api.keys[3].secret_key_env: environment variable UNSET_VAR is not set',
      'cachegate.s3_api.keys[4].runner: 2 runners are named "twin": give them distinct names so the access key maps to one',
    ]);
  });

  it('refuses unknown keys in the section and the service\'s own listen address', () => {
    assert.ok(errors('[cachegate.s3_api]\n  listen = "127.0.0.1:9000"\n  lsiten = "x"\n').length > 0);
    assert.deepEqual(errors('[cachegate]\n  listen = "127.0.0.1:9170"\n[cachegate.s3_api]\n  listen = "127.0.0.1:9170"\n'), [
      'cachegate.s3_api.listen: the S3 front door needs its own address; 127.0.0.1:9170 is the service\'s listen address',
    ]);
  });
});
