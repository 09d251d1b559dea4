/**
 * `box cp CONTAINER:SRC DEST` and `box cp SRC CONTAINER:DEST`. The container's
 * side is reached through its own root: /proc/PID/root while it runs, or its
 * layers mounted for the copy while it is stopped. The copy itself is
 * @box/runtime's copyIntoRoot/copyFromRoot: every container path is resolved
 * fd-relative inside that root (openat2 RESOLVE_IN_ROOT), so neither a symlink in
 * the container nor a container renaming things during the copy can make it read
 * or write a host path (see packages/runtime/src/rootfs/copy.ts).
 */
import { spawn } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { isAbsolute, join, posix } from 'node:path';
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

export interface CpFlags {
  /** -a: what is copied into a container belongs to its user (docker's archive mode). */
  archive?: boolean;
}

/**
 * Owners as docker's cp gives them: into a container, those of the source (with -a, the
 * container's user); out of one, the user running the command, -a or not.
 */
export async function cp(from: string, to: string, flags: CpFlags = {}): Promise<number> {
  if (from === '-' || to === '-') return cpStream(from, to, flags);
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
    if (src.container)
      await engine.copyFrom(side.container, side.path, localPath, {
        owner: { uid: process.getuid!(), gid: process.getgid!() },
      });
    else await engine.copyTo(side.container, localPath, side.path, { archive: flags.archive });
  } catch (error) {
    // docker's words for a source that is not there; the exit status is errors.ts's.
    if (error instanceof CopyError && error.code === 'ENOSRC')
      throw new CliError(`Could not find the file ${side.path} in container ${side.container}`, 1);
    throw error;
  }
  return 0;
}

/**
 * docker's archive forms: `box cp CONTAINER:SRC -` writes a tar of SRC to stdout, `box cp -
 * CONTAINER:DIR` extracts a tar from stdin into DIR. Both go through a directory of root's own
 * under the state root, copied with the same in-root copy as a plain `cp` (so the container's
 * symlinks never lead outside it), and GNU tar for the archive (which drops leading `/` and
 * refuses `..` members of an archive it is given). The archive out of a container carries the
 * container's owners, and an archive's owners are kept in it, as docker's.
 */
async function cpStream(from: string, to: string, flags: CpFlags): Promise<number> {
  const side = split(from === '-' ? to : from);
  if (!side.container) throw new CliError('one side of a copy with "-" must be CONTAINER:PATH', 1);
  const container = side.container;
  const path = side.path.startsWith('/') ? side.path : `/${side.path}`;
  const engine = openEngine();
  await engine.inspect(container);
  const staging = mkdtempSync(join(engine.root, 'cp-'));
  try {
    if (from !== '-') {
      if (process.stdout.isTTY)
        throw new CliError('cannot copy an archive to a terminal: redirect or pipe it', 1);
      const name = posix.basename(path) || 'root';
      try {
        await engine.copyFrom(container, path, join(staging, name));
      } catch (error) {
        if (error instanceof CopyError && error.code === 'ENOSRC')
          throw new CliError(`Could not find the file ${path} in container ${container}`, 1);
        throw error;
      }
      await runTar(['-C', staging, '-cf', '-', name], 'ignore', process.stdout);
      return 0;
    }
    if (process.stdin.isTTY)
      throw new CliError('cannot read an archive from a terminal: redirect or pipe it', 1);
    await runTar(['-C', staging, '-xf', '-', '--no-overwrite-dir'], process.stdin, 'ignore');
    for (const entry of readdirSync(staging))
      await engine.copyTo(container, join(staging, entry), path, { archive: flags.archive });
    return 0;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function runTar(
  args: string[],
  stdin: NodeJS.ReadableStream | 'ignore',
  stdout: NodeJS.WritableStream | 'ignore',
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('tar', args, {
      stdio: [stdin === 'ignore' ? 'ignore' : 'pipe', stdout === 'ignore' ? 'ignore' : 'pipe', 'pipe'],
    });
    if (stdin !== 'ignore') stdin.pipe(child.stdin!);
    if (stdout !== 'ignore') child.stdout!.pipe(stdout, { end: false });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', (error) => reject(new CliError(`tar: ${error.message}`, 1)));
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(new CliError(`tar: ${stderr.trim().split('\n')[0] || `exit ${code}`}`, 1)),
    );
  });
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
