/**
 * Starting a container from an OCI config: the path from `box run` to execve.
 *
 *   validateSpec, the seccomp filter compiled (compileSpecSeccomp)
 *   → lookupCommand (in the rootfs and its bind mounts, for docker's 126/127)
 *   → @box/ns spawn: new namespaces, sync point (id maps, onSync),
 *     addRootfsSteps (mounts, /dev, terminal, pivot_root, masks, hostname),
 *     stdio, cwd, credentials, capabilities → execve
 */
import type { CgroupManager } from '@box/cgroups';
import { spawn } from '@box/ns';
import { processCredentials } from './capabilities.js';
import { type CgroupRemoval, createContainerCgroup, removeContainerCgroup } from './cgroup.js';
import { RuntimeError, SpecError } from './errors.js';
import { addLoopbackSteps } from './network/loopback.js';
import { lookupCommand } from './process/lookup.js';
import { writeOomScoreAdj } from './process/oom-score.js';
import { resourceLimits } from './process/rlimits.js';
import { SetupPause } from './process/setup-pause.js';
import type { RootfsCopies } from './rootfs/copy-up.js';
import { FuseOverlay } from './rootfs/fuse-overlay.js';
import { addRootfsSteps, type Overlay, planRootfsCopies } from './rootfs/prepare.js';
import type { CompiledSeccomp } from './seccomp/compile.js';
import type { LinuxSeccomp } from './seccomp/types.js';
import { type Spec, validateSpec } from './spec.js';

export interface StartOptions {
  spec: Spec;
  /** Host fds for the container's 0, 1, 2 (ignored with a terminal). Default: this process's. */
  stdio?: readonly [number, number, number];
  /** Unix socket (host fd) that receives the pty master when spec.process.terminal is set. */
  consoleSocket?: number;
  /** An overlay to mount as the rootfs inside the container's mount namespace. */
  overlay?: Overlay;
  /**
   * Mount the overlay with this FUSE program (fuse-overlayfs) rather than the kernel's overlayfs:
   * for a user namespace whose kernel refuses overlay (see rootfs/fuse-overlay.ts).
   */
  fuseOverlay?: string;
  /** Called while the container waits before its set-up (cgroups, network). */
  onSync?: (pid: number) => void | Promise<void>;
  /** Kill the container if this process dies (a foreground `box run`). */
  dieWithParent?: boolean;
  /**
   * Run the command under a minimal init as PID 1 (docker's --init): it forwards signals to the
   * command, reaps orphans, and exits with the command's status (see @box/ns spawn `init`).
   */
  init?: boolean;
  /**
   * runc's create/start split: resolve once the container waits right before its command, which
   * runs when another process opens this FIFO (a host fd) for reading (see @box/ns execGate).
   */
  execGate?: number;
  /** Host fds passed to the command under their own numbers (runc's --preserve-fds). */
  preserveFds?: readonly number[];
  /** Not waited for by this process (runc create): see @box/ns spawn `detach`. */
  detach?: boolean;
  /**
   * Called while the container's mount namespace is complete and it waits right before
   * pivot_root (the OCI createContainer hooks). If it throws, the start fails.
   */
  beforePivot?: (pid: number) => Promise<void>;
  /** How the container's cgroup is removed (see CgroupRemoval): its parents with it by default. */
  cgroupRemoval?: CgroupRemoval;
}

export interface ContainerExit {
  /** The exit status, or null when killed by a signal. */
  exitCode: number | null;
  signal: number | null;
  /** The kernel's OOM killer killed a process of the container. */
  oomKilled: boolean;
}

export interface ContainerProcess {
  readonly pid: number;
  /** The container's cgroup while it runs (when spec.linux.cgroupsPath is set). */
  readonly cgroup: CgroupManager | undefined;
  /** Settles when the process has ended and the container's cgroup is gone. */
  readonly exited: Promise<ContainerExit>;
  kill(signal?: NodeJS.Signals | number): void;
}

/**
 * The config's filter, compiled and checked to leave the set-up its syscalls; its code loaded
 * only then. Compiling checks the profile's shape as validateSpecSeccomp does (each field named),
 * so that the guard reads a well-formed profile and the profile is parsed once here.
 */
async function compileSpecSeccomp(seccomp: LinuxSeccomp): Promise<CompiledSeccomp> {
  const [{ checkSeccompKeepsSetup }, { compileSeccomp }] = await Promise.all([
    import('./seccomp/guard.js'),
    import('./seccomp/compile.js'),
  ]);
  const compiled = compileSeccomp(seccomp);
  checkSeccompKeepsSetup(seccomp);
  return compiled;
}

/** Starts the container's process; resolves once it has exec'd its command. */
export async function startContainer(options: StartOptions): Promise<ContainerProcess> {
  const { spec } = options;
  validateSpec(spec);
  // Compiled before anything is made: a filter the kernel cannot have is refused here. (Also
  // validateSpecSeccomp's check: the profile is not parsed a second time for it.)
  const seccomp = spec.linux?.seccomp ? await compileSpecSeccomp(spec.linux.seccomp) : undefined;
  const { process: proc, root } = spec;
  if (!root.path.startsWith('/')) throw new SpecError(`root.path must be absolute: "${root.path}"`);
  const namespaces = spec.linux?.namespaces ?? [];
  const userns = namespaces.some((n) => n.type === 'user' && !n.path);
  if (!namespaces.some((n) => n.type === 'mount' && !n.path))
    throw new SpecError('box needs a new mount namespace');
  const env = proc.env ?? [];
  const layers = options.overlay ? [options.overlay.upperdir, ...options.overlay.lowerdirs] : [root.path];
  // In a user namespace the overlay is mounted with userxattr (see rootfs/prepare.ts).
  const path = lookupCommand(layers, proc.args[0]!, env, proc.cwd, spec.mounts, {
    userxattr: userns,
    fuseOverlay: options.fuseOverlay !== undefined,
  });
  const pause = options.beforePivot ? new SetupPause(options.beforePivot) : undefined;
  // tmpcopyup's copies are planned before anything is made, their files held open for the child.
  const rootfsOptions = {
    rootfs: root.path,
    userns,
    overlay: options.overlay,
    consoleSocket: options.consoleSocket,
  };
  let copies: RootfsCopies | undefined;
  let cgroup: Awaited<ReturnType<typeof createContainerCgroup>>;
  try {
    copies = planRootfsCopies(spec, rootfsOptions);
    cgroup = await createContainerCgroup(spec, options.cgroupRemoval);
  } catch (error) {
    pause?.close();
    copies?.close();
    throw error;
  }
  let fuse: FuseOverlay | undefined;
  let child: Awaited<ReturnType<typeof spawn>> | undefined;
  try {
    if (options.overlay && options.fuseOverlay) fuse = new FuseOverlay(options.fuseOverlay, options.overlay);
    child = await spawn({
      path,
      args: proc.args,
      env,
      namespaces,
      uidMappings: spec.linux?.uidMappings,
      gidMappings: spec.linux?.gidMappings,
      newSession: true,
      keepFds: [
        ...(options.consoleSocket === undefined ? [] : [options.consoleSocket]),
        ...(pause ? [pause.childFd] : []),
        ...(fuse ? [fuse.child.pauseFd] : []),
        ...copies.fds(),
      ],
      setup(program) {
        if (namespaces.some((n) => n.type === 'network' && !n.path)) addLoopbackSteps(program);
        const { terminal, copiesFiles } = addRootfsSteps(program, spec, {
          ...rootfsOptions,
          fuse: fuse?.child,
          beforePivot: pause?.childFd,
          copies,
        });
        return {
          stdio: terminal ? [terminal, terminal, terminal] : undefined,
          // Also when oom_score_adj is written (onSync): the kernel gives it to every process
          // that shares the memory map, so this one would take the container's value.
          ownMemory: copiesFiles || proc.oomScoreAdj !== undefined,
        };
      },
      stdio: options.stdio,
      cwd: proc.cwd,
      ...processCredentials(proc),
      noNewPrivileges: proc.noNewPrivileges,
      rlimits: resourceLimits(proc.rlimits),
      seccomp,
      // In its cgroup before it runs a single instruction of its own. Without anything to
      // do here, there is no sync point and the start is faster (see @box/ns).
      onSync:
        cgroup || options.onSync || pause || fuse || proc.oomScoreAdj !== undefined
          ? async (pid) => {
              pause?.listen(pid);
              fuse?.pause.listen(pid);
              fuse?.releasePlaceholder();
              if (proc.oomScoreAdj !== undefined) writeOomScoreAdj(pid, proc.oomScoreAdj);
              await cgroup?.addProcess(pid);
              await options.onSync?.(pid);
            }
          : undefined,
      parentDeathSignal: options.dieWithParent ? 'SIGKILL' : undefined,
      init: options.init,
      execGate: options.execGate,
      preserveFds: options.preserveFds,
      detach: options.detach,
    });
    // The child has its own copies of the plan's fds by now (or never will).
    copies.close();
    await fuse?.pause.done();
    await pause?.done();
  } catch (error) {
    copies.close();
    pause?.close();
    fuse?.close();
    // Killed and gone before its cgroup goes (a detached one is not reaped here, but a dead
    // process leaves its cgroup at once).
    if (child) {
      child.kill('SIGKILL');
      if (!options.detach) await child.exited;
    }
    const { oomKilled } = cgroup ? await removeContainerCgroup(cgroup) : { oomKilled: false };
    // The child's own report (EOF at its pause) follows from the callback's failure.
    const failure = pause?.failure ?? fuse?.pause.failure ?? error;
    // Its set-up can fill memory the container is charged for (a tmpcopyup's copy), and then
    // the kernel's OOM killer ends it with nothing to say why.
    if (oomKilled)
      throw new RuntimeError(
        'ENOMEM',
        "the container's memory limit was reached while it was set up (the OOM killer ended it)",
        { cause: failure },
      );
    throw failure;
  }
  const exited = child.exited.then(async (status) => {
    const { oomKilled } = cgroup ? await removeContainerCgroup(cgroup) : { oomKilled: false };
    return { ...status, oomKilled };
  });
  return { pid: child.pid, cgroup, exited, kill: (signal) => child.kill(signal) };
}
