/** `box exec`: another process in a running container, in all of its namespaces and its cgroup. */
import { closeSync } from 'node:fs';
import { receiveFd, socketPair } from '@box/sys';
import { parseEnvFlags } from '../create-flags.js';
import { openEngine } from '../engine.js';
import { CliError } from '../errors.js';
import { attachTerminal, checkInputIsTerminal, currentWindowSize } from '../terminal.js';

export interface ExecFlags {
  interactive?: boolean;
  tty?: boolean;
  detach?: boolean;
  env: string[];
  workdir?: string;
  user?: string;
}

export async function exec(reference: string, command: string[], flags: ExecFlags): Promise<number> {
  checkInputIsTerminal(flags);
  const env = parseEnvFlags(flags.env);
  const size = flags.tty ? currentWindowSize() : undefined;
  const engine = openEngine();
  const options = {
    command,
    env,
    workdir: flags.workdir,
    user: flags.user,
    tty: (flags.tty ?? false) && !flags.detach,
    consoleSize: size && { height: size.rows, width: size.cols },
  };
  // -d: nothing (/dev/null).
  if (flags.detach) {
    await engine.exec(reference, options);
    return 0;
  }
  // Without -t: pipes, never box's own stdio (copied here, or by the service when it runs).
  if (!flags.tty) {
    const child = await engine.execPiped(reference, options, {
      stdin: flags.interactive ? process.stdin : undefined,
      stdout: process.stdout,
      stderr: process.stderr,
    });
    return (await child.exited).exitCode;
  }
  const sockets = socketPair();
  try {
    const child = await engine.exec(reference, options, { consoleSocket: sockets[1] });
    const master = receiveFd(sockets[0]);
    if (master === null) throw new CliError('the process did not send its terminal');
    const terminal = attachTerminal(master, flags.interactive ?? false);
    const status = await child.exited;
    await Promise.race([terminal.drained, new Promise((r) => setTimeout(r, 500))]);
    terminal.detach();
    return status.exitCode;
  } finally {
    for (const fd of sockets) closeSync(fd);
  }
}
