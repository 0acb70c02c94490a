/** src/transfer against Azurite with account-key SAS URLs from adapters/azure: block upload, plain PUT, ranged download. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BlobServiceClient, StorageSharedKeyCredential, type ContainerClient } from '@azure/storage-blob';
import { createAzureAdapter } from '../../adapters/azure/index.ts';
import type { CacheAdapter } from '../../src/adapter.ts';
import { download, upload } from '../../src/transfer/index.ts';
import { makeContext } from '../contract/context.ts';
import { startAzurite, type Azurite } from '../support/azurite.ts';

const MiB = 1024 * 1024;

describe('transfer ↔ Azurite (account-key SAS)', () => {
  let az: Azurite;
  let adapter: CacheAdapter;
  let container: ContainerClient;
  let dir: string;

  before(async () => {
    az = await startAzurite();
    container = new BlobServiceClient(az.serviceUrl, new StorageSharedKeyCredential(az.accountName, az.accountKey)).getContainerClient('cache');
    await container.create();
    adapter = await createAzureAdapter(makeContext({
      type: 'azure', path: '', shared: false, maxUploadedArchiveSize: 0,
      azure: { accountName: az.accountName, accountKey: az.accountKey, containerName: 'cache', storageDomain: '', serviceUrl: az.serviceUrl },
    }));
    dir = await mkdtemp(join(tmpdir(), 'cg-xfer-az-'));
  });
  after(async () => {
    await az?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const putUrl = (name: string, key: string) => adapter.presign({ method: 'PUT', objectName: name, expiresIn: 600, metadata: { cachekey: key } });
  const getUrl = (name: string) => adapter.presign({ method: 'GET', objectName: name, expiresIn: 600, metadata: {} });

  it('above one chunk: Put Block ×n (bounded concurrency) + Put Block List with the metadata; ranged download back', async () => {
    const name = 'runner/r1/project/1/blocks key';
    const data = randomBytes(3 * MiB + 1000);
    const file = join(dir, 'blocks.zip');
    await writeFile(file, data);
    const put = await putUrl(name, 'blocks key');
    assert.equal(put.headers['x-ms-blob-type'], 'BlockBlob');
    const res = await upload({ file, url: put.url, headers: put.headers, chunkSize: 1 * MiB, concurrency: 2 });
    assert.deepEqual(res, { status: 'uploaded', size: data.length, mode: 'azure-blocks', parts: 4 });

    const blob = container.getBlobClient(name);
    const props = await blob.getProperties();
    assert.equal(props.contentLength, data.length);
    assert.equal(props.blobType, 'BlockBlob');
    assert.equal(props.contentType, 'application/octet-stream');
    assert.deepEqual(props.metadata, { cachekey: 'blocks key' });
    const blocks = await blob.getBlockBlobClient().getBlockList('committed');
    assert.deepEqual(blocks.committedBlocks?.map((b) => b.size), [MiB, MiB, MiB, 1000]);

    const out = join(dir, 'az', 'cache.zip');
    const r = await download({ file: out, url: (await getUrl(name)).url, chunkSize: 1 * MiB, concurrency: 3 });
    assert.ok(r.status === 'downloaded' && r.ranged && r.parts === 4, JSON.stringify(r));
    assert.ok((await readFile(out)).equals(data));
    assert.equal(await readFile(join(dir, 'az', 'metadata.json'), 'utf8'), '{"cachekey":"blocks key"}');
  });

  it('up to one chunk: one Put Blob with x-ms-blob-type and the metadata', async () => {
    const name = 'runner/r1/project/1/small';
    const data = randomBytes(100_000);
    const file = join(dir, 'small.zip');
    await writeFile(file, data);
    const put = await putUrl(name, 'small');
    assert.deepEqual(await upload({ file, url: put.url, headers: put.headers, chunkSize: 1 * MiB }), { status: 'uploaded', size: data.length, mode: 'put', parts: 1 });
    const props = await container.getBlobClient(name).getProperties();
    assert.deepEqual(props.metadata, { cachekey: 'small' });
    const blocks = await container.getBlobClient(name).getBlockBlobClient().getBlockList('committed');
    assert.equal(blocks.committedBlocks?.length ?? 0, 0, 'not a block upload');
    const out = join(dir, 'small-back.zip');
    assert.equal((await download({ file: out, url: (await getUrl(name)).url })).status, 'downloaded');
    assert.ok((await readFile(out)).equals(data));
  });

  it('a read SAS cannot stage blocks: 403, not retried, nothing committed', async () => {
    const name = 'runner/r1/project/1/readonly';
    const file = join(dir, 'ro.zip');
    await writeFile(file, randomBytes(2 * MiB));
    const get = await getUrl(name);
    let retried = 0;
    await assert.rejects(upload({ file, url: get.url, headers: { 'x-ms-blob-type': 'BlockBlob' }, chunkSize: MiB, retryDelayMs: 1, onRetry: () => retried++ }), /put block \d failed: 403/);
    assert.equal(retried, 0);
    assert.equal(await container.getBlobClient(name).exists(), false);
  });
});
