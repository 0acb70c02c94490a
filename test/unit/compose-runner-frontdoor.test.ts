/**
 * docker-compose.runner-frontdoor.yml cannot run here (no Docker engine, no GitLab), so this checks
 * that its two configuration files agree: the stock runner's [runners.cache.s3] reaches the S3 front
 * door by the compose service name and port, with an access key, secret and bucket cachegate knows,
 * mapped to a cachegate profile with the runner's own token; job containers join the compose network.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { hasErrors, parseConfigText } from '../../src/config/load.ts';

const root = new URL('../../', import.meta.url);
const read = (p: string): string => readFileSync(new URL(p, root), 'utf8');

interface Service { image?: string; command?: string[] | string; ports?: string[]; volumes?: string[]; depends_on?: string[] }
const compose = parseYaml(read('docker-compose.runner-frontdoor.yml')) as { name: string; services: Record<string, Service> };
const runnerToml = parseToml(read('docker/runner-frontdoor/runner-config.toml')) as {
  runners: Array<{ name: string; token: string; docker: { network_mode: string }; cache: { Type: string; Shared: boolean; s3: { ServerAddress: string; AccessKey: string; SecretKey: string; BucketName: string; BucketLocation: string; Insecure: boolean } } }>;
};
const cachegateText = read('docker/runner-frontdoor/cachegate.toml');
const config = parseConfigText(cachegateText, 'cachegate.toml', {});
const { cachegate, 'gitlab-runner': runner } = compose.services;
const r = runnerToml.runners[0];

describe('docker-compose.runner-frontdoor.yml', () => {
  test('a stock gitlab-runner image and cachegate, with both configuration files mounted where they are read', () => {
    assert.match(runner.image ?? '', /^gitlab\/gitlab-runner:/);
    assert.ok(runner.volumes?.includes('./docker/runner-frontdoor/runner-config.toml:/etc/gitlab-runner/config.toml:ro'));
    const mount = cachegate.volumes?.find((v) => v.startsWith('./docker/runner-frontdoor/cachegate.toml:'));
    assert.ok(mount);
    const cmd = Array.isArray(cachegate.command) ? cachegate.command.join(' ') : (cachegate.command ?? '');
    assert.ok(cmd.includes(`serve --config ${mount.split(':')[1]}`), cmd);
  });

  test('cachegate.toml is valid and has the S3 front door', () => {
    assert.equal(hasErrors(config), false, JSON.stringify(config.findings));
    assert.ok(config.service.s3Api);
  });

  test('the runner reaches the front door by service name and port, with a key, secret and bucket cachegate knows', () => {
    const s3Api = config.service.s3Api as NonNullable<typeof config.service.s3Api>;
    assert.equal(r.cache.Type, 's3');
    assert.equal(r.cache.s3.Insecure, true, 'the front door speaks http');
    const [host, port] = r.cache.s3.ServerAddress.split(':');
    assert.equal(host, 'cachegate');
    assert.ok(compose.services[host]);
    assert.equal(s3Api.listen.split(':').at(-1), port);
    assert.ok(cachegate.ports?.includes(`${port}:${port}`));
    assert.equal(r.cache.s3.BucketName, s3Api.bucket);
    assert.ok(r.cache.s3.BucketLocation !== '', 'BucketLocation set: the runner presigns offline');
    const key = s3Api.keys.find((k) => k.accessKey === r.cache.s3.AccessKey);
    assert.ok(key, 'the access key is known');
    assert.equal(key.secretKey, r.cache.s3.SecretKey);
    const profile = config.profiles.find((p) => p.name === key.runner);
    assert.ok(profile, 'the key maps to a profile');
    assert.equal(profile.token, r.token, 'with the runner\'s own token: the same namespace as the runner builds');
    assert.equal(profile.cache.shared, r.cache.Shared);
  });

  test('job containers join the compose network, so the cache helper resolves "cachegate"', () => {
    assert.equal(r.docker.network_mode, `${compose.name}_default`);
  });
});
