/**
 * Volumes and a container's mounts: named volumes in ROOT/volumes/NAME/_data (made on first
 * use, kept after the container), anonymous ones (removed with the container when asked), bind
 * mounts of host paths and tmpfs mounts, checked and turned into OCI mounts.
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
import { removeTree } from '@box/sys';
import { EngineError } from '../errors.js';
import type { Mount } from '../spec.js';
import type { Layout } from './layout.js';
import { processTag } from './process-info.js';
import { secureStateDir, sharedDir } from './state-dir.js';
import type { MountRequest } from './types.js';

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

export interface ParsedMounts {
  mounts: Mount[];
  /** The requests with destinations cleaned and anonymous volumes named (kept for inspect). */
  requests: MountRequest[];
  /** Named and anonymous volumes the container uses. */
  volumes: string[];
  anonymous: string[];
}

function checkVolumeName(name: string): void {
  if (!VOLUME_NAME.test(name)) {
    throw new EngineError(
      'EINVAL',
      `"${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
    );
  }
}

export function volumePath(layout: Layout, name: string): string {
  return join(layout.volumes, name, '_data');
}

export function readVolume(layout: Layout, name: string): VolumeInfo | undefined {
  if (!VOLUME_NAME.test(name)) return undefined;
  try {
    return JSON.parse(readFileSync(join(layout.volumes, name, 'volume.json'), 'utf8')) as VolumeInfo;
  } catch {
    return undefined;
  }
}

/** Creates a named volume, or returns the one that exists. */
export function createVolume(
  layout: Layout,
  name: string,
  options: { labels?: Record<string, string>; anonymous?: boolean } = {},
): VolumeInfo {
  checkVolumeName(name);
  const existing = readVolume(layout, name);
  if (existing) return existing;
  secureStateDir(layout);
  const info: VolumeInfo = {
    Name: name,
    Driver: 'local',
    Mountpoint: volumePath(layout, name),
    CreatedAt: new Date().toISOString(),
    Labels: options.labels ?? {},
    Scope: 'local',
    ...(options.anonymous ? { Anonymous: true } : {}),
  };
  // Made aside and renamed into place, so a half-made volume is never seen. Its directory is
  // closed to others but passable for container root of --userns containers (see state-dir.ts);
  // _data is the volume's root as containers see it.
  const tmp = join(layout.volumes, `.new-${name}-${process.pid}`);
  sharedDir(tmp);
  mkdirSync(join(tmp, '_data'), { mode: 0o755 });
  writeFileSync(join(tmp, 'volume.json'), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  try {
    renameSync(tmp, join(layout.volumes, name));
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    const raced = readVolume(layout, name);
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
export function handVolumeTo(layout: Layout, name: string, uid: number, gid: number): void {
  const data = volumePath(layout, name);
  const stats = statSync(data);
  if (stats.uid === 0 && stats.gid === 0 && readdirSync(data).length === 0) chownSync(data, uid, gid);
}

export function listVolumes(layout: Layout): VolumeInfo[] {
  let names: string[] = [];
  try {
    names = readdirSync(layout.volumes).filter((n) => !n.startsWith('.'));
  } catch {
    return [];
  }
  return names.map((name) => readVolume(layout, name)).filter((v): v is VolumeInfo => v !== undefined);
}

/**
 * Where a removal moves a volume first: `.removing-RANDOM-PID-START`, named after the process that
 * removes it, so that what a killed one left is known and finished (recovery.ts). Not after the
 * volume: a name of 220 characters would make one longer than a file name may be.
 */
export const VOLUME_TRASH = /^\.removing-([0-9a-f]{16})-(\d+)-(\d+)$/;

/** A new name for a volume being removed by this process (see VOLUME_TRASH). */
export function volumeTrashName(): string {
  return `.removing-${randomBytes(8).toString('hex')}-${processTag()}`;
}

/** Removes a volume (out of sight in one rename first); ENOVOLUME when there is none. */
export function removeVolume(layout: Layout, name: string): void {
  if (!VOLUME_NAME.test(name)) throw new EngineError('ENOVOLUME', `no such volume: ${name}`);
  const trash = join(layout.volumes, volumeTrashName());
  try {
    renameSync(join(layout.volumes, name), trash);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new EngineError('ENOVOLUME', `no such volume: ${name}`);
    throw error;
  }
  removeVolumeTrash(trash);
}

/**
 * Removes a volume moved out of sight. It may be shared: a container still holding it (one that
 * was started as it was checked) may be swapping its directories for symlinks to the host's
 * (see removeTree's `changing`).
 */
export function removeVolumeTrash(trash: string): void {
  removeTree(trash, { changing: true });
}

function containerPath(path: string): string {
  if (!path.startsWith('/'))
    throw new EngineError('EINVAL', `invalid mount: the container path "${path}" is not absolute`);
  if (path.includes('\0'))
    throw new EngineError('EINVAL', 'invalid mount: the container path contains a NUL byte');
  const normal = posix.normalize(path);
  if (normal === '/')
    throw new EngineError('EINVAL', `invalid mount: cannot mount over the container's root "/"`);
  return normal;
}

/** A bind mount's host path; `missing` collects one that is to be made (docker's -v). */
function hostSource(path: string, missing?: string[]): string {
  if (!isAbsolute(path))
    throw new EngineError('EINVAL', `invalid mount: the host path "${path}" is not absolute`);
  try {
    statSync(path);
  } catch (error) {
    if (!missing || (error as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new EngineError('EINVAL', `invalid mount: bind source path does not exist: ${path}`);
    missing.push(path);
  }
  return path;
}

/**
 * Turns mount requests into OCI mounts; named volumes are made (once every request is valid:
 * a refused container makes no volume) and anonymous ones get a random name.
 */
export function resolveMounts(layout: Layout, requests: readonly MountRequest[]): ParsedMounts {
  const mounts: Mount[] = [];
  const asked: MountRequest[] = [];
  const volumes: string[] = [];
  const anonymous: string[] = [];
  const seen = new Set<string>();
  const missing: string[] = [];
  for (const request of requests) {
    const destination = containerPath(request.destination);
    asked.push({ ...request, destination });
    if (seen.has(destination)) throw new EngineError('EINVAL', `Duplicate mount point: ${destination}`);
    seen.add(destination);
    if (request.type === 'bind') {
      mounts.push({
        destination,
        type: 'bind',
        source: hostSource(request.source, request.createSource ? missing : undefined),
        options: ['rbind', request.readonly ? 'ro' : 'rw', ...(request.propagation ?? [])],
      });
    } else if (request.type === 'volume') {
      if (request.source !== undefined) checkVolumeName(request.source);
      const name =
        request.source ?? Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(32))).toString('hex');
      (request.source === undefined ? anonymous : volumes).push(name);
      asked[asked.length - 1] = { ...request, destination, source: name };
      mounts.push({
        destination,
        type: 'bind',
        source: volumePath(layout, name),
        options: ['rbind', request.readonly ? 'ro' : 'rw'],
      });
    } else {
      mounts.push({
        destination,
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'nodev', 'noexec', ...(request.options ?? [])],
      });
    }
  }
  // As docker's -v: a missing host directory is made (root's, 0755), once every request is valid.
  for (const path of missing) {
    try {
      mkdirSync(path, { recursive: true, mode: 0o755 });
    } catch (error) {
      throw new EngineError(
        'EINVAL',
        `invalid mount: cannot make the bind source ${path}: ${(error as Error).message}`,
      );
    }
  }
  for (const name of volumes) createVolume(layout, name);
  for (const name of anonymous) createVolume(layout, name, { anonymous: true });
  return { mounts, requests: asked, volumes, anonymous };
}
