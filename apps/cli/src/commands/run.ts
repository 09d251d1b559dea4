/**
 * `box run`: flags → engine.runAttached (or engine.run with -d) → exit code. Without -t the
 * container's stdio are pipes this process copies (stdio.ts); with -t its terminal's master
 * arrives over a socket pair and is attached to ours (terminal.ts).
 */
import { closeSync } from 'node:fs';
import type { AttachedProcess } from '@box/runtime';
import { receiveFd, socketPair } from '@box/sys';
import { type CreateFlags, createOptions } from '../create-flags.js';
import { openEngine } from '../engine.js';
import { CliError } from '../errors.js';
import { type PipedStdio, pipeStdio } from '../stdio.js';
import { attachTerminal } from '../terminal.js';

export interface RunFlags extends CreateFlags {
  detach?: boolean;
}

export async function run(image: string, command: string[], flags: RunFlags): Promise<number> {
  if (flags.detach && flags.tty && flags.interactive) {
    throw new CliError('-d with -it is not supported yet: run without -it, then use box exec -it');
  }
  const options = createOptions(image, command, flags);
  const engine = openEngine();
  if (flags.detach) {
    // The box service starts and watches it; this process is done once it runs.
    const container = await engine.run(options);
    process.stdout.write(`${container.id}\n`);
    return 0;
  }
  let piped: PipedStdio | undefined;
  let sockets: [number, number] | undefined;
  // Signals for the container are taken from the start, and passed on once it runs.
  const forwarder = forwardSignals();
  try {
    // With a terminal the container's stdio is its pty; without, pipes (never box's own).
    if (flags.tty) sockets = socketPair();
    else piped = pipeStdio(flags.interactive ?? false);
    const proc = await engine.runAttached(options, { stdio: piped?.stdio, consoleSocket: sockets?.[1] });
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
    return status.exitCode;
  } finally {
    forwarder.stop();
    piped?.close();
    if (sockets) for (const fd of sockets) closeSync(fd);
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
  let target: AttachedProcess | undefined;
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
    attach(proc: AttachedProcess) {
      target = proc;
      for (const signal of pending.splice(0)) proc.kill(signal);
    },
    stop() {
      for (const [signal, handler] of handlers) process.off(signal, handler);
    },
  };
}
