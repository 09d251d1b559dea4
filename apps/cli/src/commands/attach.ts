/**
 * `box attach`: the caller's terminal (or stdio) joined to a running container the box service
 * runs: its output, our input when it was made with -i (until the detach keys), our window size.
 * Exits with the container's status, or 0 when detached (it runs on).
 */
import { type Container, type ContainerAttachment, type Engine, parseDetachKeys } from '@box/runtime';
import { openEngine } from '../engine.js';
import { CliError } from '../errors.js';
import { currentWindowSize, followTerminal } from '../terminal.js';

export interface AttachFlags {
  detachKeys?: string;
  noStdin?: boolean;
  /** true unless --sig-proxy=false (its default arrives as the string "true"). */
  sigProxy?: boolean | string;
}

export async function attach(reference: string, flags: AttachFlags): Promise<number> {
  if (flags.detachKeys !== undefined) parseDetachKeys(flags.detachKeys);
  const engine = openEngine();
  const container = await engine.inspect(reference);
  // docker's refusals, in its words and with its status.
  if (container.status === 'restarting')
    throw new CliError('You cannot attach to a restarting container, wait until it is running', 1);
  if (!container.running) throw new CliError('You cannot attach to a stopped container, start it first', 1);
  if (container.paused) throw new CliError('You cannot attach to a paused container, unpause it first', 1);
  return attachTo(engine, container, {
    stdin: !flags.noStdin,
    detachKeys: flags.detachKeys,
    sigProxy: flags.sigProxy !== false,
  });
}

/**
 * Joins the caller to `container` (starting it first when it does not run: `start -a`) until it
 * ends or the caller detaches: our input with `stdin` when it was made with -i, raw with its
 * terminal; without one, our signals passed on with `sigProxy`.
 */
export async function attachTo(
  engine: Engine,
  container: Container,
  options: { stdin: boolean; detachKeys?: string; sigProxy: boolean },
): Promise<number> {
  const tty = container.spec.process?.terminal === true;
  const stdin = options.stdin && container.openStdin === true;
  if (tty && stdin && !process.stdin.isTTY) throw new CliError('the input device is not a TTY', 1);
  const size = tty ? currentWindowSize() : undefined;
  const attachment = await engine.attach(
    container.id,
    { stdin: stdin ? process.stdin : undefined, stdout: process.stdout, stderr: process.stderr },
    { detachKeys: options.detachKeys, size, start: !container.running },
  );
  // With a terminal, ^C is a byte for it; without, a signal box passes on (docker's --sig-proxy).
  const proxy = !tty && options.sigProxy ? proxySignals(attachment) : () => undefined;
  try {
    return await endOf(attachment, followTerminal(attachment, tty && stdin));
  } finally {
    proxy();
  }
}

/** The container's status, or 0 with docker's words when the caller detached (said once `restore` gave the terminal back). */
export async function endOf(attachment: ContainerAttachment, restore: () => void): Promise<number> {
  let end: Awaited<ContainerAttachment['ended']>;
  try {
    end = await attachment.ended;
  } finally {
    restore();
  }
  if (!end.detached) return end.exitCode;
  process.stderr.write('read escape sequence\n');
  return 0;
}

const PROXIED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

function proxySignals(attachment: ContainerAttachment): () => void {
  const handlers = PROXIED.map((signal) => {
    const handler = () => attachment.signal(signal);
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
}
