/**
 * box-runtime's output: written straight to fds 1 and 2. Its callers (the shim, conmon) read a
 * few lines per command, and Node's process.stdout stream costs a command about 1.5 ms to set
 * up (its start-up is benchmarked against runc).
 */
import { writeSync } from 'node:fs';

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Writes all of `text` to `fd`, waiting out a full non-blocking pipe; a closed reader ends it. */
export function writeAll(fd: 1 | 2, text: string): void {
  const data = Buffer.from(text);
  for (let offset = 0; offset < data.length; ) {
    try {
      offset += writeSync(fd, data, offset);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EPIPE') return;
      if (code !== 'EAGAIN') throw error;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}
