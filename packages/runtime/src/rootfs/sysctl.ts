/**
 * Kernel parameters for one container (OCI `linux.sysctl`, docker's `--sysctl`). Only those
 * the kernel keeps per namespace may be set, and only when the container has that namespace
 * of its own: anything else would change the host (docker's and runc's rule).
 *
 * They are written by the container's child through its own /proc after pivot_root and
 * before /proc/sys is made read-only (as runc), so a key can only ever name a file of the
 * container's procfs: keys are checked to be plain names, never `..` or a path.
 */

import type { NamespaceType } from '@box/ns';
import { AT_FDCWD, type ChildProgram, O_CLOEXEC, O_NOFOLLOW, O_WRONLY, type Slot } from '@box/sys';
import { SpecError } from '../errors.js';

/** IPC-namespaced keys outside fs.mqueue (ipc/ipc_sysctl.c). */
const IPC_KEYS = new Set([
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);

const COMPONENT = /^[A-Za-z0-9_@:+-][A-Za-z0-9_.@:+-]*$/;

/** `net.ipv4.ip_forward` or `net/ipv4/conf/eth0.100/forwarding` → its path under /proc/sys. */
export function sysctlPath(key: string): string {
  const parts = key.includes('/') ? key.split('/') : key.split('.');
  for (const part of parts) {
    if (!COMPONENT.test(part) || part === '.' || part === '..')
      throw new SpecError(`invalid sysctl name "${key}"`);
  }
  return parts.join('/');
}

/**
 * The namespace a key belongs to, or undefined if it is not namespaced (it is then refused).
 * `net.*` with a network namespace, `kernel.shm*`/`msg*`/`sem` and `fs.mqueue.*` with an IPC one,
 * `kernel.domainname` with a UTS one (kernel.hostname is set through the spec's hostname).
 */
export function sysctlNamespace(key: string): NamespaceType | undefined {
  const dotted = sysctlPath(key).replaceAll('/', '.');
  if (dotted.startsWith('net.')) return 'network';
  if (IPC_KEYS.has(dotted) || dotted.startsWith('fs.mqueue.')) return 'ipc';
  if (dotted === 'kernel.domainname') return 'uts';
  return undefined;
}

/** Checks every key against the namespaces the container gets of its own (new, not joined). */
export function validateSysctls(
  sysctl: Readonly<Record<string, string>>,
  own: ReadonlySet<NamespaceType>,
): void {
  for (const [key, value] of Object.entries(sysctl)) {
    const ns = sysctlNamespace(key);
    if (ns === undefined) throw new SpecError(`sysctl "${key}" is not in a separate kernel namespace`);
    if (!own.has(ns)) throw new SpecError(`sysctl "${key}" needs a ${ns} namespace of the container's own`);
    if (typeof value !== 'string' || value.includes('\0'))
      throw new SpecError(`sysctl "${key}": invalid value ${JSON.stringify(value)}`);
  }
}

/**
 * Writes `value` to a file of the container's /proc (open O_NOFOLLOW, write, close), through `fd`,
 * a slot free for these steps (a program has 16 in all: one serves every write).
 */
export function addProcWrite(
  program: ChildProgram,
  path: string,
  value: string,
  step: string,
  fd: Slot,
): void {
  const data = Buffer.from(value, 'utf8');
  program.call(
    'openat',
    `${step}: open ${path}`,
    [AT_FDCWD, program.string(path), O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0],
    {
      store: fd,
    },
  );
  program.call('write', step, [fd, program.bytes(data, 1), data.length]);
  program.close(fd, `${step}: close ${path}`);
}

export function addSysctlSteps(
  program: ChildProgram,
  sysctl: Readonly<Record<string, string>>,
  fd: Slot,
): void {
  for (const [key, value] of Object.entries(sysctl)) {
    addProcWrite(program, `/proc/sys/${sysctlPath(key)}`, value, `set sysctl ${key}=${value}`, fd);
  }
}
