/**
 * Running another process in a running container (`box exec`): join every
 * namespace of the container's init that differs from ours (user first, mount
 * last), join its cgroup at the sync point, then take the process settings.
 * No shell or helper binary is needed in the image.
 *
 * The kernel never refuses to move a process into a cgroup, not even one at its
 * pids limit: joining is checked here instead (before and after), so an exec
 * into a full container fails as a fork inside it would. Once joined, whatever the process forks is
 * counted against the container's limit by the kernel.
 */
import { readlinkSync } from 'node:fs';
import { type CgroupManager, createCgroupManager } from '@box/cgroups';
import { type Namespace, type NamespaceType, spawn } from '@box/ns';
import { processCredentials } from './capabilities.js';
import { RuntimeError } from './errors.js';
import { lookupCommand } from './process/lookup.js';
import { addConsoleSteps } from './rootfs/prepare.js';
import type { Process } from './spec.js';

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
  process: Process;
  /**
   * The container's cgroup, joined before the process runs. If that puts it over its pids
   * limit, the process is killed and execInContainer rejects with a RuntimeError 'EPIDSLIMIT'.
   */
  cgroupsPath?: string;
  stdio?: readonly [number, number, number];
  /** Unix socket (host fd) that receives the pty master when process.terminal is set. */
  consoleSocket?: number;
  dieWithParent?: boolean;
}

export interface ExecProcess {
  readonly pid: number;
  readonly exited: Promise<{ exitCode: number | null; signal: number | null }>;
  kill(signal?: NodeJS.Signals | number): void;
}

/** The container's namespaces that are not this process's own. */
function containerNamespaces(pid: number): Namespace[] {
  const result: Namespace[] = [];
  for (const [type, file] of Object.entries(NS_FILES) as [NamespaceType, string][]) {
    let theirs: string;
    try {
      theirs = readlinkSync(`/proc/${pid}/ns/${file}`);
    } catch (error) {
      throw new RuntimeError('ENOTRUNNING', `container process ${pid} is not running`, { cause: error });
    }
    if (theirs !== readlinkSync(`/proc/self/ns/${file}`))
      result.push({ type, path: `/proc/${pid}/ns/${file}` });
  }
  return result;
}

export async function execInContainer(options: ExecOptions): Promise<ExecProcess> {
  const { pid, process: proc } = options;
  const namespaces = containerNamespaces(pid);
  const env = proc.env ?? [];
  // The container's files, seen through its mount namespace.
  const path = lookupCommand(`/proc/${pid}/root`, proc.args[0] ?? '', env, proc.cwd);
  const cgroup = options.cgroupsPath ? await createCgroupManager({ path: options.cgroupsPath }) : undefined;
  return spawn({
    path,
    args: proc.args,
    env,
    namespaces,
    newSession: true,
    keepFds: options.consoleSocket === undefined ? [] : [options.consoleSocket],
    setup(program) {
      if (!proc.terminal) return undefined;
      if (options.consoleSocket === undefined)
        throw new RuntimeError('ESPEC', 'a terminal needs a console socket');
      const terminal = addConsoleSteps(program, '', options.consoleSocket, proc.consoleSize);
      return { stdio: [terminal, terminal, terminal] };
    },
    stdio: options.stdio,
    cwd: proc.cwd,
    ...processCredentials(proc),
    noNewPrivileges: proc.noNewPrivileges,
    async onSync(child) {
      if (!cgroup) return;
      // Checked before, so a full container is never pushed over its limit even for a moment,
      // and after, for a fork in the container meanwhile.
      await checkPidsLimit(cgroup, 1);
      await cgroup.addProcess(child);
      await checkPidsLimit(cgroup, 0);
    },
    parentDeathSignal: options.dieWithParent ? 'SIGKILL' : undefined,
  });
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
