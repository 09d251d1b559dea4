import { readFileSync } from 'node:fs';
import type { Capabilities, Credentials } from '@box/ns';
import { SpecError } from './errors.js';
import type { Process } from './spec.js';

/** Linux capability numbers by name (linux/capability.h). */
export const CAPABILITIES: Readonly<Record<string, number>> = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14,
  CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16,
  CAP_SYS_RAWIO: 17,
  CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_BOOT: 22,
  CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24,
  CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26,
  CAP_MKNOD: 27,
  CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31,
  CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33,
  CAP_SYSLOG: 34,
  CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36,
  CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
  CAP_CHECKPOINT_RESTORE: 40,
};

export function capabilityNumbers(names: readonly string[] = []): number[] {
  return names.map((name) => {
    const n =
      CAPABILITIES[name.toUpperCase().startsWith('CAP_') ? name.toUpperCase() : `CAP_${name.toUpperCase()}`];
    if (n === undefined) throw new SpecError(`unknown capability "${name}"`);
    return n;
  });
}

/**
 * docker's --cap-add / --cap-drop on a base set: names with or without `CAP_`, any case, and
 * `ALL`. With ALL added: every capability but the dropped ones; with ALL dropped: only the added
 * ones; otherwise the base set without the dropped ones, then the added ones.
 */
export function tweakCapabilities(
  base: readonly string[],
  add: readonly string[] = [],
  drop: readonly string[] = [],
): string[] {
  const normalize = (names: readonly string[]) =>
    names.map((name) => {
      const upper = name.trim().toUpperCase();
      if (upper === 'ALL') return 'ALL';
      const full = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
      if (CAPABILITIES[full] === undefined) throw new SpecError(`unknown capability: "${name}"`);
      return full;
    });
  const adds = normalize(add);
  const drops = normalize(drop);
  if (adds.length === 0 && drops.length === 0) return [...base];
  const all = Object.keys(CAPABILITIES);
  let caps: string[];
  if (adds.includes('ALL')) caps = all.filter((c) => !drops.includes(c));
  else if (drops.includes('ALL')) caps = adds;
  else caps = [...base.filter((c) => !drops.includes(c)), ...adds];
  return [...new Set(caps)];
}

/**
 * The capabilities this process holds (its permitted set), by name. A container can be given
 * no more: capset fails for any other. (Root on some hosts lacks some, CAP_SYS_RESOURCE say.)
 */
export function ownCapabilities(): string[] {
  const mask = ownCapabilitySet('CapPrm');
  return Object.entries(CAPABILITIES)
    .filter(([, n]) => ((mask >> BigInt(n)) & 1n) === 1n)
    .map(([name]) => name);
}

/** Whether this process holds capability number `cap` in its effective set. */
export function hasCapability(cap: number): boolean {
  return ((ownCapabilitySet('CapEff') >> BigInt(cap)) & 1n) === 1n;
}

/** One of this process's capability sets, from /proc/self/status. */
function ownCapabilitySet(field: 'CapPrm' | 'CapEff'): bigint {
  const hex = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(
    readFileSync('/proc/self/status', 'utf8'),
  )?.[1];
  return BigInt(`0x${hex ?? '0'}`);
}

/**
 * The ambient capabilities the kernel lets a process raise: only those also in its permitted
 * and inheritable sets (prctl(PR_CAP_AMBIENT_RAISE) is EPERM otherwise). runc raises each and
 * ignores that refusal, so a config listing ambient capabilities without inheritable ones
 * (`runc spec`'s own) still runs; here they are left out before the start instead.
 */
function raisableAmbient(caps: NonNullable<Process['capabilities']>): number[] {
  const ambient = capabilityNumbers(caps.ambient);
  const permitted = new Set(capabilityNumbers(caps.permitted) ?? []);
  const inheritable = new Set(capabilityNumbers(caps.inheritable) ?? []);
  return ambient.filter((cap) => permitted.has(cap) && inheritable.has(cap));
}

/** An OCI process's user and capabilities, as @box/ns spawn takes them (run and exec alike). */
export function processCredentials(proc: Process): { credentials: Credentials; capabilities?: Capabilities } {
  const caps = proc.capabilities;
  return {
    credentials: { uid: proc.user.uid, gid: proc.user.gid, additionalGids: proc.user.additionalGids },
    capabilities: caps && {
      bounding: capabilityNumbers(caps.bounding),
      effective: capabilityNumbers(caps.effective),
      permitted: capabilityNumbers(caps.permitted),
      inheritable: capabilityNumbers(caps.inheritable),
      ambient: raisableAmbient(caps),
    },
  };
}
