import { accessSync, constants, statSync } from 'node:fs';
import { CommandNotExecutableError, CommandNotFoundError } from '../errors.js';
import { resolveInRoot } from '../rootfs/resolve.js';
import { DEFAULT_PATH } from '../spec.js';

/**
 * Finds the program a container will execute, as execvp would inside it: a
 * name with a slash is taken as a path (relative to cwd), others are searched
 * in the container's PATH. Returns the container path to pass to execve.
 */
export function lookupCommand(
  rootfs: string | readonly string[],
  command: string,
  env: readonly string[],
  cwd: string,
): string {
  const roots = typeof rootfs === 'string' ? [rootfs] : rootfs;
  // With an overlay the merged tree exists only in the container: look through its
  // layers, top first, and take the first that has the path.
  const check = (path: string) => {
    let result: ReturnType<typeof checkExecutable> = 'missing';
    for (const root of roots) {
      result = checkExecutable(resolveInRoot(root, path));
      if (result !== 'missing') break;
    }
    return result;
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

function checkExecutable(hostPath: string): string | 'missing' | undefined {
  let stats: ReturnType<typeof statSync>;
  try {
    stats = statSync(hostPath);
  } catch {
    return 'missing';
  }
  if (stats.isDirectory()) return 'is a directory';
  if (!stats.isFile()) return 'permission denied';
  try {
    accessSync(hostPath, constants.X_OK);
  } catch {
    return 'permission denied';
  }
  if ((stats.mode & 0o111) === 0) return 'permission denied';
  return undefined;
}
