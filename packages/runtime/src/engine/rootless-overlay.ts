/**
 * How a rootless container's overlay is mounted: by the kernel (overlayfs in a user namespace,
 * Linux 5.11 and later) or, only where the kernel refuses it, by fuse-overlayfs (see
 * ../rootfs/fuse-overlay.ts), as podman's `mount_program`. `BOX_ROOTLESS_OVERLAY=fuse-overlayfs`
 * asks for fuse-overlayfs every time, `=kernel` never.
 *
 * The kernel's refusal is seen where it happens, at the container's own overlay mount (EPERM or
 * ENODEV from "mount overlay on …"): that start is undone and made again with fuse-overlayfs;
 * once that works, the container's record says so from then on (its upper directory then has
 * fuse-overlayfs's marks, which the kernel's overlay would not read), and this process makes its
 * next containers on it. The record decides, not the environment of whoever starts the
 * container (the box service, started before the variable was set, say).
 */
import { closeSync, existsSync, openSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { EngineError } from '../errors.js';
import { fuseMountData, fuseOverlayOptions } from '../rootfs/fuse-options.js';
import { isRootless } from './rootless.js';

const DIRS = ['/usr/bin', '/usr/local/bin', '/bin'];
// What a kernel that will not mount overlay in a user namespace answers (not EINVAL or EACCES,
// which an ordinary problem of the layers gives too).
const REFUSALS = new Set(['EPERM', 'ENODEV']);

let kernelRefused = false;

function mode(): 'auto' | 'fuse-overlayfs' | 'kernel' {
  const value = process.env.BOX_ROOTLESS_OVERLAY;
  if (value === undefined || value === '') return 'auto';
  if (value === 'fuse-overlayfs' || value === 'kernel') return value;
  throw new EngineError('EINVAL', `BOX_ROOTLESS_OVERLAY=${value}: use fuse-overlayfs or kernel`);
}

function findFuseOverlayfs(): string | undefined {
  return DIRS.map((dir) => join(dir, 'fuse-overlayfs')).find((path) => existsSync(path));
}

function required(): string {
  const found = findFuseOverlayfs();
  if (!found)
    throw new EngineError(
      'EINVAL',
      `fuse-overlayfs not found in ${DIRS.join(', ')} (Debian: apt-get install fuse-overlayfs)`,
    );
  return found;
}

/** Whether a new container of this process goes on fuse-overlayfs (asked for, or seen needed). */
export function wantsFuseOverlay(): boolean {
  return fuseOverlayChoice() === true;
}

/**
 * This process's choice for a new container: true (asked for, or the kernel refused), false
 * (BOX_ROOTLESS_OVERLAY=kernel), or undefined (the kernel's, unless it refuses). Sent along to the
 * box service, whose environment is not the caller's.
 */
export function fuseOverlayChoice(): boolean | undefined {
  if (!isRootless()) return undefined;
  const wanted = mode();
  if (wanted === 'kernel') return false;
  if (wanted === 'fuse-overlayfs' || kernelRefused) {
    required(); // refused at create when it is not there
    return true;
  }
  return undefined;
}

/** A start on fuse-overlayfs after the kernel's refusal worked: this process's next go there too. */
export function noteKernelRefused(): void {
  kernelRefused = true;
}

/** The FUSE program a container's overlay is mounted with, or undefined for the kernel's. */
export function overlayProgramFor(record: { fuseOverlay?: boolean }): string | undefined {
  return record.fuseOverlay ? required() : undefined;
}

/**
 * After a failed start or mount with the kernel's overlay: fuse-overlayfs to do it again with
 * when the kernel refused the mount itself (and that is allowed), else undefined (the failure
 * stands).
 */
export function fuseFallbackFor(error: unknown): string | undefined {
  if (!isRootless() || !kernelRefusal(error)) return undefined;
  try {
    if (mode() !== 'auto') return undefined;
  } catch {
    return undefined; // the start's own error says more
  }
  return findFuseOverlayfs();
}

/** The kernel's refusal of an overlay mount: in a container's set-up, or this process's own. */
export function kernelRefusal(error: unknown): boolean {
  // By name, not instanceof: this module loads neither @box/sys nor @box/unionfs for a command
  // that never needs them (every `box run` asks wantsFuseOverlay).
  const isSetup = (e: unknown): e is { step: string; code: string } =>
    (e as Error | undefined)?.name === 'ChildSetupError';
  const cause = isSetup(error) ? error : (error as { cause?: unknown })?.cause;
  if (isSetup(cause)) return cause.step.startsWith('mount overlay on ') && REFUSALS.has(cause.code);
  const own = error as { code?: unknown; errno?: unknown };
  return own?.code === 'EUNIONFSMOUNT' && REFUSALS.has(String(own.errno));
}

/**
 * withOverlay through fuse-overlayfs in this process's mount namespace (`cp` and `export` of a
 * stopped rootless container run in one of their own, see rootless.ts): this process mounts
 * `fuse` on a device it opened, and the server runs on it as a child that dies with this process
 * (PR_SET_PDEATHSIG). So a killed box leaves nothing: its mount namespace, whose only members
 * were it and the server, goes with them.
 */
export async function withFuseOverlay<T>(
  program: string,
  options: { lowerdirs: readonly string[]; upperdir?: string; workdir?: string; noSymlinks?: boolean },
  fn: (merged: string) => T | Promise<T>,
): Promise<T> {
  const fuseOptions = fuseOverlayOptions(options);
  const [sys, ns, { unmountOverlay, privateMountPoint }] = await Promise.all([
    import('@box/sys'),
    import('@box/ns'),
    import('@box/unionfs'),
  ]);
  // Private, nosuid and nodev as withOverlay's (see privateMountPoint): root's box takes this way
  // too when the kernel refuses its overlay, in the host's mount namespace.
  const { dir, target } = privateMountPoint('box-fuse-overlay-');
  let device: number | undefined;
  let server: Awaited<ReturnType<typeof ns.spawn>> | undefined;
  try {
    device = openSync('/dev/fuse', 'r+');
    const flags = sys.MS.NOSUID | sys.MS.NODEV | (options.noSymlinks ? sys.MS.NOSYMFOLLOW : 0);
    sys.mount('fuse-overlayfs', target, 'fuse', flags, fuseMountData(device));
    const devNull = openSync('/dev/null', 'r+');
    try {
      server = await ns.spawn({
        path: program,
        args: [program, '-f', '-o', fuseOptions, `/dev/fd/${device}`],
        env: [],
        preserveFds: [device],
        stdio: [devNull, devNull, devNull],
        parentDeathSignal: 'SIGKILL',
      });
    } finally {
      closeSync(devNull);
    }
    closeSync(device);
    device = undefined;
    return await fn(target);
  } finally {
    if (device !== undefined) closeSync(device);
    try {
      unmountOverlay(target);
    } catch {
      // not mounted (the mount itself failed)
    }
    // Unmounted, the server ends; killed here if it has not.
    if (server) {
      const ended = await Promise.race([server.exited.then(() => true), sleep(2000, false, { ref: false })]);
      if (!ended) server.kill('SIGKILL');
    }
    try {
      rmdirSync(target);
      rmdirSync(dir);
    } catch {
      // still busy (an unmount that failed): fn's own outcome matters more
    }
  }
}
