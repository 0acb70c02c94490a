/** Starts a real cachegate service on 127.0.0.1:0 with a throw-away data directory. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig, parseConfigText } from '../../src/config/load.ts';
import { createLogger } from '../../src/log.ts';
import { startService, type RunningService } from '../../src/service/server.ts';
import type { ServiceState } from '../../src/service/state.ts';
import type { CacheAdapter } from '../../src/adapter.ts';

export interface TestService extends RunningService {
  dataDir: string;
  configFile: string | undefined;
  /** Every log line the service wrote (JSON format). */
  logs: string[];
  stop: () => Promise<void>;
}

export async function startTestService(opts: { toml?: string; env?: Record<string, string>; watch?: boolean } = {}): Promise<TestService> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cachegate-test-'));
  const env = { ...opts.env, CACHEGATE_DATA_DIR: join(dataDir, 'data') };
  let configFile: string | undefined;
  if (opts.toml !== undefined) {
    configFile = join(dataDir, 'config.toml');
    await writeFile(configFile, opts.toml);
  }
  const loadOpts = { file: configFile, env, listen: '127.0.0.1:0' };
  const config = configFile ? parseConfigText(opts.toml as string, configFile, env, loadOpts) : loadConfig(loadOpts);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(line);
      cb();
    },
  });
  const log = createLogger({ format: 'json', level: 'debug', destination: sink });
  const svc = await startService({ config, reload: loadOpts, log, watch: opts.watch ?? false });
  return {
    ...svc,
    dataDir,
    configFile,
    logs,
    stop: async () => {
      await svc.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export async function presign(svc: { url: string }, body: unknown, token?: string): Promise<{ status: number; json: any }> {
  const res = await fetch(`${svc.url}/v1/presign`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

/** The adapter of the one runner named `name` (tests name their runners uniquely). */
export function adapterNamed(state: ServiceState, name: string): CacheAdapter | undefined {
  const found = state.runner(name);
  return found.ok ? state.adapterFor(found.profile) : undefined;
}
