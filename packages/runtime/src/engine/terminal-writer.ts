/**
 * Writes attachers' input to a container's terminal without ever blocking the box service.
 *
 * Threat model: the service holds the master of every terminal container and runs on one
 * thread. A container that stops reading its terminal (`stty raw; sleep inf`, a paused one, a
 * paste larger than the tty's buffer) must not stop the service: Node's tty.WriteStream makes its
 * fd blocking, so a write there would hang every container the service watches. Here the master
 * is non-blocking, a write that would block leaves the rest queued and tried again a little later,
 * and `write` answers false once the queue is past its mark, so that the attacher's socket is
 * paused until `drain` (docker's backpressure), which keeps the queue bounded.
 */
import { writeSync } from 'node:fs';
import { setNonBlocking } from '@box/sys';

const HIGH_WATER = 64 * 1024;
const RETRY_MS = 20;

export class TerminalWriter {
  #queue: Buffer[] = [];
  #queued = 0;
  #timer: NodeJS.Timeout | undefined;
  #drains: (() => void)[] = [];
  #closed = false;

  constructor(private readonly fd: number) {
    setNonBlocking(fd);
  }

  /** Queues `chunk`; false when the caller should wait for `onDrain` before the next one. */
  write(chunk: Buffer): boolean {
    if (this.#closed) return true;
    this.#queue.push(chunk);
    this.#queued += chunk.length;
    this.#flush();
    return this.#queued < HIGH_WATER;
  }

  /** Calls `callback` once the queue is below its mark (at once if it is). */
  onDrain(callback: () => void): void {
    if (this.#closed || this.#queued < HIGH_WATER) callback();
    else this.#drains.push(callback);
  }

  /** Drops what is queued (the container ended). The fd is its owner's to close. */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#queue = [];
    this.#queued = 0;
    this.#wake();
  }

  #flush(): void {
    this.#timer = undefined;
    while (!this.#closed && this.#queue.length > 0) {
      const head = this.#queue[0]!;
      let written: number;
      try {
        written = writeSync(this.fd, head);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EWOULDBLOCK') {
          // The container is not reading: try again later, never wait here.
          this.#timer ??= setTimeout(() => this.#flush(), RETRY_MS);
          return;
        }
        this.close(); // EIO: the terminal is gone
        return;
      }
      this.#queued -= written;
      if (written === head.length) this.#queue.shift();
      else this.#queue[0] = head.subarray(written);
    }
    if (this.#queued < HIGH_WATER) this.#wake();
  }

  #wake(): void {
    const drains = this.#drains;
    this.#drains = [];
    for (const drain of drains) drain();
  }
}
