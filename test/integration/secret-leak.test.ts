/**
 * Secret leaks: a real `cachegate serve` process configured with known secrets (runner tokens, API
 * tokens incl. read-only and one from the environment, S3 access + secret key on RGW, a RoleARN
 * profile that mints session credentials, a profile with a wrong secret key, the local signing key,
 * an Azure account key on Azurite, a GCS private key), logging at debug, once in each format (json,
 * text, runner). A whole workload runs through it: good and bad presigns, wrong tokens and tokens in
 * odd places, proxy PUT/GET/HEAD on every backend, expired and tampered blob URLs, probes, metrics,
 * openapi, and reloads with invalid configurations that carry secrets on their faulty lines.
 *
 * Then every log line (stdout and stderr) and every response (status line, headers, body) is
 * searched for each secret; logs also for any signature (X-Amz-Signature=, X-Amz-Credential=,
 * X-Amz-Security-Token=, sig=, X-Goog-Signature=, X-Cachegate-Signature=, Signature=), for the
 * signature values and for every signed URL handed out. Session credentials minted for the RoleARN
 * profile may appear in the body of a presign answer for that profile, and nowhere else.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { startAzurite, type Azurite } from '../support/azurite.ts';
import { makeServiceAccount, type TestServiceAccount } from '../support/gcs-iam.ts';
import { startGcsXmlServer, type GcsXmlServer } from '../support/gcs-xml-server.ts';
import { rgw, type Rgw } from '../support/rgw.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const rnd = (): string => randomBytes(6).toString('hex');

// Every value below is a secret: none may appear in a log line or a response.
const T = {
  local: `glrt-leaklocal-${rnd()}`,
  s3: `glrt-leaks3s3-${rnd()}`,
  role: `glrt-leakrole-${rnd()}`,
  badkey: `glrt-leakbadkey-${rnd()}`,
  azure: `glrt-leakazure-${rnd()}`,
  gcs: `glrt-leakgcs-${rnd()}`,
};
const API_RW = `cgapi-rw-${rnd()}${rnd()}`;
const API_RO = `cgapi-ro-${rnd()}${rnd()}`;
const API_ENV = `cgapi-env-${rnd()}${rnd()}`;
const SIGNING_KEY = `leak-signing-key-${rnd()}${rnd()}`;
const WRONG_SECRET = `WrongSecretKey${rnd()}${rnd()}`;
/** Tokens a client presents that the service does not know: not to be logged either. */
const WRONG_TOKENS = [`glrt-wrong-${rnd()}${rnd()}`, `cgapi-wrong-${rnd()}${rnd()}`];

interface Exchange {
  label: string;
  /** What the client sent, for messages. */
  request: string;
  statusLine: string;
  headers: Array<[string, string]>;
  body: string;
}

/** One HTTP request over node:http (any header allowed); the answer as text (latin1: byte-exact for ASCII secrets). */
function call(base: string, label: string, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<Exchange> {
  const url = new URL(path, base);
  return new Promise((res, rej) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path: url.pathname + url.search, headers }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => {
        const pairs: Array<[string, string]> = [];
        for (let i = 0; i < r.rawHeaders.length; i += 2) pairs.push([r.rawHeaders[i], r.rawHeaders[i + 1]]);
        res({
          label,
          request: `${method} ${url.pathname}`,
          statusLine: `HTTP/${r.httpVersion} ${r.statusCode} ${r.statusMessage}`,
          headers: pairs,
          body: Buffer.concat(chunks).toString('latin1'),
        });
      });
    });
    req.on('error', (err) => rej(new Error(`${label}: ${method} ${url.pathname}: ${err.message}`)));
    req.end(body);
  });
}

const status = (e: Exchange): number => Number(e.statusLine.split(' ')[1]);
const json = (e: Exchange): any => JSON.parse(Buffer.from(e.body, 'latin1').toString('utf8'));
const fullText = (e: Exchange): string => [e.statusLine, ...e.headers.map(([n, v]) => `${n}: ${v}`), '', e.body].join('\r\n');

interface Service {
  child: ChildProcess;
  url: string;
  stdout: string;
  stderr: string;
  configFile: string;
  dir: string;
}

async function startServe(configText: string): Promise<Service> {
  const dir = await mkdtemp(join(tmpdir(), 'cachegate-leak-'));
  const configFile = join(dir, 'config.toml');
  await writeFile(configFile, configText);
  const child = spawn(process.execPath, ['bin/cachegate.js', 'serve', '--config', configFile, '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')], {
    cwd: ROOT,
    env: { ...process.env, CACHEGATE_CONFIG: '', LEAK_TEST_API_TOKEN: API_ENV },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const svc: Service = { child, url: '', stdout: '', stderr: '', configFile, dir };
  child.stdout?.on('data', (d: Buffer) => (svc.stdout += d.toString('utf8')));
  child.stderr?.on('data', (d: Buffer) => (svc.stderr += d.toString('utf8')));
  await new Promise<void>((res, rej) => {
    const timer = setInterval(() => {
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(svc.stdout);
      if (m) {
        clearInterval(timer);
        svc.url = m[1];
        res();
      }
    }, 20);
    child.once('exit', (code) => {
      clearInterval(timer);
      rej(new Error(`cachegate serve exited with ${code}:\n${svc.stdout.slice(-3000)}\n${svc.stderr.slice(-3000)}`));
    });
  });
  return svc;
}

async function stopServe(svc: Service): Promise<void> {
  if (svc.child.exitCode === null) {
    const exited = new Promise((r) => svc.child.once('exit', r));
    svc.child.kill('SIGTERM');
    await exited;
  }
  await rm(svc.dir, { recursive: true, force: true });
}

/** Waits until /metrics counts `n` configuration reloads with `result`. */
async function reloadsCounted(svc: Service, result: 'ok' | 'unchanged' | 'invalid', n: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const text = await (await fetch(`${svc.url}/metrics`)).text();
    const m = new RegExp(`cachegate_config_reloads_total\\{result="${result}"\\} (\\d+)`).exec(text);
    if (m && Number(m[1]) >= n) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no ${n} "${result}" reloads counted`);
}

/** The value of a query parameter that carries a signature, from any signed URL. */
function signatureValues(url: string): string[] {
  const q = new URL(url).searchParams;
  return ['X-Amz-Signature', 'sig', 'X-Goog-Signature', 'X-Cachegate-Signature', 'Signature']
    .map((p) => q.get(p))
    .filter((v): v is string => v !== null && v.length >= 16);
}

/**
 * Whether `text` holds `secret`, or any 10-character piece of its secret part. A runner token's
 * first 14 characters (the glrt- prefix and the 9-character short token that names the namespace in
 * every object name) are public by design; PEM lines are matched whole.
 */
function containsSecret(text: string, secret: string): boolean {
  if (text.includes(secret)) return true;
  if (secret.length < 16 || /^[A-Za-z0-9+/]{40,}$/.test(secret)) return false;
  const start = secret.startsWith('glrt-') ? 14 : 0;
  for (let i = start; i + 10 <= secret.length; i++) if (text.includes(secret.slice(i, i + 10))) return true;
  return false;
}

const LOG_PATTERNS = [
  /X-Amz-Signature=/i, /X-Amz-Credential=/i, /X-Amz-Security-Token=/i, /[?&]sig=/i, /X-Goog-Signature=/i,
  /X-Goog-Credential=/i, /X-Cachegate-Signature=/i, /[?&]Signature=/, /Bearer [A-Za-z0-9]/, /-----BEGIN [A-Z ]*PRIVATE KEY/,
];

describe('secret leak: known secrets never reach a log line or a response', () => {
  let server: Rgw;
  let bucket: string;
  let azurite: Azurite;
  let gcs: GcsXmlServer;
  let sa: TestServiceAccount;
  let configFor: (format: string) => string;
  let staticSecrets: Array<[string, string]>;

  before(async () => {
    server = await rgw();
    bucket = await server.bucket('leak');
    azurite = await startAzurite();
    await new BlobServiceClient(azurite.serviceUrl, new StorageSharedKeyCredential(azurite.accountName, azurite.accountKey)).getContainerClient('leak').create();
    sa = makeServiceAccount('leak-test');
    gcs = await startGcsXmlServer({ keys: new Map([[sa.email, sa.publicKey]]), buckets: ['leak'] });
    const s3Table = (secretKey: string, ...extra: string[]): string =>
      server.toml(bucket, ...extra).replace(`SecretKey = "${server.secretKey}"`, `SecretKey = "${secretKey}"`);
    configFor = (format) => `
log_level = "debug"
[cachegate]
log_format = "${format}"
log_level = "debug"
local_signing_key = "${SIGNING_KEY}"
  [[cachegate.api_tokens]]
    name = "ci-bot"
    token = "${API_RW}"
    runner = "local"
  [[cachegate.api_tokens]]
    name = "reader"
    token = "${API_RO}"
    runner = "s3"
    read_only = true
  [[cachegate.api_tokens]]
    name = "from-env"
    token_env = "LEAK_TEST_API_TOKEN"
    runner = "local"

[[runners]]
  name = "local"
  token = "${T.local}"
  [runners.cache]
    Type = "local"
[[runners]]
  name = "s3"
  token = "${T.s3}"
  [runners.cache]
    Type = "s3"
${s3Table(server.secretKey)}
[[runners]]
  name = "role"
  token = "${T.role}"
  [runners.cache]
    Type = "s3"
${s3Table(server.secretKey, `RoleARN = "${server.roleArn}"`)}
[[runners]]
  name = "badkey"
  token = "${T.badkey}"
  [runners.cache]
    Type = "s3"
${s3Table(WRONG_SECRET, `RoleARN = "${server.roleArn}"`)}
[[runners]]
  name = "azure"
  token = "${T.azure}"
  [runners.cache]
    Type = "azure"
    [runners.cache.azure]
      AccountName = "${azurite.accountName}"
      AccountKey = "${azurite.accountKey}"
      ContainerName = "leak"
      ServiceURL = "${azurite.serviceUrl}"
[[runners]]
  name = "gcs"
  token = "${T.gcs}"
  [runners.cache]
    Type = "gcs"
    [runners.cache.gcs]
      AccessID = "${sa.email}"
      PrivateKey = """
${sa.privateKeyPem.trim()}"""
      BucketName = "leak"
      Endpoint = "${gcs.endpoint}"
`;
    // The PEM is checked line by line: any 64-character line of its body is a leak.
    const pemLines = sa.privateKeyPem.split('\n').filter((l) => l.length >= 40 && !l.startsWith('-----'));
    staticSecrets = [
      ...Object.entries(T).map(([k, v]): [string, string] => [`runner token (${k})`, v]),
      ['API token (read-write)', API_RW], ['API token (read-only)', API_RO], ['API token (from the environment)', API_ENV],
      ['S3 secret key', server.secretKey], ['wrong S3 secret key', WRONG_SECRET], ['local signing key', SIGNING_KEY],
      ['Azure account key', azurite.accountKey],
      ...pemLines.map((l, i): [string, string] => [`GCS private key line ${i}`, l]),
      ...WRONG_TOKENS.map((t, i): [string, string] => [`presented wrong token ${i}`, t]),
    ];
  });

  after(async () => {
    await azurite?.stop();
    await gcs?.stop();
  });

  for (const format of ['json', 'text', 'runner']) {
    it(`log_format = "${format}", log_level = "debug": a whole workload leaks nothing`, async (t) => {
      const svc = await startServe(configFor(format));
      const ex: Exchange[] = [];
      const urls: string[] = [];
      const session: Array<{ exchange: Exchange; values: string[] }> = [];
      let invalidReloads = 0;
      try {
        const go = async (label: string, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<Exchange> => {
          const e = await call(svc.url, label, method, path, headers, body);
          ex.push(e);
          assert.ok(status(e) < 500 || /backend/.test(label), `${label}: ${e.statusLine} ${e.body.slice(0, 300)}`);
          return e;
        };
        const bearer = (tok: string): Record<string, string> => ({ authorization: `Bearer ${tok}`, 'content-type': 'application/json' });
        const presign = async (label: string, tok: string, body: object): Promise<Exchange> => {
          const e = await go(label, 'POST', '/v1/presign', bearer(tok), JSON.stringify(body));
          if (status(e) === 200) {
            const a = json(e);
            const values: string[] = [];
            for (const x of [a, ...(a.fallbacks ?? [])]) {
              urls.push(x.url);
              if (x.env) values.push(x.env.AWS_ACCESS_KEY_ID, x.env.AWS_SECRET_ACCESS_KEY, x.env.AWS_SESSION_TOKEN);
            }
            if (values.length > 0) session.push({ exchange: e, values });
          }
          return e;
        };

        // An URL that will have expired by the end of the workload.
        const short = await presign('short-lived local download', T.local, { operation: 'download', key: 'leak/main', projectId: '1', timeoutSeconds: 1 });
        assert.equal(status(short), 200);

        // Probes and documents.
        await go('healthz', 'GET', '/healthz');
        const ready = await go('readyz (the badkey profile fails: 503 backend)', 'GET', '/readyz');
        assert.equal(status(ready), 503, 'the profile with a wrong secret key makes /readyz fail');
        await go('openapi', 'GET', '/openapi.json');
        await go('no route', 'GET', `/v1/nothing?token=${T.local}`);

        // Good presigns on every backend, with fallback keys.
        for (const [name, tok] of Object.entries({ local: T.local, s3: T.s3, role: T.role, azure: T.azure, gcs: T.gcs, 'api rw': API_RW, 'api env': API_ENV })) {
          for (const operation of ['upload', 'download', 'head']) {
            const e = await presign(`${name} ${operation}`, tok, { operation, key: `leak/${name}`, projectId: '5', fallbackKeys: ['leak/default'], fallbackKey: 'main' });
            assert.equal(status(e), 200, `${name} ${operation}: ${e.body}`);
          }
        }
        // The cached role credentials come back for the same object.
        await presign('role upload again (cached credentials)', T.role, { operation: 'upload', key: 'leak/role', projectId: '5' });
        assert.ok(session.length >= 3, 'the RoleARN profile minted session credentials');

        // Read-only, refused and broken presigns.
        assert.equal(status(await presign('read-only download', API_RO, { operation: 'download', key: 'k', projectId: '5' })), 200);
        assert.equal(status(await presign('read-only upload → 403', API_RO, { operation: 'upload', key: 'k', projectId: '5' })), 403);
        assert.ok(status(await presign('badkey role upload → 5xx backend (AssumeRole signed with a wrong secret)', T.badkey, { operation: 'upload', key: 'k', projectId: '5' })) >= 500);
        for (const [label, body] of [
          ['unknown field carrying a token', JSON.stringify({ operation: 'upload', key: 'k', projectId: '1', token: T.s3 })],
          ['a token as the operation', JSON.stringify({ operation: WRONG_TOKENS[0], key: 'k', projectId: '1' })],
          ['a token as the project id', JSON.stringify({ operation: 'upload', key: 'k', projectId: T.gcs })],
          ['a token as hashKeys', JSON.stringify({ operation: 'upload', key: 'k', projectId: '1', hashKeys: API_RW })],
          ['broken JSON around a token', `{"operation":"upload","key":"${SIGNING_KEY}`],
          ['a body over the limit full of secrets', JSON.stringify({ operation: 'upload', key: 'k', projectId: '1', pad: `${server.secretKey} `.repeat(8000) })],
        ] as const) {
          const e = await go(label, 'POST', '/v1/presign', bearer(T.local), body);
          assert.ok([400, 413].includes(status(e)), `${label}: ${e.statusLine}`);
        }

        // Wrong tokens and tokens in odd places.
        const odd: Array<[string, Record<string, string>, string]> = [
          ['no token', {}, '/v1/presign'],
          ['unknown token', { authorization: `Bearer ${WRONG_TOKENS[0]}` }, '/v1/presign'],
          ['unknown API-style token', { authorization: `Bearer ${WRONG_TOKENS[1]}` }, '/v1/presign'],
          ['Basic scheme', { authorization: `Basic ${Buffer.from(`x:${T.local}`).toString('base64')}` }, '/v1/presign'],
          ['Token scheme', { authorization: `Token ${T.s3}` }, '/v1/presign'],
          ['raw token as Authorization', { authorization: T.role }, '/v1/presign'],
          ['Bearer with two words', { authorization: `Bearer ${T.azure} ${T.gcs}` }, '/v1/presign'],
          ['S3 secret key as a bearer token', { authorization: `Bearer ${server.secretKey}` }, '/v1/presign'],
          ['Private-Token header', { 'private-token': T.local }, '/v1/presign'],
          ['X-Api-Key header', { 'x-api-key': API_RW }, '/v1/presign'],
          ['cookie', { cookie: `token=${T.local}` }, '/v1/presign'],
          ['token in the query', {}, `/v1/presign?token=${T.local}&private_token=${API_RW}`],
          ['token in the query of a proxy GET', {}, `/v1/cache/5/leak?token=${T.s3}`],
        ];
        for (const [label, headers, path] of odd) {
          const method = path.startsWith('/v1/cache') ? 'GET' : 'POST';
          const e = await go(label, method, path, { 'content-type': 'application/json', ...headers }, method === 'POST' ? JSON.stringify({ operation: 'download', key: 'k', projectId: '1' }) : undefined);
          assert.equal(status(e), 401, `${label}: ${e.statusLine}`);
        }

        // Proxy PUT / GET / HEAD through every backend (badkey: RGW refuses the signature → 502).
        const data = randomBytes(20_000);
        for (const [name, tok] of Object.entries({ local: T.local, s3: T.s3, role: T.role, azure: T.azure, gcs: T.gcs, badkey: T.badkey, 'api rw': API_RW })) {
          const path = `/v1/cache/6/leak/proxy-${name.replace(' ', '-')}`;
          const put = await go(`proxy PUT ${name}${name === 'badkey' ? ' (5xx backend)' : ''}`, 'PUT', path, { authorization: `Bearer ${tok}`, 'content-type': 'application/octet-stream' }, data);
          if (name === 'badkey') {
            assert.ok(status(put) >= 500, `badkey PUT: ${put.statusLine} ${put.body}`);
            await go('proxy GET badkey (5xx backend)', 'GET', path, { authorization: `Bearer ${tok}` });
            await go('proxy HEAD badkey (5xx backend)', 'HEAD', path, { authorization: `Bearer ${tok}` });
            continue;
          }
          assert.equal(status(put), 200, `${name} PUT: ${put.body}`);
          assert.equal(status(await go(`proxy GET ${name}`, 'GET', path, { authorization: `Bearer ${tok}` })), 200);
          assert.equal(status(await go(`proxy HEAD ${name}`, 'HEAD', path, { authorization: `Bearer ${tok}` })), 200);
          assert.equal(status(await go(`proxy ranged GET ${name}`, 'GET', path, { authorization: `Bearer ${tok}`, range: 'bytes=10-99' })), 206);
          assert.equal(status(await go(`proxy miss ${name}`, 'GET', `${path}-absent`, { authorization: `Bearer ${tok}` })), 404);
        }
        assert.equal(status(await go('proxy PUT with a read-only token', 'PUT', '/v1/cache/6/ro', { authorization: `Bearer ${API_RO}` }, 'x')), 403);

        // Local blob URLs: good, tampered, edited, expired.
        const up = json(await presign('local upload for the blob URL', T.local, { operation: 'upload', key: 'leak/blob', projectId: '7', contentLength: 5 }));
        const blob = (u: string): string => new URL(u).pathname + new URL(u).search;
        assert.equal(status(await go('blob PUT', 'PUT', blob(up.url), up.headers, 'hello')), 200);
        const down = json(await presign('local download for the blob URL', T.local, { operation: 'download', key: 'leak/blob', projectId: '7' }));
        assert.equal(status(await go('blob GET', 'GET', blob(down.url))), 200);
        const tampered = new URL(down.url);
        const sig = tampered.searchParams.get('X-Cachegate-Signature') as string;
        tampered.searchParams.set('X-Cachegate-Signature', (sig[0] === '0' ? '1' : '0') + sig.slice(1)); // another digit (hex is case-blind)
        assert.equal(status(await go('blob GET, tampered signature', 'GET', blob(tampered.toString()))), 403);
        const edited = new URL(down.url);
        edited.searchParams.set('X-Cachegate-Expires', String(Number(edited.searchParams.get('X-Cachegate-Expires')) + 3600));
        assert.equal(status(await go('blob GET, edited expiry', 'GET', blob(edited.toString()))), 403);
        assert.equal(status(await go('blob PUT with the GET URL', 'PUT', blob(down.url), {}, 'x')), 403);
        assert.equal(status(await go('blob PUT, forged metadata', 'PUT', blob(up.url), { ...up.headers, 'x-amz-meta-cachekey': 'other' }, 'hello')), 403);
        const expiresAt = Date.parse(json(short).expiresAt);
        await new Promise((r) => setTimeout(r, Math.max(0, expiresAt + 1100 - Date.now())));
        assert.equal(status(await go('blob GET, expired', 'GET', blob(json(short).url))), 403);

        // Reloads with invalid configurations whose faulty lines hold secrets; the old one stays.
        const valid = configFor(format);
        const invalids = [
          ['unterminated string on the SecretKey line', valid.replace(`SecretKey = "${server.secretKey}"`, `SecretKey = "${server.secretKey}`)],
          ['unknown [cachegate] key holding the signing key', valid.replace('[cachegate]\n', `[cachegate]\nlocal_signing_kee = "${SIGNING_KEY}"\n`)],
          ['two runners with the same token', valid.replace(`token = "${T.gcs}"`, `token = "${T.local}"`)],
          ['an API token for an unknown runner', valid.replace('runner = "s3"', 'runner = "nobody"')],
          ['a wrong type next to the account key', valid.replace(`AccountKey = "${azurite.accountKey}"`, `AccountKey = ["${azurite.accountKey}"]`)],
        ] as const;
        for (const [label, text] of invalids) {
          assert.notEqual(text, valid, label);
          await writeFile(svc.configFile, text);
          svc.child.kill('SIGHUP');
          invalidReloads++;
          await reloadsCounted(svc, 'invalid', invalidReloads);
        }
        await writeFile(svc.configFile, valid);
        svc.child.kill('SIGHUP');
        await reloadsCounted(svc, 'unchanged', 1); // the same file as the one in force
        assert.equal(status(await presign('presign after the reloads', T.s3, { operation: 'upload', key: 'after', projectId: '1' })), 200);
        const metrics = await go('metrics', 'GET', '/metrics');
        assert.match(metrics.body, /cachegate_presign_total/);
      } finally {
        await stopServe(svc);
      }

      // ---- the search ----
      const lines = (svc.stdout + '\n' + svc.stderr).split('\n').filter((l) => l.trim() !== '');
      const dump = process.env.CACHEGATE_LEAK_DUMP; // a directory: what was searched, to read by hand
      if (dump) {
        await writeFile(join(dump, `leak-${format}.log`), lines.join('\n') + '\n');
        await writeFile(join(dump, `leak-${format}.responses`), ex.map((e) => `### ${e.label}: ${e.request}\n${fullText(e)}\n`).join('\n'));
      }
      t.diagnostic(`${format}: ${lines.length} log lines, ${ex.length} responses, ${urls.length} signed URLs, ${session.length} role presigns`);
      assert.ok(lines.length > ex.length / 2, 'the access log is there');
      assert.ok(lines.some((l) => /azure adapter ready to sign|gcs adapter ready to sign/.test(l)), 'debug lines are there');
      assert.ok(lines.some((l) => /invalid|keeping the previous/i.test(l)), 'the refused reloads were logged');
      const sessionValues = session.flatMap((s) => s.values);
      assert.ok(sessionValues.every((v) => typeof v === 'string' && v.length >= 16), 'session credentials look real');
      const signatures = urls.flatMap(signatureValues);
      assert.ok(signatures.length >= urls.length / 2, 'signature values were found in the handed-out URLs');

      const leaks: string[] = [];
      for (const line of lines) {
        const where = `log line ${JSON.stringify(line.slice(0, 200))}`;
        for (const [name, secret] of staticSecrets) if (containsSecret(line, secret)) leaks.push(`${name} in ${where}`);
        for (const v of sessionValues) if (line.includes(v)) leaks.push(`role session credential ${v.slice(0, 6)}… in ${where}`);
        for (const p of LOG_PATTERNS) if (p.test(line)) leaks.push(`${p} in ${where}`);
        for (const u of urls) if (line.includes(u) || line.includes(new URL(u).search.slice(1))) leaks.push(`signed URL ${u.slice(0, 60)}… in ${where}`);
        for (const s of signatures) if (line.includes(s)) leaks.push(`signature ${s.slice(0, 8)}… in ${where}`);
      }
      for (const e of ex) {
        const text = fullText(e);
        const where = `response to "${e.label}" (${e.request} → ${e.statusLine})`;
        for (const [name, secret] of staticSecrets) if (containsSecret(text, secret)) leaks.push(`${name} in ${where}`);
        for (const s of session) {
          for (const v of s.values) {
            if (!text.includes(v)) continue;
            // Allowed only in the body of a role presign answer that hands out exactly these credentials.
            const own = session.find((o) => o.exchange === e);
            const inBodyOnly = !e.statusLine.includes(v) && !e.headers.some(([n, h]) => n.includes(v) || h.includes(v));
            if (!own || !own.values.includes(v) || !inBodyOnly) leaks.push(`role session credential ${v.slice(0, 6)}… in ${where}`);
          }
        }
      }
      assert.deepEqual(leaks, [], `${leaks.length} leaks`);
    });
  }

  it('the search finds what it looks for (a planted secret, signature and URL are reported)', () => {
    const line = `{"level":"info","msg":"request","path":"/v1/blob/x?X-Cachegate-Signature=abc","tok":"${T.local}"}`;
    assert.ok(staticSecrets.some(([, s]) => containsSecret(line, s)));
    // A masked token that still shows its last 10 characters counts; its public short-token part does not.
    assert.ok(containsSecret(`token …${T.s3.slice(-10)}`, T.s3));
    assert.ok(!containsSecret(`runner/${T.s3.slice(5, 14)}/project/1`, T.s3));
    assert.ok(LOG_PATTERNS.some((p) => p.test(line)));
    assert.deepEqual(signatureValues('http://h/x?X-Amz-Signature=0123456789abcdef0123'), ['0123456789abcdef0123']);
  });
});
