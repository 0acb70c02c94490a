/** `cachegate serve`. */
import { formatFindings } from '../config/check.ts';
import { hasErrors, loadConfig } from '../config/load.ts';
import { startService } from '../service/server.ts';
import { configOptions, loadOptions, parse } from './args.ts';

export async function main(argv: string[]): Promise<number> {
  const { values } = parse(argv, configOptions);
  if (values.help) {
    process.stdout.write('cachegate serve [--config FILE] [--listen HOST:PORT] [--data-dir DIR]\n');
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
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      process.stderr.write(`${signal}: shutting down\n`);
      void service.close().then(resolve, resolve);
      setTimeout(resolve, 10_000).unref();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}
