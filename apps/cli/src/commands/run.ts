/**
 * `box run`: flags → one call into the engine → exit code. With -d, engine.run (the service
 * owns the container); with -it, engine.create and engine.attach starting it (the service owns
 * it, so that the detach keys can leave it running); without -t, engine.runPiped (its stdio are
 * pipes copied to ours); with -t alone, engine.runAttached with its terminal's master sent over
 * a socket pair and attached to ours (terminal.ts).
 */
import { closeSync } from 'node:fs';
import { Writable } from 'node:stream';
import {
  type AttachedProcess,
  type ContainerAttachment,
  type CreateOptions,
  parseDetachKeys,
} from '@box/runtime';
import { receiveFd, socketPair } from '@box/sys';
import { type CreateFlags, createOptions } from '../create-flags.js';
import { openEngine } from '../engine.js';
import { CliError } from '../errors.js';
import { attachTerminal, checkInputIsTerminal, currentWindowSize, followTerminal } from '../terminal.js';
import { endOf } from './attach.js';

export interface RunFlags extends CreateFlags {
  detach?: boolean;
  detachKeys?: string;
}

export async function run(image: string, command: string[], flags: RunFlags): Promise<number> {
  const options = createOptions(image, command, flags);
  // Checked before anything is made (docker: exit 125, no container).
  if (flags.detachKeys !== undefined) parseDetachKeys(flags.detachKeys);
  checkInputIsTerminal(flags);
  await (await import('./registry.js')).pullForContainer(image, flags.pull, flags.platform);
  const engine = openEngine();
  if (flags.detach) {
    // The box service starts and watches it; this process is done once it runs.
    const container = await engine.run(options);
    process.stdout.write(`${container.id}\n`);
    return 0;
  }
  if (flags.tty && flags.interactive) return runInteractive(engine, options, flags.detachKeys);
  let sockets: [number, number] | undefined;
  // Signals for the container are taken from the start, and passed on once it runs.
  const forwarder = forwardSignals();
  try {
    if (!flags.tty) {
      // Pipes, never box's own stdio (copied by this process, or by the service when it runs).
      // -a: a stream not attached is read and dropped (not shown here).
      const attached = options.attach ?? { stdin: false, stdout: true, stderr: true };
      const proc = await engine.runPiped(options, {
        stdin: flags.interactive && attached.stdin ? process.stdin : undefined,
        stdout: attached.stdout ? process.stdout : discard(),
        stderr: attached.stderr ? process.stderr : discard(),
      });
      forwarder.attach(proc);
      return (await proc.exited).exitCode;
    }
    // Its terminal: the master side arrives over a socket pair and is attached to ours.
    sockets = socketPair();
    const proc = await engine.runAttached(options, { consoleSocket: sockets[1] });
    forwarder.attach(proc);
    const terminal = attachTerminal(takeMaster(sockets[0]), flags.interactive ?? false);
    const status = await proc.exited;
    await Promise.race([terminal.drained, new Promise((r) => setTimeout(r, 500))]);
    terminal.detach();
    return status.exitCode;
  } finally {
    forwarder.stop();
    if (sockets) for (const fd of sockets) closeSync(fd);
  }
}

/**
 * `run -it`: the box service runs it, as a `run -dit` container, and this process attaches to it
 * from its first byte; the detach keys leave it running there (docker's Ctrl-P Ctrl-Q), exiting the
 * shell ends it with its status. A container that cannot start is removed, as with `run -d`.
 */
async function runInteractive(
  engine: ReturnType<typeof openEngine>,
  options: CreateOptions,
  detachKeys: string | undefined,
): Promise<number> {
  const created = await engine.create(options);
  let attachment: ContainerAttachment;
  try {
    attachment = await engine.attach(
      created.id,
      { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
      { start: true, detachKeys, size: currentWindowSize() },
    );
  } catch (error) {
    await engine.remove(created.id, { force: true }).catch(() => undefined);
    throw error;
  }
  return endOf(attachment, followTerminal(attachment, true));
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

/** A sink for a stream that is not attached. */
function discard(): Writable {
  return new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
}
