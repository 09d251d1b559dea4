/**
 * `box cp CONTAINER:SRC DEST` and `box cp SRC CONTAINER:DEST`. The container's
 * side is reached through its own root: /proc/PID/root while it runs, or its
 * layers mounted for the copy while it is stopped. Container paths are resolved
 * by box inside the container's files first (symlinks included), so a symlink
 * in the container can never make the copy read or write a host path.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { isAbsolute, posix } from 'node:path';
import { resolveContainerPath } from '@box/runtime';
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

function copy(source: string, target: string): void {
  // GNU cp keeps modes, owners, times and links (-a), never follows links in the source (-P).
  const r = spawnSync('cp', ['-a', '-P', '--', source, target], { encoding: 'utf8' });
  if (r.status !== 0) throw new CliError(`copying failed: ${(r.stderr || r.error?.message || '').trim()}`, 1);
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
  await withRoot(state, (root) => {
    const inside = `${root}${resolveContainerPath([root], side.path)}`;
    if (src.container) {
      if (!existsSync(inside))
        throw new CliError(`Could not find the file ${side.path} in container ${side.container}`, 1);
      copy(inside, localPath);
    } else {
      if (!existsSync(localPath)) throw new CliError(`no such file or directory: ${local}`, 1);
      const parent = posix.dirname(inside);
      if (!existsSync(parent) || !statSync(parent).isDirectory()) {
        throw new CliError(
          `no such directory in container ${side.container}: ${posix.dirname(side.path)}`,
          1,
        );
      }
      copy(localPath, inside);
    }
  });
  return 0;
}
