/** `box exec`: another process in a running container, in all of its namespaces and its cgroup. */
import { closeSync } from 'node:fs';
import { receiveFd, socketPair } from '@box/sys';
import { parseEnvFlags } from '../create-flags.js';
import { openEngine } from '../engine.js';
import { CliError } from '../errors.js';
import { type PipedStdio, pipeStdio } from '../stdio.js';
import { attachTerminal, currentWindowSize } from '../terminal.js';

export interface ExecFlags {
  interactive?: boolean;
  tty?: boolean;
  detach?: boolean;
  env: string[];
  workdir?: string;
  user?: string;
}

export async function exec(reference: string, command: string[], flags: ExecFlags): Promise<number> {
  const env = parseEnvFlags(flags.env);
  const size = flags.tty ? currentWindowSize() : undefined;
  let sockets: [number, number] | undefined;
  let piped: PipedStdio | undefined;
  try {
    // -d: nothing; -t: its pty; otherwise pipes (never box's own stdio).
    if (flags.tty && !flags.detach) sockets = socketPair();
    else if (!flags.detach) piped = pipeStdio(flags.interactive ?? false);
    const child = await openEngine().exec(
      reference,
      {
        command,
        env,
        workdir: flags.workdir,
        user: flags.user,
        tty: (flags.tty ?? false) && !flags.detach,
        consoleSize: size && { height: size.rows, width: size.cols },
      },
      { stdio: piped?.stdio, consoleSocket: sockets?.[1] },
    );
    piped?.started();
    if (flags.detach) return 0;
    let terminal: ReturnType<typeof attachTerminal> | undefined;
    if (sockets) {
      const master = receiveFd(sockets[0]);
      if (master === null) throw new CliError('the process did not send its terminal');
      terminal = attachTerminal(master, flags.interactive ?? false);
    }
    const status = await child.exited;
    if (terminal) {
      await Promise.race([terminal.drained, new Promise((r) => setTimeout(r, 500))]);
      terminal.detach();
    }
    // A process it left in the container may hold the pipes open: stop once they are quiet.
    await piped?.drained(500);
    return status.exitCode;
  } finally {
    piped?.close();
    if (sockets) for (const fd of sockets) closeSync(fd);
  }
}
