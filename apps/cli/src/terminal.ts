/**
 * `-t`: the container's terminal is a pty opened inside its own devpts; the
 * master side arrives here over the console socket. This side copies between
 * our stdio and the master, puts our terminal in raw mode and passes window
 * size changes on.
 */
import tty from 'node:tty';
import { dupCloexec, getWindowSize, isatty, setWindowSize, type WindowSize } from '@box/sys';
import { CliError } from './errors.js';

/**
 * docker's check before `-it`: with input asked for through a terminal, stdin must be one (a
 * pipe would otherwise be taken as the terminal's input and the container wait on it for ever).
 */
export function checkInputIsTerminal(flags: {
  tty?: boolean;
  interactive?: boolean;
  detach?: boolean;
}): void {
  if (flags.tty && flags.interactive && !flags.detach && !process.stdin.isTTY)
    throw new CliError('the input device is not a TTY', 1);
}

export function currentWindowSize(): WindowSize | undefined {
  for (const fd of [1, 0, 2]) {
    if (isatty(fd)) {
      try {
        return getWindowSize(fd);
      } catch {
        // try the next one
      }
    }
  }
  return undefined;
}

export interface AttachedTerminal {
  /** Resolves when the container side closed and all its output was written. */
  drained: Promise<void>;
  detach(): void;
}

export function attachTerminal(master: number, interactive: boolean): AttachedTerminal {
  const stdin = process.stdin;
  const rawMode = interactive && stdin.isTTY;
  if (rawMode) stdin.setRawMode(true);

  const reader = new tty.ReadStream(master);
  const writerFd = dupCloexec(master);
  const writer = new tty.WriteStream(writerFd);
  reader.pipe(process.stdout, { end: false });
  // Once the last process holding the slave exits, reading the master fails with EIO: that is the end.
  const drained = new Promise<void>((resolve) => {
    reader.on('error', () => resolve());
    reader.on('end', resolve);
    reader.on('close', resolve);
  });

  if (interactive) stdin.pipe(writer);

  const onResize = () => {
    const size = currentWindowSize();
    if (size) setWindowSize(master, size);
  };
  process.stdout.on('resize', onResize);
  process.on('SIGWINCH', onResize);

  let detached = false;
  return {
    drained,
    detach() {
      if (detached) return;
      detached = true;
      process.stdout.off('resize', onResize);
      process.off('SIGWINCH', onResize);
      if (interactive) stdin.unpipe(writer);
      if (rawMode) stdin.setRawMode(false);
      stdin.pause();
      reader.destroy();
      writer.destroy();
    },
  };
}

/**
 * The caller's terminal for a container attached through the box service (attach, run -it): raw
 * when our input goes to its terminal, its window size following ours. Returns the undoing.
 */
export function followTerminal(attachment: { resize(size: WindowSize): void }, raw: boolean): () => void {
  const stdin = process.stdin;
  const rawMode = raw && stdin.isTTY;
  if (rawMode) stdin.setRawMode(true);
  const onResize = () => {
    const size = currentWindowSize();
    if (size) attachment.resize(size);
  };
  process.stdout.on('resize', onResize);
  process.on('SIGWINCH', onResize);
  return () => {
    process.stdout.off('resize', onResize);
    process.off('SIGWINCH', onResize);
    if (rawMode) stdin.setRawMode(false);
    stdin.pause();
  };
}
