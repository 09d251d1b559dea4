/**
 * Making a container (docker's create): image → OCI config → record on disk,
 * with its writable layer's directories. Starting it is separate, so the same
 * record serves a foreground `box run`, `box run -d` and `box start`.
 */
import { chownSync, mkdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { DEFAULT_PATH, defaultSpec, type Spec } from '@box/runtime';
import {
  type ContainerState,
  createContainer,
  discardContainer,
  type NewContainer,
  publishContainer,
  type RestartPolicy,
  writeState,
} from './containers.js';
import { CliError } from './errors.js';
import { findImage, imageStore } from './images.js';
import { parseResourceFlags, type ResourceFlags } from './resources.js';
import { userNamespaceConflict, userNamespaceRange, writePrivateFile } from './state-dir.js';
import { currentWindowSize } from './terminal.js';
import { resolveUser } from './user.js';
import { handVolumeTo, type ParsedMounts, parseMounts, removeVolume, type VolumeFlags } from './volumes.js';

export interface CreateFlags extends ResourceFlags, VolumeFlags {
  rm?: boolean;
  interactive?: boolean;
  tty?: boolean;
  env: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  name?: string;
  userns?: boolean;
  restart?: string;
  logOpt?: string[];
}

const ENV_NAME = /^[^=\s]+$/;

/** Docker's `-e`: K=V sets, a bare K copies the host's value (or nothing if unset). */
export function parseEnvFlags(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const value of values) {
    const eq = value.indexOf('=');
    const name = eq === -1 ? value : value.slice(0, eq);
    if (!ENV_NAME.test(name)) throw new CliError(`invalid environment variable: "${value}"`);
    if (eq !== -1) out.push(value);
    else if (process.env[name] !== undefined) out.push(`${name}=${process.env[name]}`);
  }
  return out;
}

/** docker's --restart: no, always, on-failure[:N]. */
export function parseRestartPolicy(value: string | undefined): RestartPolicy {
  if (value === undefined || value === 'no') return { name: 'no', maximumRetryCount: 0 };
  if (value === 'always') return { name: 'always', maximumRetryCount: 0 };
  const match = /^on-failure(?::(\d+))?$/.exec(value);
  if (match) return { name: 'on-failure', maximumRetryCount: Number(match[1] ?? 0) };
  throw new CliError(`invalid restart policy "${value}": use no, always or on-failure[:max-retries]`);
}

/** docker's --log-opt max-size=10m, max-file=3. */
export function parseLogOptions(values: readonly string[] = []): { maxSize?: number; maxFiles?: number } {
  const options: { maxSize?: number; maxFiles?: number } = {};
  for (const value of values) {
    const [key, arg = ''] = value.split('=', 2) as [string, string?];
    if (key === 'max-size') {
      const match = /^(\d+)([kmg]?)$/i.exec(arg);
      if (!match) throw new CliError(`invalid --log-opt max-size "${arg}": expected a size like 10m`);
      const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[
        match[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'
      ];
      options.maxSize = Number(match[1]) * unit;
      if (options.maxSize <= 0) throw new CliError('--log-opt max-size must be above 0');
    } else if (key === 'max-file') {
      if (!/^\d+$/.test(arg) || Number(arg) < 1) throw new CliError(`invalid --log-opt max-file "${arg}"`);
      options.maxFiles = Number(arg);
    } else {
      throw new CliError(`unknown log opt '${key}' for json-file log driver`);
    }
  }
  if (options.maxFiles !== undefined && options.maxFiles > 1 && options.maxSize === undefined) {
    throw new CliError('max-file cannot be used without max-size');
  }
  return options;
}

/** Later entries win, as in docker. */
function mergeEnv(...lists: (readonly string[])[]): string[] {
  const map = new Map<string, string>();
  for (const list of lists) for (const e of list) map.set(e.slice(0, e.indexOf('=')), e);
  return [...map.values()];
}

export interface CreatedContainer {
  container: NewContainer;
  state: ContainerState;
  spec: Spec;
}

/**
 * Checks every flag, then makes the record. The returned container still holds
 * its lock (`container.lock`): close it to hand the container over.
 */
export async function prepareContainer(
  imageRef: string,
  command: string[],
  flags: CreateFlags,
): Promise<CreatedContainer> {
  const userEnv = parseEnvFlags(flags.env);
  const resources = parseResourceFlags(flags);
  const restartPolicy = parseRestartPolicy(flags.restart);
  const logOptions = parseLogOptions(flags.logOpt);
  if (flags.rm && restartPolicy.name !== 'no') {
    throw new CliError('Conflicting options: --restart and --rm');
  }
  if (flags.workdir !== undefined && !posix.isAbsolute(flags.workdir)) {
    throw new CliError(
      `the working directory '${flags.workdir}' is invalid, it needs to be an absolute path`,
    );
  }
  const image = await findImage(imageRef);
  const args = [
    ...(image.config.Entrypoint ?? []),
    ...(command.length > 0 ? command : (image.config.Cmd ?? [])),
  ];
  if (args.length === 0) throw new CliError('no command specified');
  const user = resolveUser(image.lowerdirs, flags.user ?? (image.config.User || undefined));

  if (flags.userns) {
    const conflict = userNamespaceConflict();
    if (conflict) throw new CliError(`--userns: ${conflict}`);
    for (const file of ['/etc/subuid', '/etc/subgid']) {
      // Container root and at least one more id: a process starts with a second gid (see @box/ns).
      const { hostID, size } = userNamespaceRange(file);
      if (!(size >= 2))
        throw new CliError(`--userns: box's range in ${file} (${hostID}, ${size} ids) needs at least 2 ids`);
    }
  }
  const container = createContainer(flags.name, flags.userns ?? false);
  let mounts: ParsedMounts = { mounts: [], volumes: [], anonymous: [] };
  try {
    mounts = parseMounts(flags);
    const hostname = flags.hostname ?? container.id.slice(0, 12);
    const uidRange = userNamespaceRange('/etc/subuid');
    const gidRange = userNamespaceRange('/etc/subgid');
    const cgroupsPath = `box/${container.id}`;
    const spec: Spec = defaultSpec({
      rootfs: join(container.dir, 'rootfs'),
      args,
      cgroupsPath,
      userns: flags.userns
        ? { uidMappings: [{ containerID: 0, ...uidRange }], gidMappings: [{ containerID: 0, ...gidRange }] }
        : undefined,
    });
    const proc = spec.process!;
    proc.terminal = flags.tty ?? false;
    proc.user = { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids };
    proc.cwd = flags.workdir ?? (image.config.WorkingDir || '/');
    proc.env = mergeEnv(
      [`PATH=${DEFAULT_PATH}`],
      image.config.Env ?? [],
      [`HOSTNAME=${hostname}`],
      flags.tty ? ['TERM=xterm'] : [],
      [`HOME=${user.home}`],
      userEnv,
    );
    if (user.uid !== 0) {
      // As docker: a non-root user keeps the bounding set but has no effective capabilities.
      proc.capabilities = { bounding: proc.capabilities?.bounding };
    }
    const size = flags.tty ? currentWindowSize() : undefined;
    if (size) proc.consoleSize = { height: size.rows, width: size.cols };
    spec.hostname = hostname;
    spec.linux!.resources = { ...spec.linux!.resources, ...resources };
    spec.mounts = [...(spec.mounts ?? []), ...mounts.mounts];
    if (flags.readOnly) spec.root!.readonly = true;

    // Paths where the record will be; it is made in its staging directory.
    const upperdir = join(container.dir, 'upper');
    const workdir = join(container.dir, 'work');
    // Others are kept out by container.dir (see state-dir.ts). The upper dir's root is the
    // container's "/" (overlayfs takes its owner and mode), so it is 0755 as docker's.
    // Paths where the record will be; it is made in its staging directory.
    mkdirSync(join(container.staging, 'rootfs'), { mode: 0o700 });
    mkdirSync(join(container.staging, 'upper'), { mode: 0o755 });
    mkdirSync(join(container.staging, 'work'), { mode: 0o700 });
    if (flags.userns) {
      // The container's root must own its writable layer, and may write to new volumes.
      chownSync(join(container.staging, 'upper'), uidRange.hostID, gidRange.hostID);
      chownSync(join(container.staging, 'work'), uidRange.hostID, gidRange.hostID);
      for (const name of [...mounts.volumes, ...mounts.anonymous]) {
        handVolumeTo(name, uidRange.hostID, gidRange.hostID);
      }
    }
    // It holds the container's environment (-e secrets): root only.
    writePrivateFile(join(container.staging, 'config.json'), `${JSON.stringify(spec, null, 2)}\n`);
    const state: ContainerState = {
      id: container.id,
      name: container.name,
      image: imageRef,
      command: args,
      created: new Date().toISOString(),
      status: 'created',
      autoRemove: flags.rm ?? false,
      cgroupsPath,
      imageId: image.id,
      overlay: { lowerdirs: image.lowerdirs, upperdir, workdir, layersRoot: (await imageStore()).root },
      volumes: mounts.volumes,
      anonymousVolumes: mounts.anonymous,
      restartPolicy,
      restartCount: 0,
      logOptions,
    };
    // The image stays while a container uses it (box rmi refuses).
    await (await imageStore()).retain(image.id, container.id);
    writeState(container.staging, state);
    publishContainer(container);
    return { container, state, spec };
  } catch (error) {
    for (const name of mounts.anonymous) removeVolume(name);
    await discardContainer(container);
    throw error;
  }
}

/** The OCI config of a container. */
export function readSpec(dir: string): Spec {
  return JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Spec;
}
