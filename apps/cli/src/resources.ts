/** docker's resource flags → OCI linux.resources, checked with docker's rules and messages. */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseCpus, parseCpuset, parseSize } from '@box/cgroups';
import type { LinuxResources } from '@box/runtime';
import { CliError } from './errors.js';

export interface ResourceFlags {
  memory?: string;
  memorySwap?: string;
  memoryReservation?: string;
  cpus?: string;
  cpuShares?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: string;
}

const MIN_MEMORY = 6 * 1024 * 1024;

function size(flag: string, value: string): number {
  try {
    return parseSize(value);
  } catch (error) {
    throw new CliError(`invalid argument "${value}" for "${flag}" flag: ${(error as Error).message}`);
  }
}

function integer(flag: string, value: string): number {
  if (!/^-?\d+$/.test(value.trim()))
    throw new CliError(`invalid argument "${value}" for "${flag}" flag: not an integer`);
  return Number(value);
}

function readList(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '0';
  }
}

export function parseResourceFlags(flags: ResourceFlags): LinuxResources {
  const resources: LinuxResources = {};
  const memory: NonNullable<LinuxResources['memory']> = {};
  if (flags.memory !== undefined) {
    memory.limit = size('--memory', flags.memory);
    if (memory.limit < MIN_MEMORY) throw new CliError('Minimum memory limit allowed is 6MB');
  }
  if (flags.memoryReservation !== undefined) {
    memory.reservation = size('--memory-reservation', flags.memoryReservation);
    if (memory.reservation < MIN_MEMORY) throw new CliError('Minimum memory reservation allowed is 6MB');
    if (memory.limit !== undefined && memory.reservation > memory.limit) {
      throw new CliError('Minimum memory limit can not be less than memory reservation limit, see usage');
    }
  }
  if (flags.memorySwap !== undefined) {
    if (memory.limit === undefined) {
      throw new CliError('You should always set the Memory limit when using Memoryswap limit, see usage');
    }
    memory.swap = flags.memorySwap.trim() === '-1' ? -1 : size('--memory-swap', flags.memorySwap);
    if (memory.swap !== -1 && memory.swap < memory.limit) {
      throw new CliError('Minimum memoryswap limit should be larger than memory limit, see usage');
    }
  }
  if (Object.keys(memory).length > 0) resources.memory = memory;

  const cpu: NonNullable<LinuxResources['cpu']> = {};
  if (flags.cpus !== undefined) {
    const available = availableParallelism();
    try {
      Object.assign(cpu, parseCpus(flags.cpus, available));
    } catch (error) {
      throw new CliError(
        `invalid argument "${flags.cpus}" for "--cpus" flag: ${(error as Error).message} (range is 0.01 to ${available}.00)`,
      );
    }
  }
  if (flags.cpuShares !== undefined) {
    const shares = integer('--cpu-shares', flags.cpuShares);
    if (shares !== 0 && (shares < 2 || shares > 262144)) {
      throw new CliError(
        `invalid argument "${flags.cpuShares}" for "--cpu-shares" flag: must be between 2 and 262144`,
      );
    }
    if (shares !== 0) cpu.shares = shares;
  }
  const cpuset = (flag: string, value: string, online: string) => {
    try {
      return parseCpuset(value, online);
    } catch (error) {
      throw new CliError(`invalid argument "${value}" for "${flag}" flag: ${(error as Error).message}`);
    }
  };
  if (flags.cpusetCpus !== undefined) {
    cpu.cpus = cpuset('--cpuset-cpus', flags.cpusetCpus, readList('/sys/devices/system/cpu/online'));
  }
  if (flags.cpusetMems !== undefined) {
    cpu.mems = cpuset('--cpuset-mems', flags.cpusetMems, readList('/sys/devices/system/node/online'));
  }
  if (Object.keys(cpu).length > 0) resources.cpu = cpu;

  if (flags.pidsLimit !== undefined) {
    const limit = integer('--pids-limit', flags.pidsLimit);
    // docker: 0 and -1 mean unlimited.
    if (limit > 0) resources.pids = { limit };
  }
  return resources;
}
