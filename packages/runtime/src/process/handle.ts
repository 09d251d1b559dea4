/**
 * A handle on a running process that can never act on another one (a container's init, a
 * process box did not start itself, or one started by an earlier box).
 *
 * A pid alone is not enough: once a process has been reaped, its pid can name a new process,
 * and kill(pid) or /proc/PID then reach that one. So openProcess pins the process first and
 * checks which one it pinned afterwards:
 *   1. pidfd_open(pid): from now on the pidfd names this process and no other.
 *   2. open /proc/PID (a directory fd is bound to the process it was opened for: files
 *      opened through it fail with ESRCH once that process is gone, even if the pid is
 *      reused) and read its stat through it.
 *   3. pidfd_send_signal(pidfd, 0): the process is still there (a zombie counts), so its
 *      pid was not free at any moment since step 1: the directory and the stat are its own.
 *   4. the start time in that stat must equal the one recorded when the process was started
 *      (if the caller has one): otherwise the pid names another process now.
 * Then signals go through pidfd_send_signal, `exited` waits for the pidfd to become readable
 * (also for a process that is not our child; @box/sys waitReadable, no polling), and
 * namespaces are joined with setns(pidfd) (see exec.ts).
 *
 * Fallback, for kernels without pidfd_open (before Linux 5.3; ENOSYS): steps 2 and 4 only.
 * `exited` then polls the stat through the directory fd every 100 ms, which is still
 * exact (the directory cannot show a later process). Signals use kill(2) right after the
 * directory showed the process alive: if it is reaped and its pid reused within that
 * instant, the signal reaches the new process. That race is the reason pidfds exist; it is
 * accepted on those kernels only.
 */
import { closeSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import {
  AT_FDCWD,
  kill,
  O_DIRECTORY,
  O_PATH,
  openat,
  pidfdOpen,
  pidfdSendSignal,
  type ReadableWait,
  SyscallError,
  waitReadable,
} from '@box/sys';
import { RuntimeError } from '../errors.js';
import { isEnded, type ProcessStat, readProcessStat } from './stat.js';

const POLL_INTERVAL_MS = 100;

export interface ProcessHandle {
  readonly pid: number;
  /** Field 22 of the process's /proc/PID/stat: with the pid, it names the process for good. */
  readonly startTime: number;
  /** The pidfd (owned by the handle, valid until close()); undefined on kernels without pidfds. */
  readonly pidfd: number | undefined;
  /**
   * An fd (O_PATH) of the process's /proc/PID directory, owned by the handle and valid until
   * close(). Files opened relative to it belong to this process or fail with ESRCH.
   */
  readonly procDir: number;
  /**
   * Resolves when the process ends (exits or is killed; it may still be an unreaped zombie).
   * The wait starts on first use; while it is pending it keeps Node.js running, as a child
   * process does. After close() it never settles.
   */
  readonly exited: Promise<void>;
  /** Sends `signal` (0 probes). False, and nothing sent, when the process has ended. */
  signal(signal: NodeJS.Signals | number): boolean;
  /** Stops any wait and closes the fds. Idempotent. */
  close(): void;
}

/**
 * Opens a handle on process `pid`, or returns undefined when there is no such process, it
 * has ended (a zombie), or `startTime` is given and the pid now names a process that started
 * at another time. Throws a RuntimeError for a pid that is not a process's (a thread id).
 */
export function openProcess(pid: number, startTime?: number): ProcessHandle | undefined {
  return openProcessWith(pid, startTime, pidfdUsable);
}

/** Whether pidfd_open exists here; cleared on the first ENOSYS. */
let pidfdUsable = true;

/** openProcess with the pidfd route chosen by the caller (false: the fallback; for tests). */
export function openProcessWith(
  pid: number,
  startTime: number | undefined,
  usePidfd: boolean,
): ProcessHandle | undefined {
  if (!Number.isSafeInteger(pid) || pid <= 0)
    throw new RuntimeError('EINVAL', `not a process id: ${JSON.stringify(pid)}`);
  let pidfd: number | undefined;
  if (usePidfd) {
    try {
      pidfd = pidfdOpen(pid);
    } catch (error) {
      const code = (error as SyscallError).code;
      if (code === 'ESRCH') return undefined;
      if (code === 'ENOSYS') pidfdUsable = false;
      // The pid has no process: a thread's id (EINVAL on older kernels, ENOENT on 6.18), or a
      // process reaped right between the kernel's lookup of the pid and its check.
      else if (code === 'EINVAL' || code === 'ENOENT') {
        if (!isThread(pid)) return undefined;
        throw new RuntimeError('EINVAL', `${pid} is the id of a thread, not of a process`, { cause: error });
      } else
        throw new RuntimeError(code ?? 'EPIDFD', `cannot open process ${pid}: ${(error as Error).message}`, {
          cause: error,
        });
    }
  }
  if (pidfd === undefined && isThread(pid))
    throw new RuntimeError('EINVAL', `${pid} is the id of a thread, not of a process`);
  let procDir: number | undefined;
  try {
    try {
      procDir = openat(AT_FDCWD, `/proc/${pid}`, O_PATH | O_DIRECTORY);
    } catch (error) {
      if (error instanceof SyscallError && error.code === 'ENOENT') return undefined;
      throw error;
    }
    const stat = readProcessStat(procDir);
    if (!stat || isEnded(stat)) return undefined;
    if (pidfd !== undefined && !probe(pidfd)) return undefined;
    if (startTime !== undefined && stat.startTime !== startTime) return undefined;
    const handle = new Handle(pid, stat.startTime, pidfd, procDir);
    pidfd = procDir = undefined; // the handle owns them now
    return handle;
  } finally {
    if (procDir !== undefined) closeSync(procDir);
    if (pidfd !== undefined) closeSync(pidfd);
  }
}

/** Whether `pid` is a thread other than its process's main thread (Tgid in /proc/PID/status). */
function isThread(pid: number): boolean {
  try {
    const tgid = /^Tgid:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return tgid !== undefined && Number(tgid) !== pid;
  } catch {
    return false;
  }
}

/** pidfd_send_signal(pidfd, 0): false once the process has been reaped. */
function probe(pidfd: number): boolean {
  try {
    pidfdSendSignal(pidfd, 0);
    return true;
  } catch (error) {
    if ((error as SyscallError).code === 'ESRCH') return false;
    throw error;
  }
}

function signalNumber(signal: NodeJS.Signals | number): number {
  if (typeof signal === 'number') return signal;
  const n = constants.signals[signal];
  if (n === undefined) throw new RuntimeError('EINVAL', `unknown signal ${signal}`);
  return n;
}

class Handle implements ProcessHandle {
  private wait: Promise<void> | undefined;
  private stopWait: (() => void) | undefined;
  private closed = false;

  constructor(
    readonly pid: number,
    readonly startTime: number,
    readonly pidfd: number | undefined,
    readonly procDir: number,
  ) {}

  get exited(): Promise<void> {
    this.wait ??= this.closed ? new Promise(() => {}) : this.watch();
    return this.wait;
  }

  signal(signal: NodeJS.Signals | number): boolean {
    if (this.closed) throw new RuntimeError('ECLOSED', `the handle on process ${this.pid} is closed`);
    const n = signalNumber(signal);
    try {
      // A zombie has ended too, though the kernel would take a signal for it.
      if (!this.running()) return false;
      if (this.pidfd !== undefined) pidfdSendSignal(this.pidfd, n);
      else kill(this.pid, n);
      return true;
    } catch (error) {
      if ((error as SyscallError).code === 'ESRCH') return false;
      throw new RuntimeError(
        (error as SyscallError).code ?? 'ESIGNAL',
        `cannot signal process ${this.pid}: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // The wait ends before the fd it watches is closed (see @box/sys waitReadable).
    this.stopWait?.();
    if (this.pidfd !== undefined) closeSync(this.pidfd);
    closeSync(this.procDir);
  }

  private running(): boolean {
    const stat: ProcessStat | undefined = readProcessStat(this.procDir);
    return stat !== undefined && !isEnded(stat);
  }

  private watch(): Promise<void> {
    if (this.pidfd !== undefined) {
      const wait: ReadableWait = waitReadable(this.pidfd);
      this.stopWait = () => wait.cancel();
      return wait.ready;
    }
    return new Promise((resolve) => {
      const check = () => {
        if (this.running()) return;
        clearInterval(timer);
        resolve();
      };
      const timer = setInterval(check, POLL_INTERVAL_MS);
      this.stopWait = () => clearInterval(timer);
      check();
    });
  }
}
