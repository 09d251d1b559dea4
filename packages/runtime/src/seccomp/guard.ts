/**
 * A profile must not fake box's own last steps. Without no_new_privs the filter is installed
 * before the container's process changes its user and capabilities (only a privileged task may
 * install one), so `SCMP_ACT_ERRNO` with errno 0 on setresuid, capset or prctl would make each of
 * those steps "succeed" without happening: the command would run as root with every capability
 * box holds, whatever `--user` and `--cap-drop` said. Such a profile is refused.
 * The exec stub's own calls run under the filter too, with or without no_new_privs: errno 0 on
 * openat, write or close would fake its wait at the exec gate (the command would run before
 * `start`, or keep the gate's fd of the host's FIFO), and on fcntl its close-on-exec of the
 * host's error pipe.
 */
import { SeccompError } from '../errors.js';
import type { LinuxSeccomp } from './types.js';

/** The calls of the set-up after the filter is in (and their relatives a profile might name). */
const GUARDED = new Set([
  'setgroups',
  'setgroups32',
  'setresgid',
  'setresgid32',
  'setresuid',
  'setresuid32',
  'setgid',
  'setgid32',
  'setuid',
  'setuid32',
  'setregid',
  'setregid32',
  'setreuid',
  'setreuid32',
  'setfsgid',
  'setfsgid32',
  'setfsuid',
  'setfsuid32',
  'capset',
  'prctl',
  'execve',
  'execveat',
  'openat',
  'write',
  'close',
  'fcntl',
]);

export function checkSeccompKeepsSetup(seccomp: LinuxSeccomp, source = 'linux.seccomp'): void {
  const named = new Set<string>();
  for (const [i, rule] of (seccomp.syscalls ?? []).entries()) {
    for (const name of rule.names ?? []) {
      if (!GUARDED.has(name)) continue;
      named.add(name);
      if (rule.action === 'SCMP_ACT_ERRNO' && rule.errnoRet === 0)
        throw new SeccompError(
          `seccomp profile ${source}: syscalls[${i}]: errnoRet 0 for "${name}" would make a step of the container's set-up (its user, capabilities or exec gate) look done while it is not`,
        );
    }
  }
  if (seccomp.defaultAction === 'SCMP_ACT_ERRNO' && seccomp.defaultErrnoRet === 0) {
    const unnamed = [...GUARDED].find((name) => !named.has(name) && !name.endsWith('32'));
    if (unnamed)
      throw new SeccompError(
        `seccomp profile ${source}: defaultErrnoRet 0 would make "${unnamed}" (not named in the profile) look done while it is not`,
      );
  }
}
