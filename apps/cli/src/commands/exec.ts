/** `box exec`: another process in a running container, in all of its namespaces and its cgroup. */
import { closeSync, openSync } from 'node:fs';
import { execInContainer, type Process } from '@box/runtime';
import { receiveFd, socketPair } from '@box/sys';
import { containerDir, findContainer } from '../containers.js';
import { parseEnvFlags, readSpec } from '../create.js';
import { CliError, translateStartError } from '../errors.js';
import { isRunning } from '../lifecycle.js';
import { reconcile } from '../recovery.js';
import { type PipedStdio, pipeStdio } from '../stdio.js';
import { attachTerminal, currentWindowSize } from '../terminal.js';
import { resolveUser } from '../user.js';

export interface ExecFlags {
  interactive?: boolean;
  tty?: boolean;
  detach?: boolean;
  env: string[];
  workdir?: string;
  user?: string;
}

export async function exec(reference: string, command: string[], flags: ExecFlags): Promise<number> {
  await reconcile();
  const state = findContainer(reference);
  if (!isRunning(state)) throw new CliError(`container ${state.id} is not running`);
  if (command.length === 0) throw new CliError('exec needs a command', 1);
  if (flags.workdir !== undefined && !flags.workdir.startsWith('/')) {
    throw new CliError(
      `the working directory '${flags.workdir}' is invalid, it needs to be an absolute path`,
    );
  }
  const spec = readSpec(containerDir(state.id));
  const base = spec.process!;
  const user = flags.user === undefined ? undefined : resolveUser(`/proc/${state.pid}/root`, flags.user);
  const size = flags.tty ? currentWindowSize() : undefined;
  const proc: Process = {
    ...base,
    terminal: flags.tty ?? false,
    consoleSize: size && { height: size.rows, width: size.cols },
    args: command,
    env: [...(base.env ?? []), ...(flags.tty ? ['TERM=xterm'] : []), ...parseEnvFlags(flags.env)],
    cwd: flags.workdir ?? base.cwd,
    user: user ? { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids } : base.user,
    capabilities: user && user.uid !== 0 ? { bounding: base.capabilities?.bounding } : base.capabilities,
  };
  let sockets: [number, number] | undefined;
  let devNull: number | undefined;
  let piped: PipedStdio | undefined;
  try {
    // -d: nothing; -t: its pty; otherwise pipes (never box's own stdio).
    if (flags.detach) devNull = openSync('/dev/null', 'r+');
    else if (flags.tty) sockets = socketPair();
    else piped = pipeStdio(flags.interactive ?? false);
    const child = await execInContainer({
      pid: state.pid!,
      process: proc,
      cgroupsPath: state.cgroupsPath,
      stdio: devNull !== undefined ? [devNull, devNull, devNull] : piped?.stdio,
      consoleSocket: sockets?.[1],
    });
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
    return status.signal !== null ? 128 + status.signal : (status.exitCode ?? 255);
  } catch (error) {
    throw translateStartError(error);
  } finally {
    if (devNull !== undefined) closeSync(devNull);
    piped?.close();
    if (sockets) for (const fd of sockets) closeSync(fd);
  }
}
