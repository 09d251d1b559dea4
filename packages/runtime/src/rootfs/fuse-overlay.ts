/**
 * A container's overlay through fuse-overlayfs, for a user namespace whose kernel refuses
 * overlayfs (before Linux 5.11, or where a distribution turns it off): what podman does with its
 * `mount_program`.
 *
 * How: the child, root of its new user namespace, opens /dev/fuse itself (the kernel takes a FUSE
 * device only from an opener of the mounter's user namespace), puts it at an agreed fd number and
 * mounts `fuse` on its root with `fd=N`, then pauses. This process takes a copy of that fd
 * (pidfd_getfd), starts fuse-overlayfs on it (`/dev/fd/3`: a FUSE device that is mounted
 * already), drops its copy and lets the child go on; the child closes its own before anything of
 * the image runs. The server runs in box's namespaces, as the user: the container never sees it
 * and cannot signal it, and it ends by itself once the container's mount namespace, and so the
 * mount, is gone. Should it die early, no copy of the device is left open and the container's
 * file operations fail (ENOTCONN) instead of waiting for ever.
 *
 * Threat model: the device reaches the container's process only for the mount (a container
 * holding it could answer its own root's file requests). `default_permissions` makes the kernel
 * check modes and owners itself, as overlayfs does: the server runs as the namespace's root and
 * would otherwise let every request through.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { dupCloexec, pidfdGetfd, pidfdOpen } from '@box/sys';
import { RuntimeError } from '../errors.js';
import { SetupPause } from '../process/setup-pause.js';
import { fuseOverlayOptions } from './fuse-options.js';
import type { Overlay } from './prepare.js';

/** The child's side: where it puts the device, and the pause that waits for the server. */
export interface FuseMount {
  deviceFd: number;
  pauseFd: number;
}

export class FuseOverlay {
  readonly pause: SetupPause;
  /**
   * The child's agreed number for the device: held here by a placeholder (/dev/null) until the
   * child runs, so no fd made meanwhile (the spawn's own pipes, stdio copies) can get it; in the
   * child, dup3 replaces only its copy of the placeholder.
   */
  readonly deviceFd: number;
  #placeholder: number | undefined;
  readonly #options: string;

  constructor(
    private readonly program: string,
    overlay: Overlay,
  ) {
    this.#options = fuseOverlayOptions(overlay);
    this.pause = new SetupPause((pid) => this.serve(pid));
    const devNull = openSync('/dev/null', 'r');
    try {
      this.#placeholder = dupCloexec(devNull, 64);
    } catch (error) {
      this.pause.close();
      throw error;
    } finally {
      closeSync(devNull);
    }
    this.deviceFd = this.#placeholder;
  }

  /** Once the child runs (or could not): the number is the child's alone. */
  releasePlaceholder(): void {
    if (this.#placeholder === undefined) return;
    closeSync(this.#placeholder);
    this.#placeholder = undefined;
  }

  get child(): FuseMount {
    return { deviceFd: this.deviceFd, pauseFd: this.pause.childFd };
  }

  /** Starts the server on the child's mounted device; this process then holds no copy of it. */
  private async serve(pid: number): Promise<void> {
    const pidfd = pidfdOpen(pid);
    let device: number;
    try {
      device = pidfdGetfd(pidfd, this.deviceFd);
    } finally {
      closeSync(pidfd);
    }
    try {
      // No environment of box's (FUSE_OVERLAYFS_* would change how it marks whiteouts).
      const server = spawn(this.program, ['-f', '-o', this.#options, '/dev/fd/3'], {
        stdio: ['ignore', 'ignore', 'ignore', device],
        detached: true,
        env: {},
      });
      await new Promise<void>((resolve, reject) => {
        server.once('spawn', resolve);
        server.once('error', (error) =>
          reject(new RuntimeError('EFUSE', `cannot start ${this.program}: ${error.message}`)),
        );
      });
      server.unref();
    } finally {
      closeSync(device);
    }
  }

  /** After a failed start: nothing of it stays open. */
  close(): void {
    this.pause.close();
    this.releasePlaceholder();
  }
}
