import { accessSync, constants } from 'node:fs';
import { MS } from '@box/sys';
import { CommandNotExecutableError, CommandNotFoundError } from '../errors.js';
import { parseMountOptions } from '../rootfs/mount-options.js';
import {
  type BindMountView,
  type ContainerFile,
  ContainerView,
  type ResolveOptions,
} from '../rootfs/resolve.js';
import { DEFAULT_PATH, type Mount } from '../spec.js';

/**
 * Finds the program a container will execute, as execvp would inside it: a
 * name with a slash is taken as a path (relative to cwd), others are searched
 * in the container's PATH. Returns the container path to pass to execve.
 *
 * `rootfs` is the container's root directory, or the layers of its overlay (top
 * first: the merged tree exists only in the container), looked into as overlayfs
 * will merge them: whiteouts and opaque directories hide what is below them, and a
 * symlink is followed through the union and inside the root (see rootfs/resolve.ts).
 * `mounts` are the spec's mounts: the bind mounts among them (`-v`, volumes) are seen
 * where the container will see them. Other filesystems (tmpfs, proc, ...) are empty
 * until mounted and are not looked into. `options.userxattr`: the overlay is mounted
 * with userxattr (in a user namespace), so its opaque directories are marked in user.*.
 */
export function lookupCommand(
  rootfs: string | readonly string[],
  command: string,
  env: readonly string[],
  cwd: string,
  mounts: readonly Mount[] = [],
  options: ResolveOptions = {},
): string {
  const layers = typeof rootfs === 'string' ? [rootfs] : rootfs;
  const view = new ContainerView(layers, options);
  try {
    return search(view, bindMountViews(view, mounts), command, env, cwd);
  } finally {
    view.close();
  }
}

function search(
  view: ContainerView,
  binds: readonly BindMountView[],
  command: string,
  env: readonly string[],
  cwd: string,
): string {
  const check = (path: string) => {
    let file: ContainerFile | undefined;
    try {
      file = view.find(path, binds);
    } catch {
      // A symlink that cannot be read from here (/proc/self in a running container's
      // procfs names the reader) or a loop: the kernel will not find a program there either.
      return 'missing';
    }
    return checkExecutable(file);
  };
  if (command === '') throw new CommandNotFoundError(command, 'executable file not found in $PATH');
  if (command.includes('/')) {
    const path = under(cwd, command);
    const problem = check(path);
    if (problem === 'missing') throw new CommandNotFoundError(command, 'no such file or directory');
    if (problem) throw new CommandNotExecutableError(command, problem);
    return path;
  }
  const pathVar =
    [...env]
      .reverse()
      .find((e) => e.startsWith('PATH='))
      ?.slice(5) ?? DEFAULT_PATH;
  let denied: string | undefined;
  for (const dir of pathVar.split(':')) {
    const candidate = under(under(cwd, dir || '.'), command);
    const problem = check(candidate);
    if (problem === undefined) return candidate;
    if (problem !== 'missing') denied ??= problem;
  }
  if (denied) throw new CommandNotExecutableError(command, denied);
  throw new CommandNotFoundError(command, 'executable file not found in $PATH');
}

/** `name` relative to `dir`, without resolving "..": that is the kernel's job, after symlinks. */
function under(dir: string, name: string): string {
  const path = name.startsWith('/') ? name : `${dir}/${name}`;
  return `/${path
    .split('/')
    .filter((part) => part !== '' && part !== '.')
    .join('/')}`;
}

/** The spec's bind mounts, with their destinations resolved in the image as the set-up mounts them. */
function bindMountViews(view: ContainerView, mounts: readonly Mount[]): BindMountView[] {
  const views: BindMountView[] = [];
  for (const mount of mounts) {
    const options = parseMountOptions(mount.options);
    if (!(options.bind || mount.type === 'bind') || !mount.source) continue;
    views.push({
      destination: view.resolve(mount.destination),
      source: mount.source,
      noexec: (options.flags & MS.NOEXEC) !== 0,
    });
  }
  return views;
}

/** Why `file` cannot be executed, 'missing' if there is none, undefined if it can. */
function checkExecutable(file: ContainerFile | undefined): string | 'missing' | undefined {
  if (!file) return 'missing';
  const { stats, fd } = file;
  if (stats.isDirectory()) return 'is a directory';
  if (!stats.isFile()) return 'permission denied';
  try {
    // The file the fd holds (the magic link reaches exactly it, with its mount's noexec).
    accessSync(`/proc/self/fd/${fd}`, constants.X_OK);
  } catch {
    return 'permission denied';
  }
  if ((stats.mode & 0o111) === 0 || file.noexec) return 'permission denied';
  return undefined;
}
