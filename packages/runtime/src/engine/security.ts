/**
 * docker's security and process switches → the OCI config (create's second half): privileged,
 * devices and their cgroup rules, ulimits, sysctls, oom_score_adj, extra groups, /dev/shm's
 * size, and (last, because it depends on the final capabilities) the seccomp profile. Each is
 * checked before anything of the container exists, with docker's wording where docker has one.
 */
import { readFileSync } from 'node:fs';
import { hasCapability } from '../capabilities.js';
import { EngineError } from '../errors.js';
import { RLIMITS, unattainableRlimit } from '../process/rlimits.js';
import { DOCKER_DEFAULT_PROFILE } from '../seccomp/default-profile.js';
import { checkSeccompKeepsSetup } from '../seccomp/guard.js';
import { parseProfile, resolveProfile } from '../seccomp/profile.js';
import type { Spec } from '../spec.js';
import { hostDevices, parseDeviceCgroupRule, requestedDevices } from './devices.js';
import type { CreateOptions, Ulimit } from './types.js';
import { resolveGroups } from './user.js';

const CAP_SYS_RESOURCE = 24;

/** Checks what needs no image or record (create calls it first). */
export function checkSecurityOptions(options: CreateOptions): void {
  for (const ulimit of options.ulimits ?? []) rlimitOf(ulimit);
  const adj = options.oomScoreAdj;
  if (adj !== undefined && !(Number.isInteger(adj) && adj >= -1000 && adj <= 1000))
    throw new EngineError('EINVAL', `Invalid value ${adj}, range for oom score adj is [-1000, 1000]`);
  if (options.shmSize !== undefined && !(Number.isInteger(options.shmSize) && options.shmSize > 0))
    throw new EngineError(
      'EINVAL',
      `invalid shm size ${options.shmSize}: must be a positive number of bytes`,
    );
  for (const rule of options.deviceCgroupRules ?? []) parseDeviceCgroupRule(rule);
}

function rlimitOf(ulimit: Ulimit): { type: string; soft: number; hard: number } {
  const type = `RLIMIT_${ulimit.name.toUpperCase()}`;
  if (RLIMITS[type] === undefined || ulimit.name !== ulimit.name.toLowerCase())
    throw new EngineError('EINVAL', `invalid ulimit type: ${ulimit.name}`);
  const value = (n: number) => (n === -1 ? 2 ** 64 : n);
  for (const n of [ulimit.soft, ulimit.hard]) {
    if (!Number.isSafeInteger(n) || n < -1)
      throw new EngineError('EINVAL', `invalid ulimit ${ulimit.name} value: ${n}`);
  }
  if (value(ulimit.soft) > value(ulimit.hard))
    throw new EngineError(
      'EINVAL',
      `ulimit soft limit must be less than or equal to hard limit: ${ulimit.soft} > ${ulimit.hard}`,
    );
  return { type, soft: value(ulimit.soft), hard: value(ulimit.hard) };
}

/** Applies the switches to `spec` (whose capabilities are final); `layers` are the image's files. */
export function applySecurityOptions(spec: Spec, options: CreateOptions, layers: readonly string[]): void {
  const proc = spec.process!;
  spec.linux ??= {};
  const linux = spec.linux;
  linux.resources ??= {};
  const resources = linux.resources;
  if (options.privileged) {
    // As docker: the host's devices, all of them usable, nothing masked or read-only, a
    // writable /sys and cgroup. (No seccomp either: see the profile below.)
    linux.devices = hostDevices();
    resources.devices = [{ allow: true, type: 'a', access: 'rwm' }];
    linux.maskedPaths = [];
    linux.readonlyPaths = [];
    for (const mount of spec.mounts ?? []) {
      if (mount.destination === '/sys' || mount.destination === '/sys/fs/cgroup')
        mount.options = (mount.options ?? []).filter((o) => o !== 'ro');
    }
  }
  const requested = requestedDevices(options.devices);
  if (requested.devices.length > 0) {
    const paths = new Set(requested.devices.map((d) => d.path));
    linux.devices = [...(linux.devices ?? []).filter((d) => !paths.has(d.path)), ...requested.devices];
    resources.devices = [...(resources.devices ?? []), ...requested.rules];
  }
  for (const rule of options.deviceCgroupRules ?? [])
    resources.devices = [...(resources.devices ?? []), parseDeviceCgroupRule(rule)];

  if (options.ulimits?.length) {
    proc.rlimits = options.ulimits.map(rlimitOf);
    const refused = unattainableRlimit(proc.rlimits);
    if (refused) {
      const { limit, hostHard } = refused;
      const name = limit.type.slice('RLIMIT_'.length).toLowerCase();
      throw new EngineError(
        'EINVAL',
        `--ulimit ${name}: hard limit ${limit.hard >= 2 ** 63 ? 'unlimited' : limit.hard} is above this host's ${hostHard}, which only a process with CAP_SYS_RESOURCE may raise`,
      );
    }
  }
  if (options.sysctls && Object.keys(options.sysctls).length > 0) linux.sysctl = { ...options.sysctls };
  if (options.oomScoreAdj !== undefined) {
    // The kernel lets a process without CAP_SYS_RESOURCE raise its score but not go below
    // what it has: refused now rather than as a failed start.
    const own = Number(readFileSync('/proc/self/oom_score_adj', 'utf8'));
    if (options.oomScoreAdj < own && !hasCapability(CAP_SYS_RESOURCE))
      throw new EngineError(
        'EINVAL',
        `--oom-score-adj ${options.oomScoreAdj}: below this process's own (${own}), which only a process with CAP_SYS_RESOURCE may set`,
      );
    proc.oomScoreAdj = options.oomScoreAdj;
  }
  if (options.groupAdd?.length) {
    const gids = resolveGroups(layers, options.groupAdd);
    proc.user.additionalGids = [...new Set([...(proc.user.additionalGids ?? []), ...gids])];
  }
  // docker's order: the profile is resolved against the final capabilities (a container given
  // CAP_SYS_ADMIN may mount, say); none for --privileged or seccomp=unconfined.
  if (!options.privileged && options.seccomp !== 'unconfined') {
    const profile = options.seccomp
      ? parseProfile(options.seccomp.profile, options.seccomp.source)
      : DOCKER_DEFAULT_PROFILE;
    linux.seccomp = resolveProfile(profile, { capabilities: proc.capabilities?.bounding ?? [] });
    checkSeccompKeepsSetup(linux.seccomp, options.seccomp ? options.seccomp.source : 'default');
  }
  if (options.shmSize !== undefined) {
    const shm = spec.mounts?.find((m) => m.destination === '/dev/shm');
    if (shm)
      shm.options = [...(shm.options ?? []).filter((o) => !o.startsWith('size=')), `size=${options.shmSize}`];
  }
}
