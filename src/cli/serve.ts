/** `cachegate serve`. */
import { formatFindings } from '../config/check.ts';
import { hasErrors, loadConfig } from '../config/load.ts';
import { startService } from '../service/server.ts';
import { flushLogs } from '../log.ts';
import { configOptions, loadOptions, parse } from './args.ts';

export async function main(argv: string[]): Promise<number> {
  const { values } = parse(argv, configOptions);
  if (values.help) {
    process.stdout.write(
      'cachegate serve [--config FILE] [--listen HOST:PORT] [--data-dir DIR]\n' +
        '  --config FILE       config.toml [CACHEGATE_CONFIG]; without it the CACHE_* environment, else the local backend\n' +
        '  --listen HOST:PORT  where to listen (port 0 = a free one) [CACHEGATE_LISTEN]; never the runner\'s listen_address\n' +
        '  --data-dir DIR      the local backend\'s data [CACHEGATE_DATA_DIR]\n' +
        'SIGHUP or a change of the file reloads the configuration; SIGTERM stops after the requests in flight.\n',
    );
    return 0;
  }
  const opts = loadOptions(values);
  const config = loadConfig(opts);
  if (hasErrors(config)) {
    for (const line of formatFindings(config)) process.stderr.write(line + '\n');
    process.stderr.write('cachegate serve: the configuration has errors; not starting\n');
    return 1;
  }
  const service = await startService({ config, reload: opts, sighup: true });
  // Transfers in flight are let finish: the orchestrator's grace period (then SIGKILL) bounds that.
  // A second signal stops at once.
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        process.stderr.write(`${signal} again: exiting without waiting for requests in flight\n`);
        process.exit(1);
      }
      stopping = true;
      process.stderr.write(`${signal}: shutting down (requests in flight may finish; send ${signal} again to stop at once)\n`);
      // Every line logged until now (a last 503's ERROR, its request line) is written before exit.
      void service.close().then(flushLogs, flushLogs).then(resolve, resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return 0;
}
