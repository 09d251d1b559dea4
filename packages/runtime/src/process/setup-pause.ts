import { Socket } from 'node:net';
import { close, socketPair } from '@box/sys';

/**
 * A pause of the child's set-up on a socket pair (before pivot_root for the OCI createContainer
 * hooks; after a FUSE mount, for its server to start): the child writes one byte when it gets
 * there and reads one back. This process listens from the sync point on, and drops its copy of
 * the child's end there, so a child that dies before the pause is seen (EOF) rather than waited
 * for.
 */
export class SetupPause {
  readonly childFd: number;
  private readonly parentFd: number;
  private childOpen = true;
  private socket: Socket | undefined;
  private result: Promise<void> = Promise.resolve();
  /** The callback's error, once it failed. */
  failure: unknown;

  constructor(private readonly callback: (pid: number) => Promise<void>) {
    [this.parentFd, this.childFd] = socketPair();
  }

  listen(pid: number): void {
    this.closeChildEnd();
    const socket = new Socket({ fd: this.parentFd, readable: true, writable: true });
    this.socket = socket;
    this.result = new Promise<void>((resolve, reject) => {
      let paused = false;
      socket.once('data', () => {
        paused = true;
        this.callback(pid).then(
          () => socket.end(Buffer.from([1]), () => resolve()),
          (error: unknown) => {
            // The child sees EOF and stops; the caller kills it.
            this.failure = error;
            socket.destroy();
            reject(error);
          },
        );
      });
      socket.on('error', (error) => (paused ? undefined : reject(error)));
      // The child ended before its pause: its own failure is reported by spawn.
      socket.on('end', () => (paused ? undefined : resolve()));
    });
    // Settled by done(); not an unhandled rejection meanwhile.
    this.result.catch(() => undefined);
  }

  /** Settles when the pause is over (or never came); rejects with the callback's error. */
  done(): Promise<void> {
    return this.result;
  }

  close(): void {
    this.closeChildEnd();
    if (this.socket) this.socket.destroy();
    else close(this.parentFd);
  }

  private closeChildEnd(): void {
    if (!this.childOpen) return;
    this.childOpen = false;
    close(this.childFd);
  }
}
