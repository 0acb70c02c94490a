/** Runs a client program (aws, python3, go, curl, a built Go program) with a minimal environment. */
import { execFile } from 'node:child_process';

/** Async on purpose: the service under test runs in the test's process. */
export function run(cmd: string, args: string[], env: Record<string, string> = {}, cwd?: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((res) => {
    execFile(cmd, args, { env: { PATH: '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...env }, cwd, maxBuffer: 1 << 24 }, (error, stdout, stderr) => {
      res({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out: stdout, err: stderr });
    });
  });
}
