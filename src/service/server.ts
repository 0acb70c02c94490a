/**
 * `cachegate serve`: binds the app to a socket, keeps the configuration current (SIGHUP and file
 * changes; an invalid new configuration is refused and the old one kept), and shuts down cleanly.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import { hasErrors, loadConfig, type LoadOptions } from '../config/load.ts';
import { watchConfigFile, type ConfigWatch } from '../config/watch.ts';
import { isLoopback, parseListen } from '../config/listen.ts';
import type { CacheAdapter } from '../adapter.ts';
import type { Config } from '../config/types.ts';
import { effectiveMaxConnections } from '../config/connection-limits.ts';
import { CacheGateError } from '../errors.ts';
import { createLogger, type Logger } from '../log.ts';
import { VERSION } from '../version.ts';
import { startS3Api } from '../s3api/server.ts';
import { ConnectionGuard } from './connection-guard.ts';
import { UploadSlots, slotLimits } from './upload-slots.ts';
import { createListener } from './listener.ts';
import { listenOn } from './listen-on.ts';
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
  /** The S3 front door ([cachegate.s3_api]), when configured, e.g. http://127.0.0.1:9000 */
  s3ApiUrl?: string;
  /** Re-reads the configuration; resolves false when the new one was refused. `why` goes to the log line. */
  reload: (why?: string) => Promise<boolean>;
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
  instrumentState(metrics, state, log);
  // One max_uploads for both listeners: their uploads share the process's descriptors and memory.
  const uploads = new UploadSlots(() => slotLimits((state as ServiceState).config.service.limits));
  const listener = createListener({ state: () => state as ServiceState, metrics, log, version: VERSION, uploads });
  // Checked every second rather than Node's 30 s, so headers_timeout is what a slow client gets.
  const server: Server = createServer({ connectionsCheckingInterval: 1000 }, listener);
  server.on('checkContinue', listener); // "100 Continue" only once authorized (upload-slots.ts)
  const guard = new ConnectionGuard(server, 0);
  applyLimits(guard, config.service, server);
  const { port, url } = await listenOn(server, listen.host, listen.port);
  const s3api = config.service.s3Api ? await startS3Api(config.service.s3Api.listen, { state: () => state as ServiceState, metrics, log, uploads }) : undefined;
  if (s3api) guard.attach(s3api.server);
  applyLimits(guard, config.service, server, s3api?.server);
  const wildcard = listen.host === '0.0.0.0' || listen.host === '::';
  if (publicUrl === '') publicUrl = wildcard ? `http://${hostname()}:${port}` : url;
  log.info({ address: url, backends: [...new Set(config.profiles.map((p) => p.cache.type))].join(','), profiles: config.profiles.length, version: VERSION }, `cachegate listening on ${url}`);
  if (config.service.publicUrl === '' && wildcard) {
    log.warn({}, `listening on all interfaces without [cachegate] public_url: local-backend URLs will use ${publicUrl}`);
  }
  logWarnings(log, config);
  if (state.anonymous) log.warn({}, `no token configured: serving without authentication (loopback only), as profile "${state.anonymous.profile.name}"`);

  let reloading: Promise<boolean> | undefined;
  // Every reload ends in one line saying what became of it: applied, unchanged, or kept the old one.
  const doReload = async (why: string): Promise<boolean> => {
    if (!opts.reload) return false;
    const next = loadConfig(opts.reload);
    if (hasErrors(next)) {
      metrics.configReloads.inc({ result: 'invalid' });
      for (const f of next.findings.filter((x) => x.level === 'error')) log.error({ field: f.field }, f.message);
      log.error({ source: next.source, trigger: why, result: 'invalid' }, 'configuration reload: the new configuration is invalid; keeping the previous one');
      return false;
    }
    if (JSON.stringify(next) === JSON.stringify((state as ServiceState).config)) {
      metrics.configReloads.inc({ result: 'unchanged' });
      log.info({ source: next.source, trigger: why, result: 'unchanged' }, 'configuration reload: unchanged');
      return true;
    }
    try {
      authCheck(next);
      if (next.service.listen !== config.service.listen) log.warn({}, 'the listen address changed: that takes a restart');
      if (next.service.s3Api?.listen !== config.service.s3Api?.listen) log.warn({}, '[cachegate.s3_api] listen changed: the S3 front door\'s listener changes with a restart (its keys are reloaded now)');
      const prev = state as ServiceState;
      const built = await ServiceState.build(next, { log, publicUrl: () => publicUrl, signingKey, previous: prev, instrument });
      state = built;
      applyLimits(guard, next.service, server, s3api?.server);
      instrumentState(metrics, built, log);
      metrics.configReloads.inc({ result: 'ok' });
      log.info({ source: next.source, trigger: why, result: 'applied', profiles: next.profiles.length }, 'configuration reload: applied');
      // The same warnings as at start (two runners sharing one namespace, unknown keys, …): a reload
      // that brings such a configuration must say so, not only the next restart.
      logWarnings(log, next);
      // Requests in flight may still hold retired adapters: close them a little later.
      const retired = prev.retiredBy(built);
      setTimeout(() => void Promise.all(retired.map((a) => a.close?.())).catch(() => undefined), 30_000).unref();
      return true;
    } catch (err) {
      metrics.configReloads.inc({ result: 'invalid' });
      log.error({ err: (err as Error).message, trigger: why, result: 'invalid' }, 'configuration reload: the new configuration could not be applied; keeping the previous one');
      return false;
    }
  };
  const reload = (why = 'api'): Promise<boolean> => {
    const run = (): Promise<boolean> => doReload(why);
    reloading = (reloading ?? Promise.resolve(true)).then(run, run);
    return reloading;
  };

  let watcher: ConfigWatch | undefined;
  const file = opts.reload?.file;
  if (file && opts.watch !== false) {
    watcher = watchConfigFile(file, () => void reload('file changed'), {
      onError: (message) => log.warn({ err: message }, 'cannot watch the configuration file; reload with SIGHUP'),
    });
  }
  const onHup = (): void => {
    watcher?.rearm();
    void reload('SIGHUP');
  };
  if (opts.sighup) process.on('SIGHUP', onHup);

  return {
    url,
    port,
    ...(s3api ? { s3ApiUrl: s3api.url } : {}),
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
      await s3api?.close();
      await Promise.all([...(state as ServiceState).adapters.values()].map((a) => a.close?.()));
    },
  };
}

/**
 * [cachegate] timeouts and connection cap onto the running servers (at start and on reload). The
 * front door's connections get the same timeouts and count against the same cap, but keep idle
 * connections for its own keep_alive_timeout (docs/s3-api.md).
 */
function applyLimits(guard: ConnectionGuard, service: Pick<Config['service'], 'limits' | 's3Api'>, server: Server, s3apiServer?: Server): void {
  const { limits } = service;
  for (const s of s3apiServer ? [server, s3apiServer] : [server]) {
    s.headersTimeout = limits.headersTimeout * 1000;
    s.requestTimeout = limits.requestTimeout * 1000;
    s.keepAliveTimeout = limits.keepAliveTimeout * 1000;
    s.timeout = limits.idleTimeout * 1000; // a socket with no byte either way for this long is destroyed
  }
  if (s3apiServer && service.s3Api) s3apiServer.keepAliveTimeout = service.s3Api.keepAliveTimeout * 1000;
  guard.max = effectiveMaxConnections(limits);
}

function instrumentState(metrics: Metrics, state: ServiceState, log: Logger): void {
  state.limiter.onLimited = (principal) => metrics.rateLimited.inc({ principal });
  state.authFailures.onRefused = () => metrics.authLocked.inc();
  state.authFailures.onLocked = (address) => log.warn({ address }, `client ${address} failed to authenticate ${state.authFailures.burst} times: its requests with credentials get 429 until it is below [cachegate] auth_failure_limit (${state.authFailures.rate} per second)`);
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

/** Every finding of a configuration that is not an error, as a WARN line naming its field. */
function logWarnings(log: Logger, config: Config): void {
  for (const f of config.findings) if (f.level !== 'error') log.warn({ field: f.field }, f.message);
}
