/** Another process in a running container (docker exec), with the container's settings as defaults. */
import { closeSync, openSync } from 'node:fs';
import { EngineError } from '../errors.js';
import { execInContainer } from '../exec.js';
import type { Process } from '../spec.js';
import type { EngineContext } from './context.js';
import type { AttachedProcess } from './engine.js';
import { normalizeStartError } from './launch.js';
import { checkCgroupReach, hasCgroup } from './rootless-cgroups.js';
import { exitCodeOf } from './status.js';
import type { AttachStdio, ContainerRecord, ExecOptions } from './types.js';
import { resolveUser } from './user.js';

export async function execIn(
  ctx: EngineContext,
  record: ContainerRecord,
  options: ExecOptions,
  stdio: AttachStdio,
): Promise<AttachedProcess> {
  if (options.command.length === 0) throw new EngineError('EINVAL', 'exec needs a command');
  if (options.workdir !== undefined && !options.workdir.startsWith('/')) {
    throw new EngineError(
      'EINVAL',
      `the working directory '${options.workdir}' is invalid, it needs to be an absolute path`,
    );
  }
  for (const entry of options.env ?? []) {
    if (!/^[^=\s]+=/.test(entry)) throw new EngineError('EINVAL', `invalid environment variable: "${entry}"`);
  }
  const spec = ctx.store.readSpec(record.id);
  const base = spec.process!;
  // Looked up in the container's own files, inside its root; on fuse-overlayfs (whose root FUSE
  // lets only the container's user namespace into), in its layers, as at its creation.
  const layers = record.fuseOverlay ? [record.overlay.upperdir, ...record.overlay.lowerdirs] : undefined;
  const user =
    options.user === undefined ? undefined : resolveUser(layers ?? `/proc/${record.pid}/root`, options.user);
  const proc: Process = {
    ...base,
    terminal: options.tty ?? false,
    consoleSize: options.tty ? options.consoleSize : undefined,
    args: options.command,
    env: [...(base.env ?? []), ...(options.tty ? ['TERM=xterm'] : []), ...(options.env ?? [])],
    cwd: options.workdir ?? base.cwd,
    user: user ? { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids } : base.user,
    capabilities: user && user.uid !== 0 ? { bounding: base.capabilities?.bounding } : base.capabilities,
  };
  await checkCgroupReach(record);
  // Without fds and without a terminal: nothing (/dev/null), never the caller's own.
  const devNull = stdio.stdio || options.tty ? undefined : openSync('/dev/null', 'r+');
  try {
    const child = await execInContainer({
      pid: record.pid!,
      // The init that started at the recorded time, joined through its pidfd: never a recycled pid.
      startTime: record.pidStartTime,
      process: proc,
      // A rootless container may have no cgroup (see rootless-cgroups.ts).
      cgroupsPath: hasCgroup(record) ? record.cgroupsPath : undefined,
      layers: layers && { dirs: layers, mounts: spec.mounts, userxattr: true, fuseOverlay: true },
      seccomp: spec.linux?.seccomp,
      stdio: devNull !== undefined ? [devNull, devNull, devNull] : stdio.stdio,
      consoleSocket: stdio.consoleSocket,
    });
    const exited = child.exited.then((status) => ({ exitCode: exitCodeOf(status), oomKilled: false }));
    return { id: record.id, pid: child.pid, exited, kill: (signal) => child.kill(signal) };
  } catch (error) {
    throw normalizeStartError(error);
  } finally {
    if (devNull !== undefined) closeSync(devNull);
  }
}
