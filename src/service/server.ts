/**
 * `cachegate serve`: binds the app to a socket, keeps the configuration current (SIGHUP and file
 * changes; an invalid new configuration is refused and the old one kept), and shuts down cleanly.
 */
import { randomBytes } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import { hasErrors, loadConfig, type LoadOptions } from '../config/load.ts';
import { isLoopback, parseListen } from '../config/listen.ts';
import type { CacheAdapter } from '../adapter.ts';
import type { Config } from '../config/types.ts';
import { CacheGateError } from '../errors.ts';
import { createLogger, type Logger } from '../log.ts';
import { VERSION } from '../version.ts';
import { createListener } from './listener.ts';
import { Metrics } from './metrics.ts';
import { ServiceState } from './state.ts';

export interface ServiceOptions {
  config: Config;
  /** To reload from: the same options the first config was loaded with. */
  reload?: LoadOptions;
  log?: Logger;
  /** Watch the config file for changes (default true when reload.file is set). */
  watch?: boolean;
  /** Install a SIGHUP handler (default false; the CLI turns it on). */
  sighup?: boolean;
}

export interface RunningService {
  /** e.g. http://127.0.0.1:9170 */
  url: string;
  port: number;
  state: () => ServiceState;
  metrics: Metrics;
  /** Re-reads the configuration; resolves false when the new one was refused. */
  reload: () => Promise<boolean>;
  close: () => Promise<void>;
}

export async function startService(opts: ServiceOptions): Promise<RunningService> {
  const config = opts.config;
  if (hasErrors(config)) {
    throw new CacheGateError('invalid_config', 400, `configuration has errors: ${config.findings.filter((f) => f.level === 'error').map((f) => `${f.field}: ${f.message}`).join('; ')}`);
  }
  const log = opts.log ?? createLogger({ format: config.service.logFormat, level: config.service.logLevel });
  const listen = parseListen(config.service.listen);
  if (!listen) throw new CacheGateError('invalid_config', 400, `listen address "${config.service.listen}" is not HOST:PORT`);

  let state: ServiceState | undefined;
  let publicUrl = config.service.publicUrl;
  const signingKey = await localSigningKey(config);
  const metrics = new Metrics();

  const authCheck = (c: Config): void => {
    const anyToken = c.profiles.some((p) => p.token !== '') || c.service.apiTokens.length > 0;
    if (!anyToken && !isLoopback(listen.host)) {
      throw new CacheGateError('invalid_config', 400, `no runner token or API token is configured: refusing to serve without authentication on ${c.service.listen} (only a loopback address may do that)`);
    }
  };
  authCheck(config);

  const instrument = (a: CacheAdapter): void => {
    a.onAssumeRole = (result) => metrics.assumeRole.inc({ result });
  };
  state = await ServiceState.build(config, { log, publicUrl: () => publicUrl, signingKey, instrument });
  instrumentState(metrics, state);
  const server: Server = createServer(createListener({ state: () => state as ServiceState, metrics, log, version: VERSION }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  const url = `http://${shownHost}:${port}`;
  const wildcard = listen.host === '0.0.0.0' || listen.host === '::';
  if (publicUrl === '') publicUrl = wildcard ? `http://${hostname()}:${port}` : url;
  log.info({ address: url, backends: [...new Set(config.profiles.map((p) => p.cache.type))].join(','), profiles: config.profiles.length, version: VERSION }, `cachegate listening on ${url}`);
  if (config.service.publicUrl === '' && wildcard) {
    log.warn({}, `listening on all interfaces without [cachegate] public_url: local-backend URLs will use ${publicUrl}`);
  }
  for (const f of config.findings) log.warn({ field: f.field }, f.message);
  if (state.anonymous) log.warn({}, `no token configured: serving without authentication (loopback only), as profile "${state.anonymous.profile.name}"`);

  let reloading: Promise<boolean> | undefined;
  const doReload = async (): Promise<boolean> => {
    if (!opts.reload) return false;
    const next = loadConfig(opts.reload);
    if (hasErrors(next)) {
      metrics.configReloads.inc({ result: 'invalid' });
      for (const f of next.findings.filter((x) => x.level === 'error')) log.error({ field: f.field }, f.message);
      log.error({ source: next.source }, 'new configuration is invalid: keeping the previous one');
      return false;
    }
    try {
      authCheck(next);
      if (next.service.listen !== config.service.listen) log.warn({}, 'the listen address changed: that takes a restart');
      const prev = state as ServiceState;
      const built = await ServiceState.build(next, { log, publicUrl: () => publicUrl, signingKey, previous: prev, instrument });
      state = built;
      instrumentState(metrics, built);
      metrics.configReloads.inc({ result: 'ok' });
      log.info({ source: next.source, profiles: next.profiles.length }, 'configuration reloaded');
      // Requests in flight may still hold retired adapters: close them a little later.
      const retired = prev.retiredBy(built);
      setTimeout(() => void Promise.all(retired.map((a) => a.close?.())).catch(() => undefined), 30_000).unref();
      return true;
    } catch (err) {
      metrics.configReloads.inc({ result: 'invalid' });
      log.error({ err: (err as Error).message }, 'new configuration could not be applied: keeping the previous one');
      return false;
    }
  };
  const reload = (): Promise<boolean> => {
    reloading = (reloading ?? Promise.resolve(true)).then(doReload, doReload);
    return reloading;
  };

  let watcher: FSWatcher | undefined;
  const file = opts.reload?.file;
  if (file && opts.watch !== false) {
    let timer: NodeJS.Timeout | undefined;
    try {
      watcher = watch(file, () => {
        clearTimeout(timer);
        timer = setTimeout(() => void reload(), 250);
      });
      watcher.on('error', () => undefined);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cannot watch the configuration file; reload with SIGHUP');
    }
  }
  const onHup = (): void => {
    log.info({}, 'SIGHUP: reloading configuration');
    void reload();
  };
  if (opts.sighup) process.on('SIGHUP', onHup);

  return {
    url,
    port,
    state: () => state as ServiceState,
    metrics,
    reload,
    close: async () => {
      watcher?.close();
      if (opts.sighup) process.off('SIGHUP', onHup);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await Promise.all([...(state as ServiceState).adapters.values()].map((a) => a.close?.()));
    },
  };
}

function instrumentState(metrics: Metrics, state: ServiceState): void {
  state.limiter.onLimited = (principal) => metrics.rateLimited.inc({ principal });
  metrics.retainedStores = () => state.retainedStores().map((s) => s.stats());
  metrics.profiles.reset();
  for (const p of state.config.profiles) metrics.profiles.inc({ backend: p.cache.type });
}

/**
 * The secret for local-backend URLs: from configuration, or generated once and kept in the data
 * directory (mode 0600) so that URLs stay valid across restarts.
 */
async function localSigningKey(config: Config): Promise<Buffer> {
  if (config.service.localSigningKey !== '') return Buffer.from(config.service.localSigningKey, 'utf8');
  if (!config.profiles.some((p) => p.cache.type === 'local')) return randomBytes(32);
  const dir = config.service.dataDir;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, '.signing-key');
  try {
    const hex = (await readFile(file, 'utf8')).trim();
    if (/^[0-9a-f]{64}$/.test(hex)) return Buffer.from(hex, 'hex');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const key = randomBytes(32);
  try {
    await writeFile(file, key.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return Buffer.from((await readFile(file, 'utf8')).trim(), 'hex'); // another replica on the same dir won the race
  }
}
