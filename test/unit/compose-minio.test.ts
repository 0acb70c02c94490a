/**
 * docker-compose.minio.yml cannot run here (no Docker engine), so this checks that it agrees with the
 * configuration it mounts (docker/minio/config.toml) and with the walk-through (docs/minio.md):
 * ports, credentials, bucket, token, paths.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { parseConfigText } from '../../src/config/load.ts';

const root = new URL('../../', import.meta.url);
const read = (p: string): string => readFileSync(new URL(p, root), 'utf8');

interface Service {
  image?: string;
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  network_mode?: string;
  depends_on?: Record<string, { condition: string }>;
}
const compose = parseYaml(read('docker-compose.minio.yml')) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const tomlText = read('docker/minio/config.toml');
const toml = parseToml(tomlText) as {
  cachegate: { listen: string; public_url: string };
  runners: Array<{ name: string; token: string; cache: { Type: string; s3: { ServerAddress: string; AccessKey: string; SecretKey: string; BucketName: string; Insecure: boolean } } }>;
};
const docs = read('docs/minio.md');
const { minio, createbucket, cachegate } = compose.services;
const runner = toml.runners[0];
const s3 = runner.cache.s3;

/** "HOST:CONTAINER" → { host, container } */
function published(svc: Service): Array<{ host: number; container: number }> {
  return (svc.ports ?? []).map((p) => {
    const [h, c] = p.split(':').map(Number);
    return { host: h, container: c };
  });
}
const asText = (v: string[] | string | undefined): string => (Array.isArray(v) ? v.join(' ') : (v ?? ''));

describe('docker-compose.minio.yml', () => {
  test('has MinIO, the one-shot bucket creation and cachegate, started in that order', () => {
    assert.ok(minio && createbucket && cachegate);
    assert.match(minio.image ?? '', /^minio\/minio/);
    assert.match(createbucket.image ?? '', /^minio\/mc/);
    assert.equal(createbucket.depends_on?.minio.condition, 'service_healthy');
    assert.equal(cachegate.depends_on?.createbucket.condition, 'service_completed_successfully');
  });

  test('cachegate mounts docker/minio/config.toml where its command reads it', () => {
    const mount = cachegate.volumes?.find((v) => v.startsWith('./docker/minio/config.toml:'));
    assert.ok(mount, 'config.toml is mounted');
    const target = mount.split(':')[1];
    const cmd = asText(cachegate.command);
    assert.ok(cmd.includes(`serve --config ${target}`), cmd);
    assert.ok(cmd.includes('bin/cachegate.js'));
    assert.ok(cachegate.volumes?.includes('.:/app'));
    assert.ok(cachegate.volumes?.some((v) => v.endsWith(':/app/node_modules')), "the host's node_modules is not overwritten");
  });

  test('credentials agree: MinIO root user = AccessKey/SecretKey, used by mc too', () => {
    assert.equal(minio.environment?.MINIO_ROOT_USER, s3.AccessKey);
    assert.equal(minio.environment?.MINIO_ROOT_PASSWORD, s3.SecretKey);
    assert.equal(createbucket.environment?.MINIO_ROOT_USER, s3.AccessKey);
    assert.equal(createbucket.environment?.MINIO_ROOT_PASSWORD, s3.SecretKey);
    assert.ok(s3.SecretKey.length >= 8, 'MinIO needs a password of 8+ characters');
  });

  test('the bucket mc creates is the BucketName', () => {
    const script = asText(createbucket.entrypoint);
    assert.match(script, new RegExp(`mc mb (--ignore-existing )?local/${s3.BucketName}(\\s|$)`));
    const minioPort = Number(/--address[ ,]+"?:(\d+)/.exec(asText(minio.command))?.[1] ?? 9000);
    assert.ok(script.includes(`http://minio:${minioPort}`), 'mc talks to the minio service');
  });

  test('ServerAddress reaches MinIO from the service and from the host under the same name', () => {
    assert.equal(cachegate.network_mode, 'service:minio');
    const [host, port] = s3.ServerAddress.split(':');
    assert.equal(host, 'localhost');
    const minioPort = Number(/--address[ ,]+"?:(\d+)/.exec(asText(minio.command))?.[1]);
    assert.equal(Number(port), minioPort);
    assert.ok(published(minio).some((p) => p.host === Number(port) && p.container === minioPort), 'the S3 port is published as the same number');
    assert.equal(s3.Insecure, true, 'MinIO here speaks http');
  });

  test('cachegate listens on a published port and its public_url matches', () => {
    const listenPort = Number(toml.cachegate.listen.split(':').pop());
    assert.equal(toml.cachegate.listen.split(':')[0], '0.0.0.0', 'reachable from outside the container');
    assert.ok(published(minio).some((p) => p.host === listenPort && p.container === listenPort));
    assert.equal(toml.cachegate.public_url, `http://localhost:${listenPort}`);
  });

  test('the mounted configuration loads without errors as one S3 profile', () => {
    const config = parseConfigText(tomlText, 'docker/minio/config.toml', {});
    const errors = config.findings.filter((f) => f.level === 'error');
    assert.deepEqual(errors, []);
    assert.equal(config.profiles.length, 1);
    const p = config.profiles[0];
    assert.equal(p.cache.type, 's3');
    assert.equal(p.cache.s3?.bucketName, s3.BucketName);
    assert.equal(p.cache.s3?.authenticationType, 'access-key');
    assert.equal(p.token, runner.token);
  });
});

describe('docs/minio.md walk-through agrees', () => {
  test('commands, addresses, bucket, credentials, token and paths', () => {
    const listenPort = Number(toml.cachegate.listen.split(':').pop());
    for (const needle of [
      'docker compose -f docker-compose.minio.yml up -d',
      'docker compose -f docker-compose.minio.yml down',
      `http://${s3.ServerAddress}`,
      `http://localhost:${listenPort}`,
      s3.BucketName,
      s3.AccessKey,
      s3.SecretKey,
      'docker/minio/config.toml',
      '/etc/cachegate/config.toml',
      'network_mode: service:minio',
    ]) {
      assert.ok(docs.includes(needle), `docs/minio.md mentions ${needle}`);
    }
    assert.equal(/TOKEN=(\S+)/.exec(docs)?.[1], runner.token);
    assert.ok(docs.includes(`| runner token | \`${runner.token}\` |`));
    const console = published(minio).find((p) => p.container === Number(/--console-address[ ,]+"?:(\d+)/.exec(asText(minio.command))?.[1]));
    assert.ok(console && docs.includes(`http://localhost:${console.host}`), 'console address');
  });
});
