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
import { CopyError } from '@box/runtime';
import { openEngine } from '../engine.js';
import { CliError } from '../errors.js';

function split(arg: string): { container?: string; path: string } {
  const colon = arg.indexOf(':');
  // A local path with a colon must be written ./a:b, as in docker.
  if (colon > 0 && !arg.startsWith('/') && !arg.startsWith('.')) {
    return { container: arg.slice(0, colon), path: arg.slice(colon + 1) || '/' };
  }
  return { path: arg };
}

export async function cp(from: string, to: string): Promise<number> {
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
  const localPath = isAbsolute(local) ? local : posix.join(process.cwd(), local);
  const engine = openEngine();
  // The container is looked up first: an unknown one is the error to report.
  await engine.inspect(side.container);
  if (!src.container && !exists(localPath)) throw new CliError(`no such file or directory: ${local}`, 1);
  try {
    if (src.container) await engine.copyFrom(side.container, side.path, localPath);
    else await engine.copyTo(side.container, localPath, side.path);
  } catch (error) {
    // docker's words for a source that is not there; the exit status is errors.ts's.
    if (error instanceof CopyError && error.code === 'ENOSRC')
      throw new CliError(`Could not find the file ${side.path} in container ${side.container}`, 1);
    throw error;
  }
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
