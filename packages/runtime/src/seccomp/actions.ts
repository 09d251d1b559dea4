import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { SeccompError } from '../errors.js';
import type { SeccompAction } from './types.js';

/** linux/seccomp.h SECCOMP_RET_*: the filter's return value is one of these | 16 bits of data. */
export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  USER_NOTIF: 0x7fc00000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

const EPERM = 1;

interface ActionInfo {
  ret: number;
  /** Its name in /proc/sys/kernel/seccomp/actions_avail. */
  avail: string;
  /** Whether errnoRet goes into the return value's data. */
  data: boolean;
}

const ACTIONS: Record<SeccompAction, ActionInfo> = {
  SCMP_ACT_KILL: { ret: SECCOMP_RET.KILL_THREAD, avail: 'kill_thread', data: false },
  SCMP_ACT_KILL_THREAD: { ret: SECCOMP_RET.KILL_THREAD, avail: 'kill_thread', data: false },
  SCMP_ACT_KILL_PROCESS: { ret: SECCOMP_RET.KILL_PROCESS, avail: 'kill_process', data: false },
  SCMP_ACT_TRAP: { ret: SECCOMP_RET.TRAP, avail: 'trap', data: false },
  SCMP_ACT_ERRNO: { ret: SECCOMP_RET.ERRNO, avail: 'errno', data: true },
  SCMP_ACT_TRACE: { ret: SECCOMP_RET.TRACE, avail: 'trace', data: true },
  SCMP_ACT_ALLOW: { ret: SECCOMP_RET.ALLOW, avail: 'allow', data: false },
  SCMP_ACT_LOG: { ret: SECCOMP_RET.LOG, avail: 'log', data: false },
  SCMP_ACT_NOTIFY: { ret: SECCOMP_RET.USER_NOTIF, avail: 'user_notif', data: false },
};

export function isSeccompAction(value: string): value is SeccompAction {
  return Object.hasOwn(ACTIONS, value);
}

/** Why a profile can't use SCMP_ACT_NOTIFY here. */
export const NOTIFY_UNSUPPORTED =
  'SCMP_ACT_NOTIFY is not supported: it needs a seccomp agent listening on listenerPath, which box does not run';

/**
 * The filter's return value for an action. errnoRet is the errno of SCMP_ACT_ERRNO and the
 * message of SCMP_ACT_TRACE; both default to EPERM, as in runc. The kernel keeps 16 bits of it.
 */
export function actionValue(action: SeccompAction, errnoRet?: number): number {
  const info = ACTIONS[action];
  if (!info) throw new SeccompError(`unknown action "${action}"`);
  if (action === 'SCMP_ACT_NOTIFY') throw new SeccompError(NOTIFY_UNSUPPORTED);
  return info.data ? (info.ret | ((errnoRet ?? EPERM) & 0xffff)) >>> 0 : info.ret;
}

/** The actions_avail name of an action, e.g. "kill_process". */
export function actionAvailName(action: SeccompAction): string {
  return ACTIONS[action].avail;
}

let errnoNames: Map<number, string> | undefined;

function errnoName(errno: number): string | undefined {
  if (!errnoNames) {
    errnoNames = new Map();
    for (const [name, value] of Object.entries(constants.errno))
      if (!errnoNames.has(value)) errnoNames.set(value, name);
  }
  return errnoNames.get(errno);
}

/**
 * A filter return value in libseccomp's words: "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO(1 EPERM)",
 * "SCMP_ACT_TRACE(7)", "SCMP_ACT_KILL_PROCESS", ...
 */
export function describeAction(ret: number): string {
  const action = (ret & 0xffff0000) >>> 0;
  const data = ret & 0xffff;
  switch (action) {
    case SECCOMP_RET.KILL_PROCESS:
      return 'SCMP_ACT_KILL_PROCESS';
    case SECCOMP_RET.KILL_THREAD:
      return 'SCMP_ACT_KILL_THREAD';
    case SECCOMP_RET.TRAP:
      return 'SCMP_ACT_TRAP';
    case SECCOMP_RET.ERRNO: {
      const name = errnoName(data);
      return `SCMP_ACT_ERRNO(${data}${name ? ` ${name}` : ''})`;
    }
    case SECCOMP_RET.USER_NOTIF:
      return 'SCMP_ACT_NOTIFY';
    case SECCOMP_RET.TRACE:
      return `SCMP_ACT_TRACE(${data})`;
    case SECCOMP_RET.LOG:
      return 'SCMP_ACT_LOG';
    case SECCOMP_RET.ALLOW:
      return 'SCMP_ACT_ALLOW';
    default:
      return `unknown action 0x${(ret >>> 0).toString(16).padStart(8, '0')}`;
  }
}

export const ACTIONS_AVAIL = '/proc/sys/kernel/seccomp/actions_avail';

let kernelActions: readonly string[] | undefined;

/** The actions this kernel's seccomp has (actions_avail, Linux 4.14), read once. */
export function kernelSeccompActions(): readonly string[] {
  if (!kernelActions) {
    let text: string;
    try {
      text = readFileSync(ACTIONS_AVAIL, 'utf8');
    } catch (error) {
      throw new SeccompError(
        `cannot tell which seccomp actions this kernel has: ${ACTIONS_AVAIL}: ${(error as Error).message} (Linux 4.14 or later is needed)`,
      );
    }
    kernelActions = text.trim().split(/\s+/);
  }
  return kernelActions;
}
