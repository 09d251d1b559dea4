/**
 * `box run`: image → container record → OCI config → @box/runtime
 * startContainer → wait → exit code, with the container's writable layer as
 * an overlay mounted inside its own mount namespace.
 */
import { closeSync } from 'node:fs';
import { type ContainerProcess, startContainer } from '@box/runtime';
import { receiveFd, socketPair } from '@box/sys';
import { processStartTime, removeContainer, updateState, writeState } from '../containers.js';
import { type CreateFlags, prepareContainer } from '../create.js';
import { startDetached } from '../daemon/client.js';
import { CliError, translateStartError } from '../errors.js';
import { reconcile } from '../recovery.js';
import { type PipedStdio, pipeStdio } from '../stdio.js';
import { attachTerminal } from '../terminal.js';

export interface RunFlags extends CreateFlags {
  detach?: boolean;
}

export async function run(imageRef: string, command: string[], flags: RunFlags): Promise<number> {
  if (flags.detach && flags.tty && flags.interactive) {
    throw new CliError('-d with -it is not supported yet: run without -it, then use box exec -it');
  }
  await reconcile();
  const { container, state, spec } = await prepareContainer(imageRef, command, flags);
  if (flags.detach) {
    // The box service starts and watches it; this process is done once it runs.
    closeSync(container.lock);
    await startDetached(container.id);
    process.stdout.write(`${container.id}\n`);
    return 0;
  }

  let proc: ContainerProcess | undefined;
  let piped: PipedStdio | undefined;
  let sockets: [number, number] | undefined;
  // Signals for the container are taken from the start, and passed on once it runs.
  const forwarder = forwardSignals();
  try {
    // With a terminal the container's stdio is its pty; without, pipes (never box's own).
    if (flags.tty) sockets = socketPair();
    else piped = pipeStdio(flags.interactive ?? false);
    proc = await startContainer({
      spec,
      overlay: state.overlay,
      stdio: piped?.stdio,
      consoleSocket: sockets?.[1],
      dieWithParent: true,
      // Recorded before it runs, so a box killed from now on leaves a record that says so.
      onSync(pid) {
        writeState(container.dir, {
          ...state,
          status: 'running',
          pid,
          pidStartTime: processStartTime(pid),
          started: new Date().toISOString(),
        });
      },
    });
    forwarder.attach(proc);
    piped?.started();

    const terminal = sockets ? attachTerminal(takeMaster(sockets[0]), flags.interactive ?? false) : undefined;
    const status = await proc.exited;
    if (terminal) {
      await Promise.race([terminal.drained, new Promise((r) => setTimeout(r, 500))]);
      terminal.detach();
    }
    // Its processes are all gone: the pipes end once everything they held has been copied.
    await piped?.drained();
    const exitCode = status.signal !== null ? 128 + status.signal : (status.exitCode ?? 255);
    if (!flags.rm) {
      updateState(container.id, {
        status: 'exited',
        exitCode,
        oomKilled: status.oomKilled,
        finished: new Date().toISOString(),
      });
    }
    return exitCode;
  } catch (error) {
    proc?.kill('SIGKILL');
    if (proc) await proc.exited;
    await removeContainer(state);
    throw translateStartError(error);
  } finally {
    forwarder.stop();
    piped?.close();
    if (sockets) for (const fd of sockets) closeSync(fd);
    if (flags.rm && proc) await removeContainer(state);
    closeSync(container.lock);
  }
}

function takeMaster(socket: number): number {
  const fd = receiveFd(socket);
  if (fd === null) throw new CliError('the container did not send its terminal');
  return fd;
}

const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR2'];

/** Passes signals sent to box on to the container (docker's --sig-proxy), holding early ones until it runs. */
function forwardSignals() {
  let target: ContainerProcess | undefined;
  const pending: NodeJS.Signals[] = [];
  const handlers = FORWARDED.map((signal) => {
    const handler = () => {
      if (target) target.kill(signal);
      else pending.push(signal);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return {
    attach(proc: ContainerProcess) {
      target = proc;
      for (const signal of pending.splice(0)) proc.kill(signal);
    },
    stop() {
      for (const [signal, handler] of handlers) process.off(signal, handler);
    },
  };
}
