/**
 * Volumes and mounts for `box run`: `-v SRC:DST[:OPTS]`, `--mount`, `--tmpfs`,
 * named volumes in $BOX_ROOT/volumes/NAME/_data (made on first use, kept after
 * the container), and anonymous ones (removed with `rm -v`).
 */
import { randomBytes } from 'node:crypto';
import {
  chownSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { isAbsolute, join, posix } from 'node:path';
import type { Mount } from '@box/runtime';
import { CliError } from './errors.js';
import { boxRoot } from './paths.js';
import { secureStateDir, sharedDir } from './state-dir.js';

export const volumesDir = (): string => join(boxRoot(), 'volumes');
const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export interface VolumeInfo {
  Name: string;
  Driver: 'local';
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Scope: 'local';
  Anonymous?: boolean;
}

export interface VolumeFlags {
  volume?: string[];
  mount?: string[];
  tmpfs?: string[];
  readOnly?: boolean;
}

export interface ParsedMounts {
  mounts: Mount[];
  /** Named and anonymous volumes the container uses. */
  volumes: string[];
  anonymous: string[];
}

function checkVolumeName(name: string): void {
  if (!VOLUME_NAME.test(name)) {
    throw new CliError(
      `"${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
    );
  }
}

export function volumePath(name: string): string {
  return join(volumesDir(), name, '_data');
}

export function readVolume(name: string): VolumeInfo | undefined {
  try {
    return JSON.parse(readFileSync(join(volumesDir(), name, 'volume.json'), 'utf8')) as VolumeInfo;
  } catch {
    return undefined;
  }
}

/** Creates a named volume, or returns the one that exists. */
export function createVolume(
  name: string,
  options: { labels?: Record<string, string>; anonymous?: boolean } = {},
): VolumeInfo {
  checkVolumeName(name);
  const existing = readVolume(name);
  if (existing) return existing;
  secureStateDir();
  const info: VolumeInfo = {
    Name: name,
    Driver: 'local',
    Mountpoint: volumePath(name),
    CreatedAt: new Date().toISOString(),
    Labels: options.labels ?? {},
    Scope: 'local',
    ...(options.anonymous ? { Anonymous: true } : {}),
  };
  // Made aside and renamed into place, so a half-made volume is never seen. Its directory is
  // closed to others but passable for container root of --userns containers (see state-dir.ts);
  // _data is the volume's root as containers see it.
  const tmp = join(volumesDir(), `.new-${name}-${process.pid}`);
  sharedDir(tmp);
  mkdirSync(join(tmp, '_data'), { mode: 0o755 });
  writeFileSync(join(tmp, 'volume.json'), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  try {
    renameSync(tmp, join(volumesDir(), name));
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    const raced = readVolume(name);
    if (raced) return raced;
    throw error;
  }
  return info;
}

/**
 * Hands a volume that nothing has written yet to container root of a --userns container (its
 * host ids), as docker makes volumes under userns-remap: otherwise that root, an unprivileged
 * host uid, could not write to it. A volume with files keeps its owner (root of containers
 * without a user namespace can write to it either way).
 */
export function handVolumeTo(name: string, uid: number, gid: number): void {
  const data = volumePath(name);
  const stats = statSync(data);
  if (stats.uid === 0 && stats.gid === 0 && readdirSync(data).length === 0) chownSync(data, uid, gid);
}

export function listVolumes(): VolumeInfo[] {
  let names: string[] = [];
  try {
    names = readdirSync(volumesDir()).filter((n) => !n.startsWith('.'));
  } catch {
    return [];
  }
  return names.map(readVolume).filter((v): v is VolumeInfo => v !== undefined);
}

export function removeVolume(name: string): void {
  const trash = join(volumesDir(), `.removing-${name}-${process.pid}`);
  renameSync(join(volumesDir(), name), trash);
  rmSync(trash, { recursive: true, force: true });
}

function containerPath(path: string, flag: string): string {
  if (!path.startsWith('/'))
    throw new CliError(`invalid ${flag}: the container path "${path}" is not absolute`);
  if (path.includes('\0')) throw new CliError(`invalid ${flag}: the container path contains a NUL byte`);
  const normal = posix.normalize(path);
  if (normal === '/') throw new CliError(`invalid ${flag}: cannot mount over the container's root "/"`);
  return normal;
}

function hostSource(path: string, flag: string): string {
  if (!isAbsolute(path)) throw new CliError(`invalid ${flag}: the host path "${path}" is not absolute`);
  try {
    statSync(path);
  } catch {
    throw new CliError(`invalid ${flag}: bind source path does not exist: ${path}`);
  }
  return path;
}

const BIND_OPTIONS = new Set([
  'ro',
  'rw',
  'z',
  'Z',
  'private',
  'rprivate',
  'slave',
  'rslave',
  'shared',
  'rshared',
  'nocopy',
]);

/** Turns docker's volume and mount flags into OCI mounts; named volumes are created. */
export function parseMounts(flags: VolumeFlags): ParsedMounts {
  const mounts: Mount[] = [];
  const volumes: string[] = [];
  const anonymous: string[] = [];
  const seen = new Set<string>();
  const add = (mount: Mount) => {
    if (seen.has(mount.destination)) throw new CliError(`Duplicate mount point: ${mount.destination}`);
    seen.add(mount.destination);
    mounts.push(mount);
  };
  const volume = (name: string | undefined, destination: string, readonly: boolean, flag: string) => {
    const volumeName = name ?? randomBytes(32).toString('hex');
    if (name !== undefined) checkVolumeName(name);
    (name === undefined ? anonymous : volumes).push(volumeName);
    add({
      destination: containerPath(destination, flag),
      type: 'bind',
      source: volumePath(volumeName),
      options: ['rbind', readonly ? 'ro' : 'rw'],
    });
  };

  for (const value of flags.volume ?? []) {
    const parts = value.split(':');
    if (parts.length === 1) {
      volume(undefined, parts[0]!, false, '-v');
      continue;
    }
    if (parts.length > 3) throw new CliError(`invalid volume specification: '${value}'`);
    const [source = '', destination = '', opts = ''] = parts;
    const options = opts ? opts.split(',') : [];
    for (const option of options) {
      if (!BIND_OPTIONS.has(option))
        throw new CliError(`invalid mode: ${option} in volume specification '${value}'`);
    }
    const readonly = options.includes('ro');
    if (source.includes('/') || source.startsWith('.')) {
      add({
        destination: containerPath(destination, '-v'),
        type: 'bind',
        source: hostSource(source, '-v'),
        options: ['rbind', readonly ? 'ro' : 'rw', ...options.filter((o) => /private|slave|shared/.test(o))],
      });
    } else volume(source, destination, readonly, '-v');
  }

  for (const value of flags.mount ?? []) {
    const fields = new Map<string, string>();
    for (const field of value.split(',')) {
      const eq = field.indexOf('=');
      const key = (eq === -1 ? field : field.slice(0, eq)).trim();
      fields.set(key, eq === -1 ? 'true' : field.slice(eq + 1));
    }
    const type = fields.get('type') ?? 'volume';
    const target = fields.get('target') ?? fields.get('destination') ?? fields.get('dst');
    if (!target) throw new CliError(`invalid --mount "${value}": target is required`);
    const source = fields.get('source') ?? fields.get('src');
    const readonly = ['true', '1'].includes(fields.get('readonly') ?? fields.get('ro') ?? 'false');
    if (type === 'bind') {
      if (!source) throw new CliError(`invalid --mount "${value}": source is required for a bind mount`);
      add({
        destination: containerPath(target, '--mount'),
        type: 'bind',
        source: hostSource(source, '--mount'),
        options: ['rbind', readonly ? 'ro' : 'rw'],
      });
    } else if (type === 'volume') {
      volume(source, target, readonly, '--mount');
    } else if (type === 'tmpfs') {
      const options = ['nosuid', 'nodev', 'noexec'];
      const size = fields.get('tmpfs-size');
      const mode = fields.get('tmpfs-mode');
      if (size !== undefined) {
        if (!/^\d+[kmg]?$/i.test(size)) throw new CliError(`invalid --mount "${value}": bad tmpfs-size`);
        options.push(`size=${size}`);
      }
      if (mode !== undefined) {
        if (!/^[0-7]{3,4}$/.test(mode)) throw new CliError(`invalid --mount "${value}": bad tmpfs-mode`);
        options.push(`mode=${mode}`);
      }
      if (readonly) options.push('ro');
      add({ destination: containerPath(target, '--mount'), type: 'tmpfs', source: 'tmpfs', options });
    } else throw new CliError(`invalid --mount "${value}": unknown type "${type}" (bind, volume or tmpfs)`);
  }

  for (const value of flags.tmpfs ?? []) {
    const colon = value.indexOf(':');
    const destination = colon === -1 ? value : value.slice(0, colon);
    const extra = colon === -1 ? [] : value.slice(colon + 1).split(',');
    for (const option of extra) {
      if (
        !/^(ro|rw|nosuid|suid|nodev|dev|noexec|exec|size=\d+[kmg%]?|mode=[0-7]{3,4}|uid=\d+|gid=\d+|nr_inodes=\d+[kmg]?)$/i.test(
          option,
        )
      ) {
        throw new CliError(`invalid --tmpfs option "${option}" in "${value}"`);
      }
    }
    add({
      destination: containerPath(destination, '--tmpfs'),
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'nodev', 'noexec', ...extra],
    });
  }
  // Only once every flag is valid: a rejected command makes no volume.
  for (const name of volumes) createVolume(name);
  for (const name of anonymous) createVolume(name, { anonymous: true });
  return { mounts, volumes, anonymous };
}
