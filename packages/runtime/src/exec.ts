/**
 * Running another process in a running container (`box exec`): join every
 * namespace of the container's init that differs from ours (user first, mount
 * last), join its cgroup at the sync point, then take the process settings.
 * No shell or helper binary is needed in the image.
 *
 * The init is named by a handle (openProcess: a pidfd, its start time checked
 * after opening), never by its pid alone: if the init has ended and its pid
 * names another process now, nothing is joined. Where setns takes a pidfd
 * (Linux 5.8) the child joins through that pidfd, so even an init that ends
 * during the exec cannot hand its pid's next owner to the join (ESRCH). On
 * older kernels the namespace files are opened through the init's /proc
 * directory fd, which the handle checked to be the init's own: a file opened
 * through it belongs to that process or fails. The command is looked up the
 * same way, in the init's root opened through that directory.
 *
 * The kernel never refuses to move a process into a cgroup, not even one at its
 * pids limit: joining is checked here instead (before and after), so an exec
 * into a full container fails as a fork inside it would. Once joined, whatever the process forks is
 * counted against the container's limit by the kernel.
 */
import { closeSync, readlinkSync } from 'node:fs';
import { type CgroupManager, createCgroupManager } from '@box/cgroups';
import { canJoinByPidfd, type Namespace, type NamespaceType, spawn } from '@box/ns';
import { O_DIRECTORY, O_PATH, O_RDONLY, openat, readlinkat } from '@box/sys';
import { processCredentials } from './capabilities.js';
import { isRootless } from './engine/rootless.js';
import { RuntimeError } from './errors.js';
import { openProcess, type ProcessHandle } from './process/handle.js';
import { lookupCommand } from './process/lookup.js';
import { writeOomScoreAdj } from './process/oom-score.js';
import { resourceLimits } from './process/rlimits.js';
import { addConsoleSteps } from './rootfs/prepare.js';
import { compileSeccomp } from './seccomp/compile.js';
import { checkSeccompKeepsSetup } from './seccomp/guard.js';
import type { LinuxSeccomp } from './seccomp/types.js';
import type { Mount, Process } from './spec.js';

const NS_FILES: Record<NamespaceType, string> = {
  user: 'user',
  ipc: 'ipc',
  uts: 'uts',
  network: 'net',
  pid: 'pid',
  cgroup: 'cgroup',
  mount: 'mnt',
};

export interface ExecOptions {
  /** Host pid of the container's init process. */
  pid: number;
  /**
   * The init's start time as recorded when it started (field 22 of /proc/PID/stat; see
   * processStartTime). With it, a pid that names another process now is refused
   * ('ENOTRUNNING') instead of joined.
   */
  startTime?: number;
  process: Process;
  /**
   * The container's cgroup, joined before the process runs. If that puts it over its pids
   * limit, the process is killed and execInContainer rejects with a RuntimeError 'EPIDSLIMIT'.
   */
  cgroupsPath?: string;
  /** The container's seccomp filter (its linux.seccomp): an exec'd process is no less confined. */
  seccomp?: LinuxSeccomp;
  stdio?: readonly [number, number, number];
  /** Unix socket (host fd) that receives the pty master when process.terminal is set. */
  consoleSocket?: number;
  dieWithParent?: boolean;
  /** Not waited for by this process (runc exec -d): see @box/ns spawn `detach`. */
  detach?: boolean;
  /** Host fds passed to the process under their own numbers (runc exec --preserve-fds). */
  preserveFds?: readonly number[];
  /**
   * Look the command up in these layers (top first) and mounts rather than through the
   * container's root in /proc: for a rootless container on fuse-overlayfs, whose root FUSE lets
   * only the container's own user namespace into.
   */
  layers?: {
    dirs: readonly string[];
    mounts?: readonly Mount[];
    userxattr: boolean;
    fuseOverlay: boolean;
  };
}

export interface ExecProcess {
  readonly pid: number;
  readonly exited: Promise<{ exitCode: number | null; signal: number | null }>;
  kill(signal?: NodeJS.Signals | number): void;
}

function notRunning(pid: number, cause?: unknown): RuntimeError {
  return new RuntimeError('ENOTRUNNING', `container process ${pid} is not running`, { cause });
}

/** The init's namespaces that are not this process's own, read through its /proc directory. */
function containerNamespaces(init: ProcessHandle): NamespaceType[] {
  const result: NamespaceType[] = [];
  for (const [type, file] of Object.entries(NS_FILES) as [NamespaceType, string][]) {
    let theirs: string;
    try {
      theirs = readlinkat(init.procDir, `ns/${file}`).toString();
    } catch (error) {
      throw notRunning(init.pid, error);
    }
    if (theirs !== readlinkSync(`/proc/self/ns/${file}`)) result.push(type);
  }
  return result;
}

export async function execInContainer(options: ExecOptions): Promise<ExecProcess> {
  const { pid, process: proc } = options;
  const init = openProcess(pid, options.startTime);
  if (!init) throw notRunning(pid);
  const fds: number[] = [];
  const openIn = (name: string, flags: number): number => {
    try {
      const fd = openat(init.procDir, name, flags);
      fds.push(fd);
      return fd;
    } catch (error) {
      const code = (error as { code?: string }).code;
      // Rootless: a container of another user namespace of this user (box's pause process
      // ended and a new one was made) is not ours to join.
      if ((code === 'EACCES' || code === 'EPERM') && isRootless() && init.signal(0))
        throw new RuntimeError(
          'ESTATE',
          `container process ${pid} was started in an earlier user namespace of this user (box's pause process ended): it cannot be joined; restart the container`,
          { cause: error },
        );
      throw notRunning(pid, error);
    }
  };
  try {
    const types = containerNamespaces(init);
    const env = proc.env ?? [];
    const { layers } = options;
    const command = proc.args[0] ?? '';
    // In the layers, a path the container mounted over (a tmpfs) is not seen: a command given as
    // a path goes to execve unchecked (ENOENT and EACCES still give 127 and 126).
    const path = layers
      ? command.includes('/')
        ? command
        : lookupCommand(layers.dirs, command, env, proc.cwd, layers.mounts, {
            userxattr: layers.userxattr,
            fuseOverlay: layers.fuseOverlay,
          })
      : // The container's files, seen through its mount namespace.
        lookupCommand(
          `/proc/self/fd/${openIn('root', O_PATH | O_DIRECTORY)}`,
          proc.args[0] ?? '',
          env,
          proc.cwd,
        );
    const byPidfd = init.pidfd !== undefined && canJoinByPidfd();
    const namespaces: Namespace[] = byPidfd
      ? []
      : types.map((type) => ({
          type,
          fd: openIn(`ns/${NS_FILES[type]}`, O_RDONLY),
          path: `/proc/${pid}/ns/${NS_FILES[type]}`,
        }));
    const cgroup = options.cgroupsPath ? await createCgroupManager({ path: options.cgroupsPath }) : undefined;
    try {
      return await spawn({
        path,
        args: proc.args,
        env,
        namespaces,
        joinProcess: byPidfd ? { pidfd: init.pidfd!, types, name: `container process ${pid}` } : undefined,
        newSession: true,
        // A rootless box cannot come back from a container's pid namespace (see @box/ns).
        pidJoinInChild: isRootless(),
        keepFds: options.consoleSocket === undefined ? [] : [options.consoleSocket],
        setup(program) {
          // A memory map of its own when its oom_score_adj is written (see writeOomScoreAdj).
          const ownMemory = proc.oomScoreAdj !== undefined;
          if (!proc.terminal) return { ownMemory };
          if (options.consoleSocket === undefined)
            throw new RuntimeError('ESPEC', 'a terminal needs a console socket');
          const terminal = addConsoleSteps(program, '/dev/pts/ptmx', options.consoleSocket, proc.consoleSize);
          return { stdio: [terminal, terminal, terminal], ownMemory };
        },
        stdio: options.stdio,
        cwd: proc.cwd,
        ...processCredentials(proc),
        noNewPrivileges: proc.noNewPrivileges,
        rlimits: resourceLimits(proc.rlimits),
        seccomp: options.seccomp ? compileSeccomp(checkedSeccomp(options.seccomp)) : undefined,
        async onSync(child) {
          // The container's value, as runc gives each exec'd process: otherwise it keeps its
          // caller's (containerd's shim runs at -998: almost never chosen by the OOM killer).
          if (proc.oomScoreAdj !== undefined) writeOomScoreAdj(child, proc.oomScoreAdj);
          if (!cgroup) return;
          // Checked before, so a full container is never pushed over its limit even for a moment,
          // and after, for a fork in the container meanwhile.
          await checkPidsLimit(cgroup, 1);
          await cgroup.addProcess(child);
          await checkPidsLimit(cgroup, 0);
        },
        parentDeathSignal: options.dieWithParent ? 'SIGKILL' : undefined,
        detach: options.detach,
        preserveFds: options.preserveFds,
      });
    } catch (error) {
      // The init ended during the exec: the join failed (ESRCH) rather than reach its pid's next owner.
      if (!init.signal(0)) throw notRunning(pid, error);
      throw error;
    }
  } finally {
    for (const fd of fds) closeSync(fd);
    init.close();
  }
}

/** Rejects when `joining` more tasks would put the cgroup over its pids limit. */
async function checkPidsLimit(cgroup: CgroupManager, joining: number): Promise<void> {
  const pids = (await cgroup.stats()).pids;
  if (pids?.limit != null && pids.current + joining > pids.limit) {
    throw new RuntimeError(
      'EPIDSLIMIT',
      `cannot start a process in the container: it has reached its pids limit (${pids.limit})`,
    );
  }
}

function checkedSeccomp(seccomp: LinuxSeccomp): LinuxSeccomp {
  checkSeccompKeepsSetup(seccomp);
  return seccomp;
}
