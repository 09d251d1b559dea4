/**
 * `box cp CONTAINER:SRC DEST` and `box cp SRC CONTAINER:DEST`. The container's
 * side is reached through its own root: /proc/PID/root while it runs, or its
 * layers mounted for the copy while it is stopped. The copy itself is
 * @box/runtime's copyIntoRoot/copyFromRoot: every container path is resolved
 * fd-relative inside that root (openat2 RESOLVE_IN_ROOT), so neither a symlink in
 * the container nor a container renaming things during the copy can make it read
 * or write a host path (see packages/runtime/src/rootfs/copy.ts).
 */
import { lstatSync } from 'node:fs';
import { isAbsolute, posix } from 'node:path';
import { CopyError, copyFromRoot, copyIntoRoot } from '@box/runtime';
import { withOverlay } from '@box/unionfs';
import { type ContainerState, findContainer } from '../containers.js';
import { CliError } from '../errors.js';
import { isRunning } from '../lifecycle.js';
import { reconcile } from '../recovery.js';

function split(arg: string): { container?: string; path: string } {
  const colon = arg.indexOf(':');
  // A local path with a colon must be written ./a:b, as in docker.
  if (colon > 0 && !arg.startsWith('/') && !arg.startsWith('.')) {
    return { container: arg.slice(0, colon), path: arg.slice(colon + 1) || '/' };
  }
  return { path: arg };
}

/** Runs `fn` with the container's root directory on the host. */
async function withRoot<T>(state: ContainerState, fn: (root: string) => T): Promise<T> {
  if (isRunning(state)) return fn(`/proc/${state.pid}/root`);
  const { upperdir, workdir, lowerdirs, layersRoot } = state.overlay;
  return withOverlay({ lowerdirs, upperdir, workdir, layersRoot }, fn);
}

export async function cp(from: string, to: string): Promise<number> {
  await reconcile();
  const src = split(from);
  const dst = split(to);
  if (Boolean(src.container) === Boolean(dst.container)) {
    throw new CliError(
      'copying between containers or between local paths is not supported: one side must be CONTAINER:PATH',
      1,
    );
  }
  const side = (src.container ? src : dst) as { container: string; path: string };
  const local = src.container ? dst.path : src.path;
  if (!side.path.startsWith('/')) side.path = `/${side.path}`;
  const state = findContainer(side.container);
  const localPath = isAbsolute(local) ? local : posix.join(process.cwd(), local);
  if (!src.container && !exists(localPath)) throw new CliError(`no such file or directory: ${local}`, 1);
  await withRoot(state, (root) => {
    try {
      if (src.container) copyFromRoot(root, side.path, localPath);
      else copyIntoRoot(root, localPath, side.path);
    } catch (error) {
      throw translate(error, side);
    }
  });
  return 0;
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** docker's messages and exit codes for a refused copy. */
function translate(error: unknown, side: { container: string; path: string }): unknown {
  if (!(error instanceof CopyError)) return error;
  switch (error.code) {
    case 'ENOSRC':
      return new CliError(`Could not find the file ${side.path} in container ${side.container}`, 1);
    case 'ECOPY':
      return new CliError(error.message, 1);
    // A destination the copy refuses to create or replace: box's refusal, nothing changed.
    case 'ENODEST':
    case 'ECONFLICT':
    case 'EKERNELFS':
      return new CliError(error.message);
    default:
      return new CliError(error.message);
  }
}
