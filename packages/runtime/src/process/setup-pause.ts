import { writeSync } from 'node:fs';
import { close, readWhenReady, setNonBlocking, socketPair } from '@box/sys';

/**
 * A pause of the child's set-up on a socket pair (before pivot_root for the OCI createContainer
 * hooks; after a FUSE mount, for its server to start): the child writes one byte when it gets
 * there and reads one back. This process listens from the sync point on, and drops its copy of
 * the child's end there, so a child that dies before the pause is seen (EOF) rather than waited
 * for. Read with plain read(2) on a wait for readability, not `net.Socket`: a container's start
 * does not load Node's streams.
 */
export class SetupPause {
  readonly childFd: number;
  private readonly parentFd: number;
  private childOpen = true;
  private parentOpen = true;
  /** Aborted as the parent end closes: a pending wait on it is dropped first. */
  private readonly closing = new AbortController();
  private result: Promise<void> = Promise.resolve();
  /** The callback's error, once it failed. */
  failure: unknown;

  constructor(private readonly callback: (pid: number) => Promise<void>) {
    [this.parentFd, this.childFd] = socketPair();
  }

  listen(pid: number): void {
    this.closeChildEnd();
    this.result = this.serve(pid);
    // Settled by done(); not an unhandled rejection meanwhile.
    this.result.catch(() => undefined);
  }

  private async serve(pid: number): Promise<void> {
    try {
      if (!(await this.paused())) return;
      try {
        await this.callback(pid);
      } catch (error) {
        // The child sees EOF and stops; the caller kills it.
        this.failure = error;
        throw error;
      }
      // Closed meanwhile (the start failed): the number may be another's by now.
      if (!this.parentOpen) return;
      try {
        writeSync(this.parentFd, Buffer.from([1]));
      } catch (error) {
        // The child is gone, and spawn reports its end.
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'EPIPE' && code !== 'ECONNRESET') throw error;
      }
    } finally {
      this.closeParentEnd();
    }
  }

  /** Whether the child got to its pause (its byte), or ended before (EOF) or was closed. */
  private async paused(): Promise<boolean> {
    setNonBlocking(this.parentFd);
    try {
      // 0: the child ended before its pause; its own failure is reported by spawn.
      return (await readWhenReady(this.parentFd, Buffer.alloc(1), 0, this.closing.signal)) === 1;
    } catch (error) {
      if (this.closing.signal.aborted) return false;
      throw error;
    }
  }

  /** Settles when the pause is over (or never came); rejects with the callback's error. */
  done(): Promise<void> {
    return this.result;
  }

  close(): void {
    this.closeChildEnd();
    this.closeParentEnd();
  }

  private closeParentEnd(): void {
    if (!this.parentOpen) return;
    this.parentOpen = false;
    // A pending wait is dropped first: the fd's number may be reused once it is closed.
    this.closing.abort();
    close(this.parentFd);
  }

  private closeChildEnd(): void {
    if (!this.childOpen) return;
    this.childOpen = false;
    close(this.childFd);
  }
}
