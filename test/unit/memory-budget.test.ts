/**
 * The helper's memory budget (src/archive/memory-budget.ts): sizes as users write them, the cgroup
 * limit read from v1 and v2 files, the precedence flag > CACHE_HELPER_MEMORY > cgroup, and small
 * settings for a small budget.
 */
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cgroupMemoryLimit, defaultSettings, helperMemorySettings, parseMemorySize, resolveBudget, settingsFor, SMALL_BUDGET, TIGHT_BUDGET } from '../../src/archive/memory-budget.ts';

const MiB = 1024 * 1024;

describe('parseMemorySize', () => {
  it('reads binary, decimal and Kubernetes units', () => {
    assert.equal(parseMemorySize('128MiB', 'x'), 128 * MiB);
    assert.equal(parseMemorySize('128Mi', 'x'), 128 * MiB);
    assert.equal(parseMemorySize('256MB', 'x'), 256e6);
    assert.equal(parseMemorySize('256m', 'x'), 256e6);
    assert.equal(parseMemorySize('1GiB', 'x'), 1024 * MiB);
    assert.equal(parseMemorySize('1.5G', 'x'), 1.5e9);
    assert.equal(parseMemorySize('134217728', 'x'), 128 * MiB);
    assert.equal(parseMemorySize(' 64 KiB ', 'x'), 64 * 1024);
  });
  it('takes 0 / none / unlimited as no budget', () => {
    for (const t of ['0', 'none', 'unlimited', 'max']) assert.equal(parseMemorySize(t, 'x'), 0);
  });
  it('refuses anything else with a message naming the setting', () => {
    for (const t of ['', 'lots', '-1', '12 parsecs', '1TB', '0x10']) assert.throws(() => parseMemorySize(t, 'CACHE_HELPER_MEMORY'), /CACHE_HELPER_MEMORY: .* is not a memory size/);
  });
});

describe('cgroupMemoryLimit', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'cg-memory-budget-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const fake = async (name: string, files: Record<string, string>, cgroupFile: string): Promise<[string, string]> => {
    const dir = join(root, name);
    for (const [p, text] of Object.entries(files)) {
      await mkdir(join(dir, 'fs', p, '..'), { recursive: true });
      await writeFile(join(dir, 'fs', p), text);
    }
    await writeFile(join(dir, 'cgroup'), cgroupFile);
    return [join(dir, 'fs'), join(dir, 'cgroup')];
  };

  it('reads cgroup v2 memory.max in a container (namespace root)', async () => {
    assert.equal(cgroupMemoryLimit(...(await fake('v2', { 'memory.max': '134217728\n' }, '0::/\n'))), 128 * MiB);
  });
  it('follows the v2 path of /proc/self/cgroup', async () => {
    assert.equal(cgroupMemoryLimit(...(await fake('v2path', { 'memory.max': 'max\n', 'kubepods/pod1/c1/memory.max': '268435456\n' }, '0::/kubepods/pod1/c1\n'))), 256 * MiB);
  });
  it('reads cgroup v1 memory.limit_in_bytes, root and path', async () => {
    assert.equal(cgroupMemoryLimit(...(await fake('v1', { 'memory/memory.limit_in_bytes': '201326592\n' }, '4:memory:/\n'))), 192 * MiB);
    assert.equal(cgroupMemoryLimit(...(await fake('v1path', { 'memory/memory.limit_in_bytes': '9223372036854771712\n', 'memory/docker/abc/memory.limit_in_bytes': '134217728\n' }, '5:cpu,memory:/docker/abc\n'))), 128 * MiB);
  });
  it('says none for "max", v1 unlimited and no files', async () => {
    assert.equal(cgroupMemoryLimit(...(await fake('max', { 'memory.max': 'max\n' }, '0::/\n'))), undefined);
    assert.equal(cgroupMemoryLimit(...(await fake('v1max', { 'memory/memory.limit_in_bytes': '9223372036854771712\n' }, '4:memory:/\n'))), undefined);
    assert.equal(cgroupMemoryLimit(join(root, 'nothing'), join(root, 'nothing', 'cgroup')), undefined);
  });
});

describe('resolveBudget', () => {
  const cgroup = (): number => 128 * MiB;
  it('flag, then CACHE_HELPER_MEMORY, then the cgroup', () => {
    assert.deepEqual(resolveBudget('512MiB', { CACHE_HELPER_MEMORY: '64MiB' }, cgroup), { budget: 512 * MiB, source: 'flag' });
    assert.deepEqual(resolveBudget(undefined, { CACHE_HELPER_MEMORY: '64MiB' }, cgroup), { budget: 64 * MiB, source: 'env' });
    assert.deepEqual(resolveBudget(undefined, {}, cgroup), { budget: 128 * MiB, source: 'cgroup' });
    assert.deepEqual(resolveBudget(undefined, {}, () => undefined), { budget: undefined, source: 'none' });
  });
  it('0 turns the budget off, the cgroup limit included', () => {
    assert.deepEqual(resolveBudget('0', {}, cgroup), { budget: undefined, source: 'none' });
    assert.deepEqual(resolveBudget(undefined, { CACHE_HELPER_MEMORY: 'none' }, cgroup), { budget: undefined, source: 'none' });
  });
});

describe('settingsFor', () => {
  it('no budget and a large one: the defaults', () => {
    assert.deepEqual(settingsFor(undefined, 'none', 2), { budget: undefined, source: 'none', ...defaultSettings(2) });
    assert.deepEqual(settingsFor(SMALL_BUDGET, 'env', 8), { budget: SMALL_BUDGET, source: 'env', ...defaultSettings(8) });
    assert.equal(defaultSettings(2).transferConcurrency, 16);
    assert.equal(defaultSettings(8).zstdFrameWorkers, 4);
    assert.equal(defaultSettings(3).zstdFrameWorkers, 3);
  });
  it('one or two CPUs: one tar.zst frame thread by default (the main thread needs the other CPU; Session 7)', () => {
    assert.equal(defaultSettings(1).zstdFrameWorkers, 1);
    assert.equal(defaultSettings(2).zstdFrameWorkers, 1);
    assert.equal(defaultSettings(2).zstdFrameBuffers, 3);
    assert.equal(settingsFor(TIGHT_BUDGET, 'cgroup', 2).zstdFrameWorkers, 1, 'a budget never gives more threads than the default');
  });
  it('a small budget: fewer parts, workers and buffers', () => {
    for (const cpus of [1, 2, 8]) {
      const d = defaultSettings(cpus);
      const s = settingsFor(128 * MiB, 'cgroup', cpus);
      assert.ok(s.transferConcurrency <= 4 && s.transferConcurrency < d.transferConcurrency);
      assert.ok(s.zstdFrameWorkers <= 2 && s.zstdFrameWorkers >= 1);
      assert.ok(s.zstdFrameBuffers < d.zstdFrameBuffers && s.zstdFrameBuffers > s.zstdFrameWorkers);
      assert.ok(s.largeEntryWorkers < d.largeEntryWorkers);
      assert.ok(s.extractInFlightBytes < d.extractInFlightBytes);
    }
  });
  it('a tight budget (a 128 MiB container): one tar.zst frame worker; 192–256 MiB: two', () => {
    assert.equal(settingsFor(128 * MiB, 'cgroup', 8).zstdFrameWorkers, 1);
    assert.equal(settingsFor(TIGHT_BUDGET - 1, 'cgroup', 8).zstdFrameWorkers, 1);
    assert.equal(settingsFor(TIGHT_BUDGET, 'cgroup', 8).zstdFrameWorkers, 2);
    assert.equal(settingsFor(TIGHT_BUDGET, 'cgroup', 1).zstdFrameWorkers, 1);
  });
  it('helperMemorySettings names the source', () => {
    assert.equal(helperMemorySettings(undefined, { CACHE_HELPER_MEMORY: '128Mi' }, () => undefined).source, 'env');
    assert.throws(() => helperMemorySettings('much', {}, () => undefined), /--helper-memory/);
  });
});
