/**
 * docker's security and process flags of `run`/`create` → the engine's create options:
 * --privileged, --security-opt (no-new-privileges, seccomp=unconfined|PROFILE.json), --device,
 * --device-cgroup-rule, --ulimit, --sysctl, --oom-score-adj, --group-add, --init, --shm-size.
 * Syntax is checked here with docker's messages; meaning (does the device exist, is the sysctl
 * namespaced, does the profile parse) is the engine's.
 */
import { readFileSync } from 'node:fs';
import { parseSize } from '@box/cgroups';
import type { CreateOptions, DeviceRequest, Ulimit } from '@box/runtime';
import { CliError } from './errors.js';

export interface SecurityFlags {
  privileged?: boolean;
  securityOpt?: string[];
  device?: string[];
  deviceCgroupRule?: string[];
  ulimit?: string[];
  sysctl?: string[];
  oomScoreAdj?: string;
  groupAdd?: string[];
  init?: boolean;
  shmSize?: string;
}

type SecurityOptions = Pick<
  CreateOptions,
  | 'privileged'
  | 'noNewPrivileges'
  | 'seccomp'
  | 'devices'
  | 'deviceCgroupRules'
  | 'ulimits'
  | 'sysctls'
  | 'oomScoreAdj'
  | 'groupAdd'
  | 'init'
  | 'shmSize'
>;

/** A seccomp profile file, parsed as JSON (its fields are checked by the engine). */
function readProfile(path: string): { profile: unknown; source: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'no such file or directory'
        : (error as Error).message;
    throw new CliError(`opening seccomp profile (${path}) failed: ${reason}`);
  }
  try {
    return { profile: JSON.parse(text), source: path };
  } catch (error) {
    throw new CliError(`decoding seccomp profile ${path} failed: ${(error as Error).message}`);
  }
}

/**
 * docker's --security-opt: `no-new-privileges[=true|false]`, `seccomp=unconfined`,
 * `seccomp=PROFILE.json` (`:` works as `=`, as in docker). AppArmor and SELinux labels are
 * refused: this host has neither.
 */
export function parseSecurityOptions(
  values: readonly string[] = [],
): Pick<CreateOptions, 'noNewPrivileges' | 'seccomp'> {
  let noNewPrivileges = false;
  let seccomp: CreateOptions['seccomp'];
  for (const value of values) {
    const nnp = /^no-new-privileges(?:[=:](true|false))?$/.exec(value);
    if (nnp) {
      noNewPrivileges = nnp[1] !== 'false';
      continue;
    }
    const profile = /^seccomp[=:](.+)$/.exec(value);
    if (profile) {
      seccomp = profile[1] === 'unconfined' ? 'unconfined' : readProfile(profile[1]!);
      continue;
    }
    throw new CliError(
      `unsupported --security-opt "${value}": box takes no-new-privileges and seccomp=unconfined|PROFILE`,
    );
  }
  return { noNewPrivileges, ...(seccomp ? { seccomp } : {}) };
}

const PERMISSIONS = /^[rwm]{1,3}$/;

/** docker's --device HOST[:CONTAINER][:PERMISSIONS]. */
export function parseDevice(value: string): DeviceRequest {
  const parts = value.split(':');
  const [hostPath = '', second, third] = parts;
  if (parts.length > 3 || hostPath === '') throw new CliError(`invalid device specification: ${value}`);
  if (parts.length === 2 && PERMISSIONS.test(second!)) return { hostPath, permissions: second };
  return {
    hostPath,
    ...(second ? { containerPath: second } : {}),
    ...(third !== undefined ? { permissions: third } : {}),
  };
}

/** docker's --ulimit NAME=SOFT[:HARD] (-1: unlimited). */
export function parseUlimit(value: string): Ulimit {
  const match = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(value);
  if (!match)
    throw new CliError(`invalid argument "${value}" for "--ulimit" flag: expected NAME=SOFT[:HARD]`);
  const soft = Number(match[2]);
  return { name: match[1]!, soft, hard: match[3] === undefined ? soft : Number(match[3]) };
}

/** docker's --sysctl KEY=VALUE. */
export function parseSysctls(values: readonly string[] = []): Record<string, string> | undefined {
  if (values.length === 0) return undefined;
  const sysctls: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq <= 0) throw new CliError(`invalid argument "${value}" for "--sysctl" flag: expected KEY=VALUE`);
    sysctls[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return sysctls;
}

export function parseSecurityFlags(flags: SecurityFlags): SecurityOptions {
  let oomScoreAdj: number | undefined;
  if (flags.oomScoreAdj !== undefined) {
    if (!/^-?\d+$/.test(flags.oomScoreAdj.trim()))
      throw new CliError(
        `invalid argument "${flags.oomScoreAdj}" for "--oom-score-adj" flag: not an integer`,
      );
    oomScoreAdj = Number(flags.oomScoreAdj);
  }
  let shmSize: number | undefined;
  if (flags.shmSize !== undefined) {
    try {
      shmSize = parseSize(flags.shmSize);
    } catch (error) {
      throw new CliError(
        `invalid argument "${flags.shmSize}" for "--shm-size" flag: ${(error as Error).message}`,
      );
    }
  }
  return {
    ...parseSecurityOptions(flags.securityOpt),
    ...(flags.privileged ? { privileged: true } : {}),
    ...(flags.device?.length ? { devices: flags.device.map(parseDevice) } : {}),
    ...(flags.deviceCgroupRule?.length ? { deviceCgroupRules: flags.deviceCgroupRule } : {}),
    ...(flags.ulimit?.length ? { ulimits: flags.ulimit.map(parseUlimit) } : {}),
    ...(flags.sysctl?.length ? { sysctls: parseSysctls(flags.sysctl) } : {}),
    ...(oomScoreAdj !== undefined ? { oomScoreAdj } : {}),
    ...(flags.groupAdd?.length ? { groupAdd: flags.groupAdd } : {}),
    ...(flags.init ? { init: true } : {}),
    ...(shmSize !== undefined ? { shmSize } : {}),
  };
}
