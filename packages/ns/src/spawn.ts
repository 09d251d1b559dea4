/**
 * Starting a process in namespaces.
 *
 * Why not worker threads or the book's `/proc/self/exe init`: Node.js cannot
 * run JavaScript in a forked child, refuses unshare(CLONE_NEWUSER) because it
 * is multi-threaded, and a Node process inside every container costs ~80 ms of
 * start-up. Instead the child is cloned by a tiny machine-code routine
 * (@box/sys, spawnChild) straight into its new namespaces and runs a list of
 * system calls prepared here: join namespaces, wait at the sync point, the
 * caller's setup (rootfs), stdio, working directory, credentials, signal
 * reset, execve. Every step has a name, so a failure before execve reaches the
 * caller as "mount proc on /proc: EPERM (operation not permitted)".
 *
 * Joining a PID namespace affects only the children of the caller, so for that
 * one the calling thread itself enters the target namespace for the duration
 * of the clone and returns to its own right after.
 *
 * A running process's namespaces are joined either through its namespace files
 * (`namespaces` with a path or an fd) or, where setns takes a pidfd (Linux 5.8),
 * through a pidfd of it (`joinProcess`): one setns in the child for all of them,
 * and one on this thread for its PID namespace. A pidfd names one process for
 * good, so a join can never land in the namespaces of a process that got the
 * pid after the intended one ended: setns then fails with ESRCH.
 *
 * Threat model. The child is a copy of this host process (its memory, its
 * environment, its fds, the host's node binary as /proc/self/exe) that enters
 * namespaces where an attacker may already run: container root in `exec`, or
 * a hostile image's files for `run`. Until its execve nothing of the host may
 * be reachable from there, and nothing from there may steer the host side:
 * - fds: the first steps arm the parent-death signal and close every fd not
 *   named in the plan (close_range over the gaps), before any container path
 *   is touched; what is kept is close-on-exec, so the command sees 0-2 only
 *   (an inherited directory fd as a cwd or /proc/self/fd/N: CVE-2024-21626).
 *   The namespace fds and the pidfd of a join are closed right after their setns.
 * - memory, environ, exe, fds through /proc/PID: the child is not dumpable
 *   from its first instruction (@box/sys spawnChild), so a container process
 *   without CAP_SYS_PTRACE cannot open them while it is visible in the
 *   container's PID namespace.
 * - the host binary: the last step executes the exec stub from a sealed memfd,
 *   which executes the command; /proc/self/exe in a command, symlink, #! line
 *   or ELF interpreter then names the stub, never node (CVE-2019-5736).
 * - the init (`init`): the stub stays as PID 1 of the container. It closes the
 *   error pipe right after forking the command and stays non-dumpable, so it
 *   holds nothing of the host (fds 0-2 are the container's stdio).
 * - a parent that dies: the sync point fails closed (EOF on the sync pipe
 *   whose write end the child closed is an error, and the parent-death signal
 *   is armed before the wait), so no child is left blocked or running alone.
 */
import { closeSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import {
  AT_EMPTY_PATH,
  ChildProgram,
  ChildSetupError,
  CLONE_NEWCGROUP,
  CLONE_NEWPID,
  close,
  dupCloexec,
  execStubFd,
  F_SETFD,
  kill,
  PR_CAP_AMBIENT,
  PR_CAP_AMBIENT_RAISE,
  PR_CAPBSET_DROP,
  PR_SET_DUMPABLE,
  PR_SET_KEEPCAPS,
  PR_SET_NO_NEW_PRIVS,
  PR_SET_PDEATHSIG,
  pipe,
  readWhenReady,
  SECCOMP_SET_MODE_FILTER,
  type Slot,
  setNonBlocking,
  setns,
  spawnChild,
  type WaitStatus,
} from '@box/sys';
import { NamespaceConfigError, UnsupportedNamespaceError } from './errors.js';
import { writeIdMaps } from './idmap.js';
import { armReaper, watchExit } from './reaper.js';
import {
  type IdMapping,
  JOIN_ORDER,
  NAMESPACE_FILES,
  NAMESPACE_FLAGS,
  type Namespace,
  type NamespaceType,
} from './types.js';

export type { WaitStatus };

/** A host fd of this process, or a slot filled by an earlier step of the child's program. */
export type StdioSource = number | Slot;

export interface Credentials {
  uid: number;
  gid: number;
  additionalGids?: readonly number[];
}

/** Capability numbers (CAP_CHOWN = 0, ...). Applied after the credentials change. */
export interface Capabilities {
  bounding: readonly number[];
  effective: readonly number[];
  permitted: readonly number[];
  inheritable: readonly number[];
  /** Raised after the credentials change, so a non-root command keeps them across execve. */
  ambient?: readonly number[];
}

/** A resource limit for prlimit64 (RLIMIT_NOFILE = 7, ...); RLIM_INFINITY is 2^64-1. */
export interface ResourceLimit {
  resource: number;
  soft: bigint;
  hard: bigint;
  /** Its name in step names and errors, e.g. "nofile". */
  name: string;
}

/** A classic-BPF seccomp filter: `struct sock_filter[]` and SECCOMP_FILTER_FLAG_* bits. */
export interface SeccompFilter {
  filter: Buffer;
  flags: number;
}

export interface SpawnOptions {
  /** Absolute path of the program, as the child will see it after `setup`. */
  path: string;
  /** argv, including argv[0]. */
  args: readonly string[];
  env?: readonly string[];
  /** Namespaces to create (no path) or join (path or fd). Others are shared with this process. */
  namespaces?: readonly Namespace[];
  /**
   * Joins namespaces of a running process through its pidfd (setns with a pidfd, Linux 5.8;
   * see canJoinByPidfd): all of them in one step, and only ever those of the process the
   * pidfd names, never of one that got its pid later. Not with joins in `namespaces`.
   */
  joinProcess?: ProcessJoin;
  uidMappings?: readonly IdMapping[];
  gidMappings?: readonly IdMapping[];
  /**
   * Join a pid namespace (in `namespaces` or `joinProcess`) in the child rather than on this
   * thread. This thread's way in and back out (setns of its pid_for_children) needs
   * CAP_SYS_ADMIN over this process's own pid namespace, which a process in a user namespace
   * (rootless box) lacks for the host's: it could go in, never back. setns in the child puts
   * only the child's children in the namespace, so the exec stub runs as an init (see `init`)
   * outside it, in the host's pid namespace, and forks the command into it: the command's
   * status, the signals it gets and its end are the stub's as with `init`.
   */
  pidJoinInChild?: boolean;
  /**
   * Who writes the maps of a new user namespace while the child waits at its sync point: by
   * default this process (writeIdMaps, which needs CAP_SETUID/CAP_SETGID over the host ids);
   * an unprivileged caller passes writeIdMapsWithHelpers (newuidmap/newgidmap).
   */
  idMapWriter?: (pid: number, uidMappings: readonly IdMapping[], gidMappings: readonly IdMapping[]) => void;
  /** Sources of the child's fds 0, 1 and 2; by default this process's own. */
  stdio?: readonly [StdioSource, StdioSource, StdioSource];
  cwd?: string;
  credentials?: Credentials;
  capabilities?: Capabilities;
  noNewPrivileges?: boolean;
  /** Resource limits, set before the credentials change (an unprivileged user could not raise them). */
  rlimits?: readonly ResourceLimit[];
  /**
   * A seccomp filter, installed as late as it can be (see installSeccomp): the steps after it
   * and the exec stub must be allowed by it.
   */
  seccomp?: SeccompFilter;
  /** Start a new session (setsid) before `setup`, e.g. to take a controlling terminal. */
  newSession?: boolean;
  /**
   * Run the command under a minimal init (docker's `--init`, tini): the exec stub stays as
   * PID 1 of the new pid namespace (`box-init` in /proc/1/cmdline) and the command runs as
   * its child, PID 2, in a process group of its own (the terminal's foreground if fd 0 is
   * one). The init forwards the signals it gets to the command (kill() reaches the command
   * through it), reaps orphans, and exits with the command's exit code, or 128 + the signal
   * that killed it; `exited` reports that, so a command killed by SIGKILL ends as exit code
   * 137. Needs a new pid namespace (`{ type: 'pid' }` in `namespaces`): the command and every
   * other process in it die with the init, and a parent-death signal other than SIGKILL is
   * forwarded to the command. See @box/sys asm/exec-stub-x86_64.S.
   */
  init?: boolean;
  /**
   * runc's create/start split: the child stops right before its command (everything else done)
   * until another process opens this FIFO for reading. `execGate` is a host fd of the FIFO (O_PATH
   * will do); the child reopens it through /proc/self/fd (so the container needs its /proc),
   * O_WRONLY, which blocks until a reader comes, writes one byte, and goes on to the command.
   * The wait is the exec stub's: by then the child no longer runs in this process's memory.
   * spawn() then resolves once the child waits at the gate, not at its exec. The parent-death
   * signal is disarmed before the gate (the child outlives the process that made it, as runc's
   * `create` does), and a failing exec after the gate is only the command's exit status (127):
   * the stub closes the error pipe once it has reported the wait. A child that ends before it
   * reports the wait fails spawn().
   */
  execGate?: number;
  /**
   * Host fds passed to the command under the same numbers (runc's --preserve-fds); they must
   * be above 2 and stay open in this process until spawn() resolves.
   */
  preserveFds?: readonly number[];
  /**
   * The caller does not wait for the process (runc's `create` and `exec -d`): once started it is
   * never reaped here, so a subreaper above this process (containerd's shim, conmon) gets its
   * exit even when it ends before this process does. `exited` then never settles.
   */
  detach?: boolean;
  /** Signal the child gets if this process dies (prctl PR_SET_PDEATHSIG). */
  parentDeathSignal?: NodeJS.Signals | number;
  /**
   * Host fds that the caller's `setup` steps use (a console socket, say). Every other
   * fd of this process is closed in the child before its first step.
   */
  keepFds?: readonly number[];
  /**
   * Adds the caller's steps (mounts, pivot_root, ...) after namespaces and the sync
   * point. It may return stdio sources made by its steps (e.g. a terminal's slot), and ask for
   * a child with a memory map of its own (see SetupResult.ownMemory).
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: a setup that returns nothing is the common case
  setup?: (program: ChildProgram) => void | SetupResult;
  /**
   * Runs in this process while the child waits at its sync point, after id maps are
   * written: join cgroups, set up networking. If it throws, the child is killed.
   */
  onSync?: (pid: number) => void | Promise<void>;
}

export interface SetupResult {
  stdio?: readonly [StdioSource, StdioSource, StdioSource];
  /**
   * The child gets a copy of this process's memory rather than sharing it up to its execve. The
   * kernel charges a tmpfs or page-cache page to the memory cgroup of the memory map's owner: a
   * child that shares this process's map charges what it writes (a tmpfs copy) to this process's
   * cgroup, even after it joined the container's. A copied map is the child's own.
   */
  ownMemory?: boolean;
}

export interface ProcessJoin {
  /** A pidfd of the process (the caller keeps it and closes it after spawn). */
  pidfd: number;
  /** Which of its namespaces to join. */
  types: readonly NamespaceType[];
  /** The process in step names and errors, e.g. "container process 1234". */
  name: string;
}

export interface NamespacedProcess {
  /** With `init`, the init's pid (the command is its child). */
  readonly pid: number;
  /** Settles when the process ends. */
  readonly exited: Promise<WaitStatus>;
  /** With `init`, the init forwards the signal to the command; SIGKILL ends the init and its pid namespace. */
  kill(signal?: NodeJS.Signals | number): void;
}

const SUPPORTED = new Map<NamespaceType, boolean>();

function checkSupported(type: NamespaceType, procRoot = '/proc'): void {
  let ok = SUPPORTED.get(type);
  if (ok === undefined) {
    try {
      closeSync(openSync(`${procRoot}/self/ns/${NAMESPACE_FILES[type]}`, 'r'));
      ok = true;
    } catch {
      ok = false;
    }
    SUPPORTED.set(type, ok);
  }
  if (!ok) throw new UnsupportedNamespaceError(type);
}

function signalNumber(signal: NodeJS.Signals | number): number {
  if (typeof signal === 'number') return signal;
  const n = osConstants.signals[signal];
  if (n === undefined) throw new NamespaceConfigError(`unknown signal ${signal}`);
  return n;
}

function capMask(caps: readonly number[]): [number, number] {
  let lo = 0;
  let hi = 0;
  for (const cap of caps) {
    if (cap < 32) lo |= 1 << cap;
    else hi |= 1 << (cap - 32);
  }
  return [lo >>> 0, hi >>> 0];
}

let lastCap: number | undefined;
function capLastCap(): number {
  lastCap ??= Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
  return lastCap;
}

/** A namespace to join: an fd of its file, or a pidfd (`owned`: opened by plan, closed by closePlan). */
interface Join {
  type: NamespaceType;
  fd: number;
  path: string;
  owned: boolean;
}

interface Plan {
  cloneFlags: number;
  joins: Join[];
  /** The child's setns(pidfd, flags) for joinProcess (its pid namespace is in pidJoin). */
  pidfdJoin: { pidfd: number; flags: number; step: string } | undefined;
  pidJoin: Join | undefined;
  newCgroup: boolean;
  newUser: boolean;
}

function plan(
  namespaces: readonly Namespace[],
  joinProcess: ProcessJoin | undefined,
  pidInChild = false,
): Plan {
  const seen = new Set<NamespaceType>();
  const result: Plan = {
    cloneFlags: 0,
    joins: [],
    pidfdJoin: undefined,
    pidJoin: undefined,
    newCgroup: false,
    newUser: false,
  };
  const checkType = (type: NamespaceType) => {
    if (!(type in NAMESPACE_FLAGS)) throw new NamespaceConfigError(`unknown namespace type "${type}"`);
    if (seen.has(type)) throw new NamespaceConfigError(`namespace "${type}" given twice`);
    seen.add(type);
    checkSupported(type);
  };
  try {
    if (joinProcess) {
      let flags = 0;
      for (const type of joinProcess.types) {
        checkType(type);
        if (type === 'pid' && !pidInChild)
          result.pidJoin = { type, fd: joinProcess.pidfd, path: joinProcess.name, owned: false };
        else flags |= NAMESPACE_FLAGS[type];
      }
      const names = JOIN_ORDER.filter((t) => t !== 'pid' && joinProcess.types.includes(t));
      if (flags !== 0)
        result.pidfdJoin = {
          pidfd: joinProcess.pidfd,
          flags,
          step: `join the ${names.join(', ')} namespaces of ${joinProcess.name}`,
        };
    }
    for (const ns of namespaces) {
      checkType(ns.type);
      if (joinProcess && (ns.path !== undefined || ns.fd !== undefined))
        throw new NamespaceConfigError('join namespaces through joinProcess or through namespaces, not both');
      if (ns.fd !== undefined) {
        const join = { type: ns.type, fd: ns.fd, path: ns.path ?? `fd ${ns.fd}`, owned: false };
        if (ns.type === 'pid' && !pidInChild) result.pidJoin = join;
        else result.joins.push(join);
        continue;
      }
      if (ns.path === undefined) {
        // A cgroup namespace is created after the sync point, once the parent put the child in its cgroup.
        if (ns.type === 'cgroup') result.newCgroup = true;
        else result.cloneFlags |= NAMESPACE_FLAGS[ns.type];
        if (ns.type === 'user') result.newUser = true;
        continue;
      }
      let fd: number;
      try {
        fd = openSync(ns.path, 'r');
      } catch (error) {
        throw new NamespaceConfigError(
          `cannot open ${ns.type} namespace ${ns.path}: ${(error as Error).message}`,
        );
      }
      const join = { type: ns.type, fd, path: ns.path, owned: true };
      if (ns.type === 'pid' && !pidInChild) result.pidJoin = join;
      else result.joins.push(join);
    }
  } catch (error) {
    closePlan(result);
    throw error;
  }
  result.joins.sort((a, b) => JOIN_ORDER.indexOf(a.type) - JOIN_ORDER.indexOf(b.type));
  return result;
}

function closePlan(p: Plan): void {
  for (const j of p.joins) if (j.owned) closeSync(j.fd);
  if (p.pidJoin?.owned) closeSync(p.pidJoin.fd);
}

/**
 * Starts `options.path` in the requested namespaces. Resolves once execve
 * succeeded; rejects with a ChildSetupError naming the failed step otherwise
 * (the child is then already reaped).
 */
export async function spawn(options: SpawnOptions): Promise<NamespacedProcess> {
  const namespaces = options.namespaces ?? [];
  const joinsPid =
    namespaces.some((ns) => ns.type === 'pid' && (ns.path !== undefined || ns.fd !== undefined)) ||
    (options.joinProcess?.types.includes('pid') ?? false);
  const pidInChild = options.pidJoinInChild === true && joinsPid;
  const p = plan(namespaces, options.joinProcess, pidInChild);
  // Joined in the child, the pid namespace takes only the child's children: the exec stub then
  // runs as an init outside it and forks the command into it (see pidJoinInChild).
  if (pidInChild) options = { ...options, init: true };
  const needSync = p.newUser || options.onSync !== undefined;
  const toClose: number[] = [];
  let sync: [number, number] | undefined;
  let errorPipe: [number, number] | undefined;
  const program = new ChildProgram();
  let child: { pid: number; errorFd: number; release?: () => void };
  try {
    // The init must be PID 1: only then does the kernel hand it every orphan and end the
    // command and everything else with it.
    if (options.init && !(p.cloneFlags & CLONE_NEWPID) && !pidInChild)
      throw new NamespaceConfigError("an init runs only as PID 1 of a new pid namespace ({ type: 'pid' })");
    const stub = execStubFd();
    errorPipe = pipe();
    if (needSync) sync = pipe();
    const stdio = moveLowStdio(options.stdio ?? [0, 1, 2], toClose);

    // Fail closed: a child whose parent dies from here on is killed, wherever it is.
    armParentDeath(program, SIGKILL, 'set the parent-death signal');
    // Before anything touches a container path, every fd this process holds is closed
    // except those the child needs: an fd of a host directory must never become the
    // container's cwd or be reachable through /proc/self/fd (CVE-2024-21626). The rest
    // are close-on-exec, so the container's command sees only 0-2.
    const keep = [errorPipe[1], stub, ...p.joins.map((j) => j.fd), ...(options.keepFds ?? [])];
    if (p.pidfdJoin) keep.push(p.pidfdJoin.pidfd);
    if (sync) keep.push(sync[0]);
    for (const source of stdio) if (typeof source === 'number') keep.push(source);
    const preserved = options.preserveFds ?? [];
    for (const fd of preserved) {
      if (!Number.isInteger(fd) || fd <= 2)
        throw new NamespaceConfigError(`cannot preserve fd ${fd}: only fds above 2`);
      if (keep.includes(fd)) throw new NamespaceConfigError(`cannot preserve fd ${fd}: box uses it`);
    }
    keep.push(...preserved);
    if (options.execGate !== undefined) keep.push(options.execGate);
    closeOtherFds(program, keep);
    if (p.pidfdJoin) {
      // One step for all of them, user first and mount last as the kernel orders them; or,
      // if that process is gone, none (ESRCH).
      program.call('setns', p.pidfdJoin.step, [p.pidfdJoin.pidfd, p.pidfdJoin.flags]);
      program.call('close', `close the pidfd of ${options.joinProcess!.name}`, [p.pidfdJoin.pidfd]);
    }
    for (const join of p.joins) {
      program.call('setns', `join ${join.type} namespace ${join.path}`, [
        join.fd,
        NAMESPACE_FLAGS[join.type],
      ]);
      program.call('close', `close ${join.path}`, [join.fd]);
    }
    if (sync) {
      // The write end was closed above, so EOF here means the parent is gone: exit, never go on.
      program.call('read', 'wait for the parent at the sync point', [sync[0], program.alloc(8), 1], {
        zeroErrno: EPIPE,
      });
      program.call('close', 'close the sync pipe', [sync[0]]);
    }
    if (p.newUser) {
      // Until now the child ran with host ids that the new namespace does not map.
      program.call('setresgid', 'become root of the new user namespace (gid)', [0, 0, 0]);
      program.call('setresuid', 'become root of the new user namespace (uid)', [0, 0, 0]);
      stayUndumpable(program);
      // A change of ids clears the parent-death signal.
      armParentDeath(program, SIGKILL, 'set the parent-death signal again');
    }
    if (p.newCgroup) program.call('unshare', 'create cgroup namespace', [CLONE_NEWCGROUP]);
    if (options.newSession) program.call('setsid', 'create a new session', []);
    const fromSetup = options.setup?.(program) || undefined;
    wireStdio(program, fromSetup?.stdio ?? stdio, keep);
    for (const fd of preserved) program.call('fcntl', `pass fd ${fd} to the command`, [fd, F_SETFD, 0]);
    if (options.cwd !== undefined) program.chdir(options.cwd);
    for (const limit of options.rlimits ?? []) setResourceLimit(program, limit);
    applyCredentials(program, options);
    resetSignals(program);
    // After the credentials (which clear it) the child stays armed up to the exec stub. The
    // stub's execve (a secure one: decoy gid) clears the signal, so the stub sets the caller's
    // choice (or none) for the command, whose ordinary execve keeps it.
    if (options.execGate === undefined)
      armParentDeath(program, SIGKILL, 'set the parent-death signal for the last steps');
    if (options.seccomp && options.noNewPrivileges) installSeccomp(program, options.seccomp);
    if (options.execGate !== undefined) passGate(program, options.execGate);
    const deathSignal = options.parentDeathSignal === undefined ? 0 : signalNumber(options.parentDeathSignal);
    execThroughStub(program, stub, errorPipe[1], deathSignal, options);

    armReaper();
    // Without a sync point the parent has nothing to do until the exec: vfork-style clone
    // (never with a gate: the exec waits for another process).
    const [errorRead, errorWrite] = errorPipe;
    errorPipe = undefined; // spawnChild owns it now
    child = cloneInto(
      program,
      p,
      !needSync && options.execGate === undefined,
      fromSetup?.ownMemory === true,
      [errorRead, errorWrite],
    );
  } catch (error) {
    if (sync) close(sync[1]);
    if (errorPipe) for (const fd of errorPipe) close(fd);
    throw error;
  } finally {
    closePlan(p);
    for (const fd of toClose) close(fd);
    if (sync) close(sync[0]);
  }

  const { pid, errorFd, release } = child;
  let reaped = false;
  // A detached child is reaped here only if its start fails (see SpawnOptions.detach).
  let watching: Promise<WaitStatus> | undefined;
  const reap = () => {
    watching ??= watchExit(pid).then((status) => {
      reaped = true;
      return status;
    });
    return watching;
  };
  const exited = options.detach ? new Promise<WaitStatus>(() => undefined) : reap();
  const handle: NamespacedProcess = {
    pid,
    exited,
    kill(signal = 'SIGKILL') {
      // Once reaped, the pid may belong to another process.
      if (reaped) return;
      try {
        kill(pid, signalNumber(signal));
      } catch (error) {
        if ((error as { code?: string }).code !== 'ESRCH') throw error;
      }
    },
  };
  const errors = readErrorPipe(errorFd, release);
  // Handled below in every path; not an unhandled rejection while onSync runs.
  errors.catch(() => undefined);
  try {
    if (p.newUser)
      (options.idMapWriter ?? writeIdMaps)(pid, options.uidMappings ?? [], options.gidMappings ?? []);
    await options.onSync?.(pid);
    if (sync) {
      const [, w] = sync;
      sync = undefined;
      // Writing one byte releases the child; closing without writing would too, so
      // on failure the child is killed instead (below).
      writeSync(w, Buffer.from([1]));
      close(w);
    }
  } catch (error) {
    if (sync) close(sync[1]);
    handle.kill('SIGKILL');
    await reap();
    await errors.catch(() => undefined);
    throw error;
  }
  let report: Buffer;
  try {
    report = await errors;
  } catch (error) {
    // Its report cannot be read (the wait for it failed): a child that may be anywhere in its
    // set-up is not left running.
    handle.kill('SIGKILL');
    await reap();
    throw error;
  }
  if (report.length >= 16 && report.readBigInt64LE(0) !== AT_GATE) {
    await reap();
    throw program.failure(report);
  }
  if (options.execGate !== undefined && report.length < 16) {
    // The stub reports the wait before it waits: an end without that report is no container
    // waiting for `start` (the stub refused its arguments, or its report could not be written).
    await reap();
    throw new ChildSetupError('wait at the exec gate', 'exit', EPIPE);
  }
  return handle;
}

/**
 * A change of uid makes the memory map dumpable as fs.suid_dumpable says, and with its value 1
 * a process of the new uid (another container's, mapped alike) could ptrace the child, which runs
 * from a copy of this process's memory (or this very memory) until its execve. execve sets
 * dumpability anew for the command.
 */
function stayUndumpable(program: ChildProgram): void {
  program.call('prctl', 'stay undumpable after the change of uid', [PR_SET_DUMPABLE, 0, 0, 0, 0]);
}

function cloneInto(
  program: ChildProgram,
  p: Plan,
  vfork: boolean,
  ownMemory: boolean,
  errorPipe: readonly [number, number],
): { pid: number; errorFd: number; release?: () => void } {
  // A child that waits for this process (sync point, exec gate) shares its memory until its
  // execve rather than copying it: see spawnChild's shareMemory. Never a child that joins a pid
  // namespace with processes in it (`exec`): they see it there before its execve, and one that
  // holds CAP_SYS_PTRACE of this process's user namespace (a container without --userns given
  // SYS_PTRACE) passes the kernel's check of an undumpable process, so it could write this
  // process's memory through the child's /proc/PID/mem or ptrace. Such a child gets a copy, as
  // does one whose writes must be charged to its own cgroup (SetupResult.ownMemory).
  const shared = p.pidJoin === undefined && !ownMemory;
  const options = { vfork: vfork && shared, shareMemory: !vfork && shared, errorPipe };
  if (!p.pidJoin) return spawnChild(program, p.cloneFlags, options);
  if (p.cloneFlags & CLONE_NEWPID)
    throw new NamespaceConfigError('cannot both create and join a pid namespace');
  const own = openSync('/proc/thread-self/ns/pid_for_children', 'r');
  try {
    setns(p.pidJoin.fd, CLONE_NEWPID, p.pidJoin.path);
    try {
      return spawnChild(program, p.cloneFlags, options);
    } finally {
      setns(own, CLONE_NEWPID, '/proc/thread-self/ns/pid_for_children');
    }
  } finally {
    closeSync(own);
  }
}

/**
 * What the child writes to the error pipe: a 16-byte report (a failure, or AT_GATE), or
 * nothing by EOF (execve closed it). The read end is closed once a report is in, or, for a
 * child that shares this process's memory (`release`), at EOF: a child that failed may still run
 * its program from this process's memory for a moment, so that memory is freed only then (the
 * pipe then no longer keeps this process alive). AT_GATE comes from the exec stub, after the
 * child's execve: it is freed at once.
 */
async function readErrorPipe(fd: number, release?: () => void): Promise<Buffer> {
  const report = Buffer.alloc(16);
  let length = 0;
  let ended = false;
  try {
    setNonBlocking(fd);
    while (length < 16 && !ended) {
      const n = await readWhenReady(fd, report, length);
      if (n === 0) ended = true;
      else length += n;
    }
  } catch (error) {
    // Not released on an error: the child may still be running from that memory (a leak is
    // the safe side).
    close(fd);
    throw error;
  }
  if (ended || (length === 16 && report.readBigInt64LE(0) === AT_GATE)) {
    close(fd);
    release?.();
  } else if (release) releaseAtEnd(fd, release);
  else close(fd);
  return report.subarray(0, length);
}

/**
 * After its failure report, a child runs from this process's memory until its end closes the
 * pipe. Looked for now and then, less often as time goes by, without keeping this process alive
 * for it.
 */
function releaseAtEnd(fd: number, release: () => void, delayMs = 100): void {
  const timer = setTimeout(() => {
    let n: number;
    try {
      // More bytes are a later step's failure report: its end follows.
      do n = readSync(fd, Buffer.alloc(16), 0, 16, null);
      while (n > 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') {
        releaseAtEnd(fd, release, Math.min(delayMs * 2, 2000));
        return;
      }
      n = -1;
    }
    try {
      close(fd);
      if (n === 0) release();
    } catch {
      // Nothing to do about it here, and a throw in a timer would end this process.
    }
  }, delayMs);
  timer.unref();
}

/** The report the exec stub writes when it waits at its exec gate (not a step index). */
const AT_GATE = -100n;

/**
 * The exec gate (see SpawnOptions.execGate), the program's part: disarm the parent-death signal
 * (the child outlives the process that made it) and pass the gate's fd to the exec stub, which
 * reports AT_GATE, blocks opening the FIFO for writing until `start` opens it for reading, and
 * writes the byte `start` reads (see @box/sys asm/exec-stub-x86_64.S for why the stub waits).
 */
function passGate(program: ChildProgram, gate: number): void {
  program.call('prctl', 'outlive the creating process', [PR_SET_PDEATHSIG, 0]);
  program.call('fcntl', 'pass the exec gate to the exec stub', [gate, F_SETFD, 0]);
}

/**
 * Host fds 0-2 that must land on another number are copied above 2 first, so an
 * earlier dup3 cannot overwrite them. The copies are closed by the caller after the clone.
 */
function moveLowStdio(stdio: readonly StdioSource[], toClose: number[]): StdioSource[] {
  return stdio.map((source, target) => {
    if (typeof source !== 'number' || source === target || source > 2) return source;
    const moved = dupCloexec(source, 3);
    toClose.push(moved);
    return moved;
  });
}

function wireStdio(program: ChildProgram, stdio: readonly StdioSource[], kept: readonly number[]): void {
  stdio.forEach((source, target) => {
    if (typeof source === 'number' && source === target) {
      // Node marks its own fds close-on-exec; keep this one open across execve.
      program.call('fcntl', `keep fd ${target} open`, [source, F_SETFD, 0]);
      return;
    }
    if (typeof source === 'number' && !kept.includes(source))
      throw new NamespaceConfigError(`fd ${source} for the child's fd ${target} was not kept open`);
    program.call('dup3', `set up fd ${target}`, [source, target, 0]);
  });
}

/**
 * close_range(2) over every gap between the fds to keep (fds 0-2 are handled by
 * wireStdio). The kept ones are close-on-exec, so the command gets none of them.
 */
function closeOtherFds(program: ChildProgram, keep: readonly number[]): void {
  const sorted = [...new Set(keep.filter((fd) => fd > 2))].sort((a, b) => a - b);
  let from = 3;
  for (const fd of [...sorted, 0x100000000]) {
    if (fd > from) {
      const last = Math.min(fd - 1, 0xffffffff);
      program.call('close_range', `close fds ${from}-${last === 0xffffffff ? 'max' : last}`, [from, last, 0]);
    }
    from = fd + 1;
  }
}

function armParentDeath(program: ChildProgram, signal: number, step: string): void {
  program.call('prctl', step, [PR_SET_PDEATHSIG, signal]);
}

/**
 * A real gid other than the effective one `gid`, for the exec stub's start: the kernel makes
 * a process that executes with differing real and effective ids non-dumpable, so container
 * root cannot take the stub's fds (the error pipe) or open its /proc files in the instant
 * before it executes the command; the stub then sets its real gid back to `gid`. 0 and 1 are
 * mapped in any user namespace box makes.
 */
function stubDecoyGid(gid: number): number {
  return gid === 0 ? 1 : 0;
}

/**
 * The last step: execute the exec stub from its sealed memfd, which executes the
 * command (see @box/sys asm/exec-stub-x86_64.S). Until then /proc/self/exe is the
 * host's node binary; a command, symlink, #! line or ELF interpreter naming
 * /proc/self/exe must never reach it (CVE-2019-5736), and after the stub it can't.
 * The error pipe stays open across the stub's execve so that a failing execve of
 * the command is still reported as this step's failure. The stub starts with a decoy
 * real gid (non-dumpable, see stubDecoyGid); that execve is a "secure" one, which
 * clears the parent-death signal, so the stub sets `deathSignal` again itself.
 * Its argv: the mode ("box-exec", or "box-init" to stay as the command's init), the error
 * pipe's fd (and ",GATE" with an exec gate), the parent-death signal, "--", the command's path
 * and argv; so an init's /proc/1/cmdline reads "box-init 5 0 -- /bin/sh sh -c …".
 */
function execThroughStub(
  program: ChildProgram,
  stub: number,
  errorFd: number,
  deathSignal: number,
  options: SpawnOptions,
): void {
  program.call('fcntl', 'pass the error pipe to the exec stub', [errorFd, F_SETFD, 0]);
  program.call('execveat', `exec ${options.path}`, [
    stub,
    program.string(''),
    program.stringArray([
      options.init ? 'box-init' : 'box-exec',
      options.execGate === undefined ? String(errorFd) : `${errorFd},${options.execGate}`,
      String(deathSignal),
      '--',
      options.path,
      ...options.args,
    ]),
    program.stringArray(options.env ?? []),
    AT_EMPTY_PATH,
  ]);
}

function setResourceLimit(program: ChildProgram, limit: ResourceLimit): void {
  const value = Buffer.alloc(16);
  value.writeBigUInt64LE(BigInt.asUintN(64, limit.soft), 0);
  value.writeBigUInt64LE(BigInt.asUintN(64, limit.hard), 8);
  program.call('prlimit64', `set the ${limit.name} limit`, [0, limit.resource, program.bytes(value), 0]);
}

/**
 * seccomp(SECCOMP_SET_MODE_FILTER). Without no_new_privs the kernel takes a filter only from a
 * task with CAP_SYS_ADMIN, which a non-root command no longer has once its credentials change:
 * then the filter goes in before them, and the few steps left (ids, capabilities, signal
 * dispositions, the exec stub) run under it, as in runc. With no_new_privs it is the last step
 * before the exec stub (whose setresgid, prctl and execve then run under it). TSYNC is harmless here (the child has one thread) and is what a
 * profile's flags ask for.
 */
function installSeccomp(program: ChildProgram, seccomp: SeccompFilter): void {
  const count = seccomp.filter.length / 8;
  if (!Number.isInteger(count) || count < 1 || count > 4096)
    throw new NamespaceConfigError(
      `a seccomp filter of ${seccomp.filter.length} bytes is not 1-4096 instructions`,
    );
  const filter = program.bytes(seccomp.filter);
  // struct sock_fprog { unsigned short len; struct sock_filter *filter; }
  const header = Buffer.alloc(16);
  header.writeUInt16LE(count, 0);
  const prog = program.bytes(header);
  program.pointerAt(prog, filter, 8);
  program.call('seccomp', `install the seccomp filter (${count} instructions)`, [
    SECCOMP_SET_MODE_FILTER,
    seccomp.flags,
    prog,
  ]);
}

function applyCredentials(program: ChildProgram, options: SpawnOptions): void {
  if (options.seccomp && !options.noNewPrivileges) installSeccomp(program, options.seccomp);
  const caps = options.capabilities;
  if (caps) {
    const keep = new Set(caps.bounding);
    for (let cap = 0; cap <= capLastCap(); cap++) {
      if (!keep.has(cap))
        program.call('prctl', `drop capability ${cap} from the bounding set`, [PR_CAPBSET_DROP, cap]);
    }
  }
  // In a new user namespace the child is nobody until it sets ids that are mapped.
  const cred = options.credentials ?? (options.uidMappings?.length ? { uid: 0, gid: 0 } : undefined);
  const nonRoot = (cred?.uid ?? 0) !== 0;
  // A non-root command gets capabilities only if asked (runc's ambient set): the permitted set
  // must then survive the change of uid, which clears it unless keep-caps is set.
  const keepCaps =
    nonRoot && caps !== undefined && (caps.permitted.length > 0 || (caps.ambient?.length ?? 0) > 0);
  if (keepCaps)
    program.call('prctl', 'keep capabilities across the change of uid', [PR_SET_KEEPCAPS, 1, 0, 0, 0]);
  if (cred) {
    const groups = Buffer.alloc(4 * Math.max(1, cred.additionalGids?.length ?? 0));
    for (const [i, gid] of (cred.additionalGids ?? []).entries()) groups.writeUInt32LE(gid, 4 * i);
    program.call('setgroups', 'set supplementary groups', [
      cred.additionalGids?.length ?? 0,
      program.bytes(groups),
    ]);
    // The real gid is a decoy until the exec stub evens it out (see stubDecoyGid).
    program.call(
      'setresgid',
      `set gid ${cred.gid} (real gid ${stubDecoyGid(cred.gid)} until the exec stub)`,
      [stubDecoyGid(cred.gid), cred.gid, cred.gid],
    );
    program.call('setresuid', `set uid ${cred.uid}`, [cred.uid, cred.uid, cred.uid]);
    stayUndumpable(program);
  } else {
    const gid = process.getegid?.() ?? 0;
    program.call('setresgid', 'set the real gid for the exec stub', [stubDecoyGid(gid), -1, -1]);
  }
  // A non-root user loses its capabilities on setresuid, as docker users expect, unless asked.
  if (caps && (!nonRoot || keepCaps)) {
    const header = Buffer.alloc(8);
    header.writeUInt32LE(0x20080522, 0);
    const data = Buffer.alloc(24);
    const [eLo, eHi] = capMask(caps.effective);
    const [pLo, pHi] = capMask(caps.permitted);
    const [iLo, iHi] = capMask(caps.inheritable);
    data.writeUInt32LE(eLo, 0);
    data.writeUInt32LE(pLo, 4);
    data.writeUInt32LE(iLo, 8);
    data.writeUInt32LE(eHi, 12);
    data.writeUInt32LE(pHi, 16);
    data.writeUInt32LE(iHi, 20);
    program.call('capset', 'set capabilities', [program.bytes(header), program.bytes(data)]);
    for (const cap of caps.ambient ?? [])
      program.call('prctl', `raise ambient capability ${cap}`, [
        PR_CAP_AMBIENT,
        PR_CAP_AMBIENT_RAISE,
        cap,
        0,
        0,
      ]);
  }
  if (options.noNewPrivileges) program.call('prctl', 'set no_new_privs', [PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0]);
}

const EINVAL = 22;
const EPIPE = 32;
const SIGKILL = 9;

function resetSignals(program: ChildProgram): void {
  // Handlers that Node installed and SIG_IGN dispositions would survive execve.
  const dfl = program.alloc(32);
  for (let sig = 1; sig <= 64; sig++) {
    if (sig === 9 || sig === 19) continue;
    program.call('rt_sigaction', `reset signal ${sig}`, [sig, dfl, 0, 8], { ignore: EINVAL });
  }
  program.call('rt_sigprocmask', 'unblock signals', [2, program.alloc(8), 0, 8]);
}
