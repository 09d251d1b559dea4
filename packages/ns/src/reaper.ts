/**
 * Awaits the exit of children without blocking the event loop or a thread of
 * libuv's pool: on every SIGCHLD (delivered through the event loop) each
 * watched pid is polled with waitpid(WNOHANG). libuv reaps only its own
 * children by pid, so the two never steal each other's exits. A slow ref'd
 * timer keeps the loop alive while children run and covers a lost signal.
 *
 * No pidfd is needed here: these pids are our own children, and a child's pid
 * cannot be reused until we reap it (an unreaped zombie keeps it), so
 * waitpid(pid) always names the child that was started. The handle's kill()
 * stops at reaping for the same reason. (Processes that are not our children,
 * a container found again after a restart, are waited for through a pidfd: see
 * @box/runtime openProcess.)
 */
import { tryWait, type WaitStatus } from '@box/sys';

const watched = new Map<number, (status: WaitStatus) => void>();
let timer: NodeJS.Timeout | undefined;

function poll(): void {
  for (const [pid, resolve] of watched) {
    let status: WaitStatus | null;
    try {
      status = tryWait(pid);
    } catch {
      // ECHILD: reaped elsewhere; report it as lost rather than hang.
      status = { exitCode: 255, signal: null };
    }
    if (status) {
      watched.delete(pid);
      resolve(status);
    }
  }
  if (watched.size === 0) stop();
}

function stop(): void {
  process.removeListener('SIGCHLD', poll);
  if (timer) clearInterval(timer);
  timer = undefined;
}

/** Installs the SIGCHLD listener; call before creating a child so no exit is missed. */
export function armReaper(): void {
  if (timer) return;
  process.on('SIGCHLD', poll);
  timer = setInterval(poll, 1000);
}

/** Resolves when `pid` (a child of this process) ends. armReaper() must have been called. */
export function watchExit(pid: number): Promise<WaitStatus> {
  armReaper();
  return new Promise((resolve) => {
    watched.set(pid, resolve);
    // The child may already be gone.
    queueMicrotask(poll);
  });
}
