/**
 * Resource limits (OCI `process.rlimits`, docker's `--ulimit`): names, numbers and the check
 * against what this process may grant. They are set in the container's child with prlimit64
 * before its credentials change (see @box/ns spawn).
 */
import { readFileSync } from 'node:fs';
import type { ResourceLimit } from '@box/ns';
import { hasCapability } from '../capabilities.js';
import { SpecError } from '../errors.js';

/** RLIMIT_* numbers (asm-generic/resource.h, the same on x86_64 and aarch64). */
export const RLIMITS: Readonly<Record<string, number>> = {
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
};

/** RLIM_INFINITY. JSON numbers cannot hold 2^64-1 exactly: anything from 2^63 up means it. */
export const RLIM_INFINITY = 0xffffffffffffffffn;

export interface POSIXRlimit {
  /** RLIMIT_NOFILE, ... */
  type: string;
  hard: number;
  soft: number;
}

function limitValue(value: number): bigint {
  return value >= 2 ** 63 ? RLIM_INFINITY : BigInt(value);
}

/** Checks the spec's rlimits (names, soft ≤ hard, no repeats). */
export function validateRlimits(rlimits: readonly POSIXRlimit[]): void {
  const seen = new Set<string>();
  for (const [i, limit] of rlimits.entries()) {
    const where = `process.rlimits[${i}]`;
    if (RLIMITS[limit?.type] === undefined)
      throw new SpecError(`${where}: unknown rlimit type "${limit?.type}"`);
    if (seen.has(limit.type)) throw new SpecError(`${where}: ${limit.type} given twice`);
    seen.add(limit.type);
    for (const key of ['soft', 'hard'] as const) {
      if (!Number.isInteger(limit[key]) || limit[key] < 0)
        throw new SpecError(`${where}.${key}: not a non-negative integer: ${limit[key]}`);
    }
    if (limitValue(limit.soft) > limitValue(limit.hard))
      throw new SpecError(`${where}: soft limit ${limit.soft} is above the hard limit ${limit.hard}`);
  }
}

/** The rlimits as @box/ns spawn takes them. */
export function resourceLimits(rlimits: readonly POSIXRlimit[] = []): ResourceLimit[] {
  return rlimits.map((limit) => ({
    resource: RLIMITS[limit.type]!,
    soft: limitValue(limit.soft),
    hard: limitValue(limit.hard),
    name: limit.type.slice('RLIMIT_'.length).toLowerCase(),
  }));
}

/** This process's hard limit of `type` (/proc/self/limits), RLIM_INFINITY for "unlimited". */
function ownHardLimit(type: string, limits: string): bigint | undefined {
  const label: Record<string, string> = {
    RLIMIT_CPU: 'Max cpu time',
    RLIMIT_FSIZE: 'Max file size',
    RLIMIT_DATA: 'Max data size',
    RLIMIT_STACK: 'Max stack size',
    RLIMIT_CORE: 'Max core file size',
    RLIMIT_RSS: 'Max resident set',
    RLIMIT_NPROC: 'Max processes',
    RLIMIT_NOFILE: 'Max open files',
    RLIMIT_MEMLOCK: 'Max locked memory',
    RLIMIT_AS: 'Max address space',
    RLIMIT_LOCKS: 'Max file locks',
    RLIMIT_SIGPENDING: 'Max pending signals',
    RLIMIT_MSGQUEUE: 'Max msgqueue size',
    RLIMIT_NICE: 'Max nice priority',
    RLIMIT_RTPRIO: 'Max realtime priority',
    RLIMIT_RTTIME: 'Max realtime timeout',
  };
  const line = limits.split('\n').find((l) => l.startsWith(label[type] ?? '\0'));
  const hard = line?.slice(26).trim().split(/\s+/)[1];
  if (hard === undefined) return undefined;
  return hard === 'unlimited' ? RLIM_INFINITY : BigInt(hard);
}

const CAP_SYS_RESOURCE = 24;

/**
 * The first limit the kernel would refuse: a hard limit above this process's own needs
 * CAP_SYS_RESOURCE (which root lacks on some hosts). undefined when all can be set.
 */
export function unattainableRlimit(
  rlimits: readonly POSIXRlimit[] = [],
): { limit: POSIXRlimit; hostHard: bigint } | undefined {
  if (rlimits.length === 0 || hasCapability(CAP_SYS_RESOURCE)) return undefined;
  const limits = readFileSync('/proc/self/limits', 'utf8');
  for (const limit of rlimits) {
    const hostHard = ownHardLimit(limit.type, limits);
    if (hostHard !== undefined && limitValue(limit.hard) > hostHard) return { limit, hostHard };
  }
  return undefined;
}
