/**
 * Whether setns(2) takes a pidfd on this kernel (Linux 5.8). Then a process's namespaces
 * are joined through a pidfd of it, all in one call, and a pid that was reused meanwhile
 * cannot send a join into another process's namespaces (see spawn's `joinProcess`).
 */
import { CLONE_NEWUTS, close, pidfdOpen, setns } from '@box/sys';

let known: boolean | undefined;

/**
 * Probed once by joining this process's own UTS namespace through a pidfd of this process:
 * on the main thread, whose namespace that is, a no-op where it works, while older kernels
 * refuse an fd that is not a namespace file (EINVAL). Without the rights to join (EPERM) it
 * answers false, and joins by namespace file fail as they would have anyway.
 */
export function canJoinByPidfd(): boolean {
  if (known !== undefined) return known;
  let pidfd: number;
  try {
    pidfd = pidfdOpen(process.pid);
  } catch {
    known = false; // ENOSYS: no pidfds at all (before Linux 5.3)
    return known;
  }
  try {
    setns(pidfd, CLONE_NEWUTS, 'a pidfd of this process');
    known = true;
  } catch {
    known = false;
  } finally {
    close(pidfd);
  }
  return known;
}
