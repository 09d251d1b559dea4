/**
 * docker's device switches → the OCI config: `--device HOST[:CONTAINER[:PERMS]]` (a node, or a
 * directory of them, read from the host), `--device-cgroup-rule`, and the host's devices that
 * `--privileged` gives. Each device gets a node in the container (linux.devices, made by the
 * child; see rootfs/devices.ts) and an allow rule in the devices cgroup.
 */
import { lstatSync, readdirSync, type Stats, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { EngineError } from '../errors.js';
import type { LinuxDevice, LinuxResources } from '../spec.js';
import type { DeviceRequest } from './types.js';

export type DeviceRule = NonNullable<LinuxResources['devices']>[number];

const PERMISSIONS = /^(?!.*(.).*\1)[rwm]{1,3}$/;

function major(rdev: number): number {
  return ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
}

function minor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >>> 12) & ~0xff & 0xfffff);
}

function deviceOf(st: Stats, path: string): LinuxDevice | undefined {
  const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : undefined;
  if (!type) return undefined;
  return {
    path,
    type,
    major: major(st.rdev),
    minor: minor(st.rdev),
    fileMode: st.mode & 0o777,
    uid: st.uid,
    gid: st.gid,
  };
}

/** Device nodes under a host directory (symlinks not followed), at `to` + their relative path. */
function devicesUnder(
  dir: string,
  to: string,
  skip: (name: string, depth: number) => boolean,
  depth = 0,
): LinuxDevice[] {
  const found: LinuxDevice[] = [];
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return found;
  }
  for (const name of names) {
    if (skip(name, depth)) continue;
    let st: Stats;
    try {
      st = lstatSync(join(dir, name));
    } catch {
      continue; // gone meanwhile
    }
    if (st.isDirectory()) found.push(...devicesUnder(join(dir, name), posix.join(to, name), skip, depth + 1));
    else {
      const device = deviceOf(st, posix.join(to, name));
      if (device) found.push(device);
    }
  }
  return found;
}

function ruleFor(device: LinuxDevice, access: string): DeviceRule {
  return {
    allow: true,
    type: device.type === 'b' ? 'b' : 'c',
    major: device.major,
    minor: device.minor,
    access,
  };
}

/** `--device`: the named node (links followed, as docker) or every node under a directory. */
export function requestedDevices(requests: readonly DeviceRequest[] = []): {
  devices: LinuxDevice[];
  rules: DeviceRule[];
} {
  const devices: LinuxDevice[] = [];
  const rules: DeviceRule[] = [];
  for (const request of requests) {
    const permissions = request.permissions ?? 'rwm';
    if (!PERMISSIONS.test(permissions))
      throw new EngineError(
        'EINVAL',
        `invalid device permissions "${permissions}" for ${request.hostPath}: use r, w and m`,
      );
    const containerPath = request.containerPath ?? request.hostPath;
    if (!posix.isAbsolute(containerPath) || !posix.isAbsolute(request.hostPath))
      throw new EngineError('EINVAL', `invalid device path: "${containerPath}" must be absolute`);
    let st: Stats;
    try {
      st = statSync(request.hostPath);
    } catch (error) {
      const reason =
        (error as NodeJS.ErrnoException).code === 'ENOENT'
          ? 'no such file or directory'
          : (error as Error).message;
      throw new EngineError(
        'EINVAL',
        `error gathering device information while adding custom device "${request.hostPath}": ${reason}`,
      );
    }
    const found = st.isDirectory()
      ? devicesUnder(request.hostPath, posix.normalize(containerPath), () => false)
      : [deviceOf(st, posix.normalize(containerPath))].filter((d): d is LinuxDevice => d !== undefined);
    if (found.length === 0)
      throw new EngineError(
        'EINVAL',
        `error gathering device information while adding custom device "${request.hostPath}": not a device node`,
      );
    for (const device of found) {
      const inContainer = posix.normalize(containerPath);
      if (inContainer !== posix.normalize(request.hostPath))
        device.hostPath = posix.join(request.hostPath, posix.relative(inContainer, device.path));
      devices.push(device);
      rules.push(ruleFor(device, permissions));
    }
  }
  return { devices, rules };
}

/** Made by every container already (rootfs/devices.ts) or by its own devpts, /dev/shm, /dev/mqueue. */
const OWN = new Set([
  'null',
  'zero',
  'full',
  'random',
  'urandom',
  'tty',
  'console',
  'ptmx',
  'pts',
  'shm',
  'mqueue',
  'fd',
]);

/** Every device node of the host's /dev, for --privileged (as docker). */
export function hostDevices(): LinuxDevice[] {
  return devicesUnder('/dev', '/dev', (name, depth) => depth === 0 && OWN.has(name));
}

const RULE = /^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$/;

/** docker's --device-cgroup-rule: `c 1:3 rwm`, `b 8:* r`, `a *:* rwm`. */
export function parseDeviceCgroupRule(rule: string): DeviceRule {
  const match = RULE.exec(rule.trim());
  if (!match || !PERMISSIONS.test(match[4]!))
    throw new EngineError('EINVAL', `invalid device cgroup format '${rule}'`);
  const number = (value: string) => (value === '*' ? '*' : Number(value));
  for (const value of [match[2]!, match[3]!]) {
    if (value !== '*' && Number(value) > 0xfffff)
      throw new EngineError(
        'EINVAL',
        `invalid device cgroup format '${rule}': ${value} is not a device number`,
      );
  }
  return {
    allow: true,
    type: match[1] as 'a' | 'b' | 'c',
    major: number(match[2]!),
    minor: number(match[3]!),
    access: match[4]!,
  };
}
