/**
 * Making a container (docker's create): image → OCI config → record on disk, with its writable
 * layer's directories. The config is checked here, so a container that could never start is
 * refused at once. Starting is separate, so one record serves an attached start, a detached one
 * and a restart.
 */
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, type Stats, writeFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { join, posix } from 'node:path';
import { ownCapabilities, tweakCapabilities } from '../capabilities.js';
import { EngineError } from '../errors.js';
import { findSlirp4netns } from '../network/slirp4netns.js';
import { mergeEnv } from '../process/env.js';
import { ContainerView } from '../rootfs/resolve.js';
import {
  DEFAULT_PATH,
  defaultSpec,
  type Mount,
  type Spec,
  validateSpec,
  validateSpecSeccomp,
} from '../spec.js';
import type { EngineContext } from './context.js';
import {
  defaultNetworkMode,
  ETC_FILES,
  hostModeHostname,
  type NetworkMode,
  parseNetworkMode,
} from './network-attach.js';
import { Networks } from './networks.js';
import { identityIdMappings, isRootless, noBridgeNetworks, ROOTLESS_DEFAULT_NETWORK } from './rootless.js';
import { checkRootlessLimits, containerCgroupsPath, withoutDeviceRules } from './rootless-cgroups.js';
import { wantsFuseOverlay } from './rootless-overlay.js';
import { applySecurityOptions, checkSecurityOptions } from './security.js';
import { parseSignal } from './signals.js';
import { userNamespaceConflict, userNamespaceRange } from './state-dir.js';
import type { NewContainer } from './store.js';
import type { ContainerRecord, CreateOptions, Healthcheck, ImageConfig, PortBinding } from './types.js';
import { resolveUser } from './user.js';
import { handVolumeTo, type ParsedMounts, removeVolume, resolveMounts } from './volumes.js';

export interface CreatedContainer {
  container: NewContainer;
  record: ContainerRecord;
  spec: Spec;
}

function checkOptions(options: CreateOptions): void {
  checkSecurityOptions(options);
  if (options.autoRemove && options.restartPolicy && options.restartPolicy.name !== 'no') {
    throw new EngineError('EINVAL', 'Conflicting options: --restart and --rm');
  }
  if (options.workdir !== undefined && !posix.isAbsolute(options.workdir)) {
    throw new EngineError(
      'EINVAL',
      `the working directory '${options.workdir}' is invalid, it needs to be an absolute path`,
    );
  }
  if (options.stopSignal !== undefined && parseSignal(options.stopSignal) === undefined)
    throw new EngineError('EINVAL', `Invalid signal: ${options.stopSignal}`);
  if (options.stopTimeout !== undefined && !Number.isInteger(options.stopTimeout))
    throw new EngineError('EINVAL', `invalid stop timeout ${options.stopTimeout}`);
  for (const key of Object.keys(options.labels ?? {})) {
    if (key === '' || /\s/.test(key))
      throw new EngineError('EINVAL', `invalid label name ${JSON.stringify(key)}`);
  }
  for (const entry of options.env ?? []) {
    if (!/^[^=\s]+=/.test(entry)) throw new EngineError('EINVAL', `invalid environment variable: "${entry}"`);
  }
  if (isRootless()) checkRootlessOptions(options);
  else if (options.userns) {
    const conflict = userNamespaceConflict();
    if (conflict) throw new EngineError('EINVAL', `--userns: ${conflict}`);
    for (const file of ['/etc/subuid', '/etc/subgid']) {
      // Container root and at least one more id: a process starts with a second gid (see @box/ns).
      const { hostID, size } = userNamespaceRange(file);
      if (!(size >= 2))
        throw new EngineError(
          'EINVAL',
          `--userns: box's range in ${file} (${hostID}, ${size} ids) needs at least 2 ids`,
        );
    }
  }
}

/**
 * What a rootless container cannot have, refused before anything is made: a network that needs
 * the host's network privileges (a bridge, veth pairs, nftables for -p). Its limits are checked
 * against the user's cgroups (checkRootlessLimits).
 */
function checkRootlessOptions(options: CreateOptions): void {
  const network = options.network ?? ROOTLESS_DEFAULT_NETWORK;
  const mode = parseNetworkMode(network);
  if (mode.kind === 'network') throw noBridgeNetworks(`--network ${network}`);
  // -p with another mode is refused for everyone by checkNetworkOptions.
  if ((options.publish?.length || options.publishAll) && mode.kind !== 'slirp4netns' && mode.kind !== 'host')
    throw new EngineError(
      'EINVAL',
      `publishing ports (-p, -P) needs --network slirp4netns for a rootless container (--network ${network})`,
    );
  // A proc file system may be mounted only by an owner of the PID namespace it shows, and the
  // host's is not the rootless user's.
  if (options.pid === 'host')
    throw new EngineError(
      'EINVAL',
      '--pid host: a rootless container cannot mount /proc for the host PID namespace',
    );
}

const WORD = /^[^\s#;]+$/;

/** --network, --ip and -p checked against each other and the networks there are. */
function checkNetworkOptions(ctx: EngineContext, options: CreateOptions, value: string): NetworkMode {
  const mode = parseNetworkMode(value);
  // Its binary before anything is made (it is looked for again at each start).
  if (mode.kind === 'slirp4netns') findSlirp4netns();
  // As docker run: a missing network or container is a refusal of the run (125), not a lookup's 1.
  try {
    if (mode.kind === 'network' && mode.name !== 'bridge') new Networks(ctx.layout).get(mode.name);
    if (mode.kind === 'container') ctx.store.find(mode.ref);
  } catch (error) {
    if (!(error instanceof EngineError)) throw error;
    throw new EngineError('EINVAL', error.message, { cause: error });
  }
  if (options.ip !== undefined && !(mode.kind === 'network' && mode.name !== 'bridge'))
    throw new EngineError('EINVAL', 'user specified IP address is supported on user defined networks only');
  if (
    (options.publish?.length || options.publishAll) &&
    mode.kind !== 'network' &&
    mode.kind !== 'slirp4netns'
  )
    throw new EngineError(
      'EINVAL',
      `conflicting options: port publishing and the ${mode.kind} network mode (--network ${value})`,
    );
  // They become lines of the container's /etc files: one word each, nothing to start a new line.
  for (const host of options.extraHosts ?? [])
    if (!WORD.test(host.name) || !isIPv4(host.ip))
      throw new EngineError('EINVAL', `invalid --add-host ${JSON.stringify(`${host.name}:${host.ip}`)}`);
  for (const server of options.dns ?? [])
    if (!isIPv4(server)) throw new EngineError('EINVAL', `${server} is not an ip address`);
  for (const word of [...(options.dnsSearch ?? []), ...(options.dnsOptions ?? [])])
    if (!WORD.test(word))
      throw new EngineError('EINVAL', `invalid DNS search domain or option ${JSON.stringify(word)}`);
  if (options.ip !== undefined && !isIPv4(options.ip))
    throw new EngineError('EINVAL', `invalid IPv4 address: ${options.ip}`);
  for (const p of options.publish ?? [])
    if (
      !Number.isInteger(p.containerPort) ||
      p.containerPort < 1 ||
      p.containerPort > 65535 ||
      (p.hostPort !== undefined &&
        !(Number.isInteger(p.hostPort) && p.hostPort >= 0 && p.hostPort <= 65535)) ||
      (p.protocol !== 'tcp' && p.protocol !== 'udp') ||
      (p.hostIp !== undefined && !isIPv4(p.hostIp))
    )
      throw new EngineError('EINVAL', `invalid port publication ${JSON.stringify(p)}`);
  if (options.pid !== undefined && options.pid !== 'host')
    throw new EngineError('EINVAL', `--pid: invalid PID mode "${options.pid}": only "host" is supported`);
  if (options.uts !== undefined && options.uts !== 'host')
    throw new EngineError('EINVAL', `--uts: invalid UTS mode "${options.uts}": only "host" is supported`);
  if (options.ipc !== undefined && !['private', 'none', 'host'].includes(options.ipc))
    throw new EngineError(
      'EINVAL',
      `--ipc: invalid IPC mode "${options.ipc}": "private", "none" or "host" (sharing another container's is not supported)`,
    );
  if (options.uts === 'host' && options.hostname)
    throw new EngineError('EINVAL', 'conflicting options: hostname and the UTS mode');
  if (mode.kind === 'container' && (options.hostname || options.dns?.length || options.extraHosts?.length))
    throw new EngineError(
      'EINVAL',
      'conflicting options: --hostname, --dns and --add-host cannot be used with --network container:',
    );
  return mode;
}

/** docker's -P: the image's ExposedPorts ("80/tcp"), each on a free host port. */
function exposedPorts(config: ImageConfig): PortBinding[] {
  const exposed = (config.ExposedPorts ?? {}) as Record<string, unknown>;
  return Object.keys(exposed).flatMap((key) => {
    const match = /^(\d+)(?:\/(tcp|udp))?$/.exec(key);
    const port = Number(match?.[1]);
    // An image's word only: a port out of range is left out rather than failing the start.
    if (!match || port < 1 || port > 65535) return [];
    return [{ containerPort: port, protocol: (match[2] ?? 'tcp') as 'tcp' | 'udp' }];
  });
}

/** docker's container labels: the image's, then the ones asked for over them. */
function labelsOf(config: ImageConfig, options: CreateOptions): Pick<ContainerRecord, 'labels'> {
  const fromImage = config.Labels && typeof config.Labels === 'object' ? (config.Labels as object) : {};
  const labels: Record<string, string> = {};
  // An image's word: only string values are labels.
  for (const [key, value] of Object.entries(fromImage)) if (typeof value === 'string') labels[key] = value;
  Object.assign(labels, options.labels);
  return Object.keys(labels).length ? { labels } : {};
}

/**
 * How stop stops it: --stop-signal, else the image's StopSignal (an image's word, checked only
 * when stopping: one that names no signal means SIGTERM), and --stop-timeout.
 */
function stopOptionsOf(
  config: ImageConfig,
  options: CreateOptions,
): Pick<ContainerRecord, 'stopSignal' | 'stopTimeout'> {
  const stopSignal =
    options.stopSignal ??
    (typeof config.StopSignal === 'string' && config.StopSignal ? config.StopSignal : undefined);
  return {
    ...(stopSignal !== undefined ? { stopSignal } : {}),
    ...(options.stopTimeout !== undefined ? { stopTimeout: options.stopTimeout } : {}),
  };
}

function networkOptionsOf(options: CreateOptions): Pick<ContainerRecord, 'networkOptions'> {
  const picked = {
    ...(options.ip ? { ip: options.ip } : {}),
    ...(options.extraHosts?.length ? { extraHosts: options.extraHosts } : {}),
    ...(options.dns?.length ? { dns: options.dns } : {}),
    ...(options.dnsSearch?.length ? { dnsSearch: options.dnsSearch } : {}),
    ...(options.dnsOptions?.length ? { dnsOptions: options.dnsOptions } : {}),
  };
  return Object.keys(picked).length ? { networkOptions: picked } : {};
}

/**
 * A --userns container's root cannot create files in the image's /etc (owned by host root,
 * unmapped in its namespace), so the mount points of /etc/hosts, resolv.conf and hostname that
 * the image lacks are made now, in its writable layer, which box has just made (nothing of the
 * container can be in it yet): /etc with the image's mode, it and the files owned by the mapped
 * root (overlayfs refuses that root a lookup in an upper directory of an unmapped owner:
 * EACCES). An image whose /etc is not a directory (a symlink, say) is left to the start's own
 * resolution.
 */
function makeEtcMountPoints(layers: readonly string[], upper: string, uid: number, gid: number): void {
  let etc: Stats | undefined;
  for (const layer of layers) {
    try {
      etc = lstatSync(join(layer, 'etc'));
      break;
    } catch {
      // not in this layer
    }
  }
  // A whiteout (a 0:0 character device) hides /etc of the layers below.
  const whiteout = etc?.isCharacterDevice() && etc.rdev === 0;
  if (etc && !whiteout && !etc.isDirectory()) return;
  const view = new ContainerView([...layers], { userxattr: true });
  let missing: string[];
  try {
    missing = ETC_FILES.filter((file) => view.find(`/etc/${file}`) === undefined);
  } finally {
    view.close();
  }
  if (missing.length === 0) return;
  const dir = join(upper, 'etc');
  const mode = etc && !whiteout ? etc.mode & 0o7777 : 0o755;
  mkdirSync(dir, { mode });
  chmodSync(dir, mode);
  chownSync(dir, uid, gid);
  for (const file of missing) {
    writeFileSync(join(dir, file), '', { mode: 0o644, flag: 'wx' });
    chownSync(join(dir, file), uid, gid);
  }
}

/**
 * /etc/hosts, /etc/resolv.conf and /etc/hostname bound from the container's directory (as
 * docker); with `container:` those of the other container, whose network it shares.
 */
/**
 * The default mounts the user's leave in place, as docker: a user's mount replaces the default at
 * the same destination, and a user's /dev every default below /dev too (its devpts, shm, mqueue).
 */
function defaultsKept(defaults: Mount[], user: readonly Mount[]): Mount[] {
  const taken = new Set(user.map((m) => posix.resolve('/', m.destination)));
  const dev = taken.has('/dev');
  return defaults.filter((m) => {
    const destination = posix.resolve('/', m.destination);
    return !taken.has(destination) && !(dev && destination.startsWith('/dev/'));
  });
}

function etcMounts(ctx: EngineContext, dir: string, mode: NetworkMode): Mount[] {
  const from = mode.kind === 'container' ? ctx.store.dir(ctx.store.find(mode.ref).id) : dir;
  return ETC_FILES.map((file) => ({
    destination: `/etc/${file}`,
    type: 'bind',
    source: join(mode.kind === 'container' && file === 'hostname' ? dir : from, file),
    options: ['rbind', 'rprivate'],
  }));
}

/**
 * docker's rules: --privileged starts from every capability, --cap-add/--cap-drop apply after
 * (ALL included). "Every" is every one box holds itself: the kernel grants no more. One named
 * in --cap-add that box lacks is refused rather than silently left out.
 */
function containerCapabilities(defaults: readonly string[], options: CreateOptions): string[] {
  const own = new Set(ownCapabilities());
  const base = options.privileged ? [...own] : defaults;
  const caps = tweakCapabilities(base, options.capAdd, options.capDrop);
  const explicit = new Set(
    tweakCapabilities(
      [],
      (options.capAdd ?? []).filter((c) => c.trim().toUpperCase() !== 'ALL'),
    ),
  );
  for (const cap of caps) {
    if (!own.has(cap) && explicit.has(cap))
      throw new EngineError('EINVAL', `--cap-add ${cap}: box itself does not hold ${cap} on this host`);
  }
  return caps.filter((cap) => own.has(cap));
}

/**
 * Checks every option, then makes the record. The returned container still holds its lock
 * (`container.lock`): close it to hand the container over.
 */
export async function createContainer(
  ctx: EngineContext,
  options: CreateOptions,
  /** Started at once by the caller (run): an auto-removed one then needs no fsync (see below). */
  startsNow = false,
): Promise<CreatedContainer> {
  checkOptions(options);
  if (isRootless()) await checkRootlessLimits(options.resources, options.deviceCgroupRules);
  // Rootless: every container in a user namespace (see rootless.ts), on the rootless network.
  if (isRootless())
    options = { ...options, userns: true, network: options.network ?? ROOTLESS_DEFAULT_NETWORK };
  const image = await ctx.images.resolve(options.image);
  const command = options.command ?? [];
  // docker: an --entrypoint given replaces the image's and drops its Cmd (made for the old one).
  const entrypoint = options.entrypoint ?? image.config.Entrypoint ?? [];
  const defaultCmd = options.entrypoint !== undefined ? [] : (image.config.Cmd ?? []);
  const args = [...entrypoint, ...(command.length > 0 ? command : defaultCmd)];
  if (args.length === 0) throw new EngineError('EINVAL', 'no command specified');
  const user = resolveUser(image.layers, options.user ?? (image.config.User || undefined));
  // Without --network: the default bridge for root, slirp4netns for an ordinary user.
  const networkValue = options.network ?? defaultNetworkMode({ rootless: isRootless() });
  const network = checkNetworkOptions(ctx, options, networkValue);
  const ports = [...(options.publish ?? []), ...(options.publishAll ? exposedPorts(image.config) : [])];

  const container = ctx.store.create(options.name, options.userns ?? false);
  let mounts: ParsedMounts = { mounts: [], requests: [], volumes: [], anonymous: [] };
  try {
    mounts = resolveMounts(ctx.layout, options.mounts ?? []);
    // As docker: with the host's network or UTS namespace, the host's name unless one is given.
    const hostname =
      options.hostname ??
      (network.kind === 'host' || options.uts === 'host' ? hostModeHostname() : container.id.slice(0, 12));
    // Rootless: container root is box's own root here (the user on the host).
    const uidRange = isRootless() ? { hostID: 0 } : userNamespaceRange('/etc/subuid');
    const gidRange = isRootless() ? { hostID: 0 } : userNamespaceRange('/etc/subgid');
    // Rootless: one in the user's delegated subtree, or none (see rootless-cgroups.ts).
    const ownCgroup = await containerCgroupsPath(container.id);
    const cgroupsPath = ownCgroup ?? `box/${container.id}`;
    const spec: Spec = defaultSpec({
      rootfs: join(container.dir, 'rootfs'),
      args,
      cgroupsPath: ownCgroup,
      userns: !options.userns
        ? undefined
        : isRootless()
          ? // Every id of box's own namespace, as they are (see rootless.ts).
            { uidMappings: identityIdMappings('uid'), gidMappings: identityIdMappings('gid') }
          : {
              uidMappings: [{ containerID: 0, ...(uidRange as { hostID: number; size: number }) }],
              gidMappings: [{ containerID: 0, ...(gidRange as { hostID: number; size: number }) }],
            },
    });
    const proc = spec.process!;
    proc.terminal = options.tty ?? false;
    proc.user = { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids };
    proc.cwd = options.workdir ?? (image.config.WorkingDir || '/');
    proc.env = mergeEnv(
      [`PATH=${DEFAULT_PATH}`],
      image.config.Env ?? [],
      [`HOSTNAME=${hostname}`],
      options.tty ? ['TERM=xterm'] : [],
      [`HOME=${user.home}`],
      options.env ?? [],
    );
    const caps = containerCapabilities(proc.capabilities?.bounding ?? [], options);
    proc.capabilities = { bounding: caps, effective: caps, permitted: caps };
    if (user.uid !== 0) {
      // As docker: a non-root user keeps the bounding set but has no effective capabilities.
      proc.capabilities = { bounding: caps };
    }
    if (options.noNewPrivileges) proc.noNewPrivileges = true;
    if (options.tty && options.consoleSize) proc.consoleSize = options.consoleSize;
    // In the host's UTS namespace the container's set-up must not set a name: it would be the host's.
    if (options.uts === 'host') {
      withoutNamespace(spec, 'uts');
      delete spec.hostname;
    } else spec.hostname = hostname;
    if (network.kind === 'host') withoutNamespace(spec, 'network');
    // The host's processes in its /proc, as docker's --pid host shows them. What the container
    // leaves running when its process ends is killed with its cgroup (removeContainerCgroup), as
    // the end of its PID namespace would have.
    if (options.pid === 'host') withoutNamespace(spec, 'pid');
    if (network.kind === 'host' && isRootless()) {
      // sysfs may be mounted only by an owner of the network namespace, which the host's is not
      // here: the host's /sys is bound instead, read-only (as runc does rootless).
      spec.mounts = (spec.mounts ?? []).map((m) =>
        m.destination === '/sys'
          ? {
              destination: '/sys',
              type: 'bind',
              source: '/sys',
              options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'],
            }
          : m,
      );
    }
    spec.linux!.resources = { ...spec.linux!.resources, ...options.resources };
    spec.mounts = [
      ...defaultsKept([...(spec.mounts ?? []), ...etcMounts(ctx, container.dir, network)], mounts.mounts),
      ...mounts.mounts,
    ];
    if (options.readonlyRootfs) spec.root!.readonly = true;
    applySecurityOptions(spec, options, image.layers);
    // After --shm-size, which sizes box's own /dev/shm: the host's is what it is.
    if (options.ipc === 'host' || options.ipc === 'none') ipcMode(spec, options.ipc);
    if (isRootless()) withoutDeviceRules(spec);
    // The start would refuse it: refused now, before anything of it exists.
    validateSpec(spec);
    await validateSpecSeccomp(spec);

    // Others are kept out by container.dir (see state-dir.ts). The upper dir's root is the
    // container's "/" (overlayfs takes its owner and mode), so it is 0755 as docker's.
    // Paths where the record will be; it is made in its staging directory.
    mkdirSync(join(container.staging, 'rootfs'), { mode: 0o700 });
    mkdirSync(join(container.staging, 'upper'), { mode: 0o755 });
    mkdirSync(join(container.staging, 'work'), { mode: 0o700 });
    // The network's /etc files, written for real at each start (network-attach.ts).
    for (const file of ETC_FILES) {
      const path = join(container.staging, file);
      writeFileSync(path, file === 'hostname' ? `${hostname}\n` : '', { mode: 0o644 });
      if (options.userns) chownSync(path, uidRange.hostID, gidRange.hostID);
    }
    if (options.userns) {
      // The container's root must own its writable layer, and may write to new volumes.
      chownSync(join(container.staging, 'upper'), uidRange.hostID, gidRange.hostID);
      chownSync(join(container.staging, 'work'), uidRange.hostID, gidRange.hostID);
      for (const name of [...mounts.volumes, ...mounts.anonymous]) {
        handVolumeTo(ctx.layout, name, uidRange.hostID, gidRange.hostID);
      }
      makeEtcMountPoints(image.layers, join(container.staging, 'upper'), uidRange.hostID, gidRange.hostID);
    }
    // A container started now and removed when it ends needs none of this after a power loss:
    // written without fsync (recovery removes a record it cannot read, see recovery.ts). A
    // created one waits for its start: it is kept whole.
    const durable = !(options.autoRemove && startsNow);
    // It holds the container's environment (-e secrets): root only.
    ctx.store.writeSpec(container.staging, spec, durable);
    const record: ContainerRecord = {
      id: container.id,
      name: container.name,
      image: options.image,
      command: args,
      ...(entrypoint.length ? { entrypoint } : {}),
      created: new Date().toISOString(),
      status: 'created',
      autoRemove: options.autoRemove ?? false,
      ...(options.autoRemove && startsNow ? { runPending: true } : {}),
      ...(isRootless() && (options.fuseOverlay ?? wantsFuseOverlay()) ? { fuseOverlay: true } : {}),
      cgroupsPath,
      imageId: image.id,
      overlay: {
        lowerdirs: image.layers,
        upperdir: join(container.dir, 'upper'),
        workdir: join(container.dir, 'work'),
        layersRoot: image.layersRoot,
      },
      ...(mounts.requests.length ? { mounts: mounts.requests } : {}),
      ...(options.openStdin ? { openStdin: true } : {}),
      ...(options.attach ? { attach: options.attach } : {}),
      volumes: mounts.volumes,
      anonymousVolumes: mounts.anonymous,
      restartPolicy: options.restartPolicy ?? { name: 'no', maximumRetryCount: 0 },
      restartCount: 0,
      logOptions: options.logOptions ?? {},
      ...healthcheckOf(options.healthcheck, image.config.Healthcheck),
      ...(options.capAdd?.length ? { capAdd: options.capAdd } : {}),
      ...(options.capDrop?.length ? { capDrop: options.capDrop } : {}),
      ...(options.privileged ? { privileged: true } : {}),
      ...(options.seccomp
        ? { seccomp: options.seccomp === 'unconfined' ? 'unconfined' : options.seccomp.source }
        : {}),
      ...(options.devices?.length ? { devices: options.devices } : {}),
      ...(options.deviceCgroupRules?.length ? { deviceCgroupRules: options.deviceCgroupRules } : {}),
      ...(options.ulimits?.length ? { ulimits: options.ulimits } : {}),
      ...(options.groupAdd?.length ? { groupAdd: options.groupAdd } : {}),
      ...(options.init ? { init: true } : {}),
      ...(options.openStdin ? { openStdin: true } : {}),
      ...(options.shmSize !== undefined ? { shmSize: options.shmSize } : {}),
      networkMode: networkValue,
      ...((options.user ?? image.config.User) ? { user: options.user ?? image.config.User } : {}),
      ...labelsOf(image.config, options),
      ...stopOptionsOf(image.config, options),
      ...(network.kind === 'network' ? { networks: [network.name] } : {}),
      ...(ports.length ? { ports } : {}),
      ...(options.publishAll ? { publishAll: true } : {}),
      ...networkOptionsOf(options),
    };
    // The image stays while a container uses it (its removal is refused).
    await ctx.images.hold(image.id, container.id, { durable });
    ctx.store.write(container.staging, record, durable);
    ctx.store.publish(container);
    ctx.events.emit('create', record);
    return { container, record, spec };
  } catch (error) {
    for (const name of mounts.anonymous) removeVolume(ctx.layout, name);
    ctx.store.discard(container);
    await ctx.images.release(container.id).catch(() => undefined);
    throw error;
  }
}

/**
 * docker's merge of `--health-*` over the image's HEALTHCHECK: a given test replaces the image's,
 * and each duration or retry count given (non-zero) replaces the image's one.
 */
function healthcheckOf(
  flags: Healthcheck | undefined,
  image: Healthcheck | undefined,
): { healthcheck?: Healthcheck } {
  if (!flags && !image) return {};
  const merged: Healthcheck = { ...image };
  for (const key of ['Test', 'Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'] as const) {
    const value = flags?.[key];
    if (value !== undefined && !(typeof value === 'number' && value === 0))
      (merged as Record<string, unknown>)[key] = value;
  }
  return merged.Test && merged.Test.length > 0 ? { healthcheck: merged } : {};
}

function withoutNamespace(spec: Spec, type: string): void {
  spec.linux!.namespaces = spec.linux!.namespaces!.filter((n) => n.type !== type);
}

/**
 * docker's --ipc host: the host's IPC namespace, and its /dev/shm and /dev/mqueue bound in (an
 * mqueue file system may be mounted only by an owner of the IPC namespace, which a rootless
 * container is not of the host's). --ipc none: a new namespace, and no /dev/shm at all.
 */
function ipcMode(spec: Spec, mode: 'host' | 'none'): void {
  if (mode === 'none') {
    spec.mounts = (spec.mounts ?? []).filter((m) => m.destination !== '/dev/shm');
    return;
  }
  withoutNamespace(spec, 'ipc');
  spec.mounts = (spec.mounts ?? []).flatMap((m) =>
    m.destination === '/dev/shm' || m.destination === '/dev/mqueue'
      ? existsSync(m.destination)
        ? [
            {
              destination: m.destination,
              type: 'bind',
              source: m.destination,
              options: ['rbind', 'nosuid', 'nodev', 'noexec'],
            },
          ]
        : []
      : [m],
  );
}
