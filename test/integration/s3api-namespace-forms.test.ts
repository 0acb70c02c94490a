/**
 * Other spellings of another runner's namespace on the S3 front door (session 9 review): case,
 * Unicode compatibility and normalization forms, fullwidth letters, zero-width characters, trailing
 * dots and blanks, a literal percent-encoding. The door compares names as received; none of these
 * may read, list, write or continue an upload in the victim's objects, and the victim's object stays
 * as it was. Real client (@aws-sdk/client-s3), on the local backend (its files are named by the
 * SHA-256 of the exact name, so another spelling is another file) and on Ceph RGW.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  CreateMultipartUploadCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client,
} from '@aws-sdk/client-s3';
import { rgw } from '../support/rgw.ts';
import { startTestService, type TestService } from '../support/service.ts';

const BUCKET = 'runner-cache';
const VICTIM = 'victimrun'; // short token of glrt-victimrun-…
const ATTACKER = 'attackerr';

/** Spellings that a lenient comparison (case-folding, NFKC, trimming, decoding twice) would take for `runner/<victim>/`. */
const FORMS = [
  `Runner/${VICTIM}`, `RUNNER/${VICTIM}`, `runner/${VICTIM.toUpperCase()}`, `runner/Victimrun`,
  `ｒｕｎｎｅｒ/${VICTIM}`, `runner/ｖｉｃｔｉｍｒｕｎ`, `run\u200bner/${VICTIM}`, `runner/${VICTIM}\u200b`, `\ufeffrunner/${VICTIM}`,
  `runner./${VICTIM}`, `runner /${VICTIM}`, `runner/${VICTIM}.`, `runner/${VICTIM} `, `runner/${VICTIM}\u00a0`,
  `%72unner/${VICTIM}`, `runner/%76ictimrun`, `runner%2F${VICTIM}`, `runner/vi\u0307ctimrun`, `runner/v\u0130ctimrun`.normalize('NFD'),
  `runner/${ATTACKER}/../${VICTIM}`, `runner/${ATTACKER}/..%2F${VICTIM}`, `runner/${ATTACKER}\u2215..\u2215${VICTIM}`,
];

function suite(name: string, cache: () => Promise<string>): void {
  describe(`S3 front door on ${name}: other spellings of another runner's namespace`, () => {
    let svc: TestService;
    let victim: S3Client;
    let attacker: S3Client;
    const own = `runner/${VICTIM}/project/1/secret`;
    before(async () => {
      const backend = await cache();
      const runner = (name: string, token: string): string => `[[runners]]\n  name = "${name}"\n  token = "${token}"\n  [runners.cache]\n${backend}\n`;
      const key = (ak: string, runnerName: string): string => `  [[cachegate.s3_api.keys]]\n    access_key = "${ak}"\n    secret_key = "${ak}-secret"\n    runner = "${runnerName}"\n`;
      svc = await startTestService({
        toml: `${runner('victim', `glrt-${VICTIM}-0001`)}${runner('attacker', `glrt-${ATTACKER}-0002`)}[cachegate.s3_api]\n  listen = "127.0.0.1:0"\n${key('VICTIMKEY0000001', 'victim')}${key('ATTACKERKEY00001', 'attacker')}`,
      });
      const client = (ak: string): S3Client => new S3Client({ endpoint: svc.s3ApiUrl, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: ak, secretAccessKey: `${ak}-secret` }, maxAttempts: 1 });
      victim = client('VICTIMKEY0000001');
      attacker = client('ATTACKERKEY00001');
      await victim.send(new PutObjectCommand({ Bucket: BUCKET, Key: own, Body: 'victim data' }));
    });
    after(async () => {
      victim?.destroy();
      attacker?.destroy();
      await svc?.stop();
    });

    /** Refused; or, for a literal name inside one's own namespace (`runner/<attacker>/..%2F…`), a miss there. */
    const refused = async (what: string, p: Promise<unknown>): Promise<void> => {
      const inOwn = what.includes(`"runner/${ATTACKER}/`);
      const r = await p.then(async (a) => {
        const body = (a as { Body?: { transformToString: () => Promise<string> } }).Body;
        assert.notEqual(await body?.transformToString(), 'victim data', `${what}: the victim's object was read`);
        return 'ok';
      }, (e: Error & { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode ?? 0);
      assert.ok(r === 403 || r === 400 || (inOwn && (r === 404 || r === 'ok')), `${what}: ${r}`);
    };

    it('GET, HEAD, PUT, ListObjectsV2, CreateMultipartUpload with each spelling: refused; the victim\'s object unchanged', async () => {
      for (const form of FORMS) {
        const key = `${form}/project/1/secret`;
        await refused(`GET ${JSON.stringify(key)}`, attacker.send(new GetObjectCommand({ Bucket: BUCKET, Key: key })));
        await refused(`HEAD ${JSON.stringify(key)}`, attacker.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })));
        await refused(`PUT ${JSON.stringify(key)}`, attacker.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'attacker data' })));
        await refused(`LIST ${JSON.stringify(form)}/`, attacker.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${form}/` })));
        await refused(`CreateMultipartUpload ${JSON.stringify(key)}`, attacker.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key })));
      }
      const got = await victim.send(new GetObjectCommand({ Bucket: BUCKET, Key: own }));
      assert.equal(await got.Body?.transformToString(), 'victim data');
      const listed = await victim.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `runner/${VICTIM}/` }));
      assert.deepEqual((listed.Contents ?? []).map((o) => o.Key), [own]);
    });

    it('the same spellings inside one\'s own namespace name other objects of one\'s own, never the victim\'s', async () => {
      for (const form of FORMS) {
        const key = `runner/${ATTACKER}/${form}/project/1/secret`;
        const put = await attacker.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'mine' })).then(() => 'stored', (e: Error) => e.name);
        if (put === 'stored') {
          const back = await attacker.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
          assert.equal(await back.Body?.transformToString(), 'mine');
        }
      }
      const got = await victim.send(new GetObjectCommand({ Bucket: BUCKET, Key: own }));
      assert.equal(await got.Body?.transformToString(), 'victim data');
      const listed = await victim.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `runner/${VICTIM}/` }));
      assert.deepEqual((listed.Contents ?? []).map((o) => o.Key), [own]);
    });
  });
}

suite('the local backend', async () => '    Type = "local"');
suite('Ceph RGW', async () => {
  const server = await rgw();
  return `    Type = "s3"\n${server.toml(await server.bucket('nsforms'))}`;
});
