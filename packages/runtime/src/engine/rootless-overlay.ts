/**
 * How a rootless container's overlay is mounted: by the kernel (overlayfs in a user namespace,
 * Linux 5.11 and later) or, only where the kernel refuses it, by fuse-overlayfs (see
 * ../rootfs/fuse-overlay.ts), as podman's `mount_program`. `BOX_ROOTLESS_OVERLAY=fuse-overlayfs`
 * asks for fuse-overlayfs every time, `=kernel` never.
 *
 * The kernel's refusal is seen where it happens, at the container's own overlay mount (EPERM,
 * EINVAL or ENODEV from "mount overlay on …"): that start is undone and made again with
 * fuse-overlayfs, and this process remembers it for the starts after.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChildSetupError } from '@box/sys';
import { unmountOverlay } from '@box/unionfs';
import { EngineError } from '../errors.js';
import { isRootless } from './rootless.js';

const DIRS = ['/usr/bin', '/usr/local/bin', '/bin'];
const REFUSALS = new Set(['EPERM', 'EINVAL', 'ENODEV', 'EACCES']);

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

/** The FUSE program a container start mounts its overlay with, or undefined for the kernel's. */
export function overlayProgram(): string | undefined {
  if (!isRootless()) return undefined;
  const wanted = mode();
  if (wanted === 'fuse-overlayfs' || (wanted === 'auto' && kernelRefused)) return required();
  return undefined;
}

/**
 * After a failed start with the kernel's overlay: fuse-overlayfs to start again with when the
 * kernel refused the mount itself (and that is allowed), else undefined (the failure stands).
 */
export function fuseFallbackFor(error: unknown): string | undefined {
  if (!isRootless() || mode() !== 'auto' || kernelRefused || !kernelRefusal(error)) return undefined;
  const found = findFuseOverlayfs();
  if (found) kernelRefused = true;
  return found;
}

/** The kernel's refusal of an overlay mount: in a container's set-up, or this process's own. */
function kernelRefusal(error: unknown): boolean {
  const cause = error instanceof ChildSetupError ? error : (error as { cause?: unknown })?.cause;
  if (cause instanceof ChildSetupError)
    return cause.step.startsWith('mount overlay on ') && REFUSALS.has(cause.code);
  const own = error as { code?: unknown; errno?: unknown };
  return own?.code === 'EUNIONFSMOUNT' && REFUSALS.has(String(own.errno));
}

/**
 * withOverlay through fuse-overlayfs in this process's mount namespace (`cp` and `export` of a
 * stopped rootless container run in one of their own): it mounts, then goes to the background;
 * it ends once the mount is gone.
 */
export async function withFuseOverlay<T>(
  program: string,
  options: { lowerdirs: readonly string[]; upperdir?: string; workdir?: string },
  fn: (merged: string) => T | Promise<T>,
): Promise<T> {
  const dirs = [...options.lowerdirs, options.upperdir ?? '', options.workdir ?? ''];
  const bad = dirs.find((dir) => /[,:]/.test(dir));
  if (bad) throw new EngineError('EINVAL', `fuse-overlayfs cannot take a layer path with "," or ":": ${bad}`);
  const target = mkdtempSync(join(tmpdir(), 'box-fuse-overlay-'));
  const data = [`lowerdir=${options.lowerdirs.join(':')}`];
  if (options.upperdir) data.push(`upperdir=${options.upperdir}`, `workdir=${options.workdir}`);
  const mounted = spawnSync(program, ['-o', data.join(','), target], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (mounted.status !== 0) {
    rmdirSync(target);
    const why = (mounted.stderr ?? '').split('\n').filter((l) => l && !l.startsWith('unknown argument'));
    throw new EngineError(
      'EFUSE',
      `fuse-overlayfs could not mount the container's files: ${why.at(-1) ?? mounted.error?.message ?? `exit ${mounted.status}`}`,
    );
  }
  try {
    return await fn(target);
  } finally {
    unmountOverlay(target);
    rmdirSync(target);
  }
}
