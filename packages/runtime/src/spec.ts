/**
 * The OCI runtime spec's config.json model (the parts box implements), and
 * docker's defaults for it. https://github.com/opencontainers/runtime-spec
 */

import { DEFAULT_DEVICE_RULES } from '@box/cgroups';
import type { IdMapping, NamespaceType } from '@box/ns';
import { SpecError } from './errors.js';
import { type POSIXRlimit, validateRlimits } from './process/rlimits.js';
import { propagationFlags } from './rootfs/mount-options.js';
import { validateSysctls } from './rootfs/sysctl.js';
import type { LinuxSeccomp } from './seccomp/types.js';

export type { POSIXRlimit };

export interface User {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
}

export interface ConsoleSize {
  height: number;
  width: number;
}

export interface LinuxCapabilities {
  bounding?: string[];
  effective?: string[];
  permitted?: string[];
  inheritable?: string[];
  ambient?: string[];
}

export interface Process {
  terminal?: boolean;
  consoleSize?: ConsoleSize;
  user: User;
  args: string[];
  env?: string[];
  cwd: string;
  capabilities?: LinuxCapabilities;
  noNewPrivileges?: boolean;
  rlimits?: POSIXRlimit[];
  /** Written to the process's oom_score_adj before its credentials change. */
  oomScoreAdj?: number;
}

export interface Root {
  path: string;
  readonly?: boolean;
}

export interface Mount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface LinuxNamespace {
  type: NamespaceType;
  path?: string;
}

/** linux.resources: the cgroup limits (OCI names, as @box/cgroups takes them). */
export interface LinuxResources {
  memory?: { limit?: number; reservation?: number; swap?: number };
  cpu?: { shares?: number; quota?: number; period?: number; cpus?: string; mems?: string };
  pids?: { limit: number };
  blockIO?: { weight?: number };
  /** Device rules after an implicit deny-all (docker's allow list by default). */
  devices?: {
    allow: boolean;
    type?: 'a' | 'c' | 'b';
    major?: number | '*';
    minor?: number | '*';
    access?: string;
  }[];
}

/** A device node made in the container (linux.devices); its cgroup rule is separate. */
export interface LinuxDevice {
  path: string;
  type: 'c' | 'b' | 'u' | 'p';
  major?: number;
  minor?: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
  /**
   * box's own: the host node a user-namespaced container gets bind-mounted (it may not mknod),
   * when it is not `path` (docker's --device HOST:CONTAINER). runc binds `path`.
   */
  hostPath?: string;
}

export interface Linux {
  namespaces?: LinuxNamespace[];
  devices?: LinuxDevice[];
  /** Namespaced kernel parameters, e.g. { "net.ipv4.ip_forward": "1" }. */
  sysctl?: Record<string, string>;
  /** The seccomp filter, compiled to BPF at start (see @box/runtime/seccomp). */
  seccomp?: LinuxSeccomp;
  resources?: LinuxResources;
  uidMappings?: IdMapping[];
  gidMappings?: IdMapping[];
  maskedPaths?: string[];
  readonlyPaths?: string[];
  rootfsPropagation?: string;
  cgroupsPath?: string;
  /** The execution domain (personality(2)): LINUX, or LINUX32 for 32-bit programs' uname. */
  personality?: LinuxPersonality;
  /** Refused: box creates no time namespace (see validateSpec). */
  timeOffsets?: Record<string, unknown>;
  /** Refused: box does not manage resctrl (see validateSpec). */
  intelRdt?: Record<string, unknown>;
}

export interface LinuxPersonality {
  domain: 'LINUX' | 'LINUX32';
  flags?: string[];
}

/** A POSIX-platform hook (config.md): run with the container's state on stdin. */
export interface Hook {
  path: string;
  args?: string[];
  env?: string[];
  /** Seconds. */
  timeout?: number;
}

export type HookKind =
  | 'prestart'
  | 'createRuntime'
  | 'createContainer'
  | 'startContainer'
  | 'poststart'
  | 'poststop';

export type Hooks = Partial<Record<HookKind, Hook[]>>;

export interface Spec {
  ociVersion: string;
  hooks?: Hooks;
  process?: Process;
  root?: Root;
  hostname?: string;
  /** The NIS domain name of the container's UTS namespace. */
  domainname?: string;
  mounts?: Mount[];
  linux?: Linux;
  annotations?: Record<string, string>;
}

/** Docker's default capability set. */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

export const DEFAULT_MASKED_PATHS = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

export const DEFAULT_READONLY_PATHS = [
  '/proc/bus',
  '/proc/fs',
  '/proc/irq',
  '/proc/sys',
  '/proc/sysrq-trigger',
];

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** /sys/fs/cgroup as `runc spec` and docker have it (made by rootfs/cgroup-mount.ts). */
export const CGROUP_MOUNT = (): Mount => ({
  destination: '/sys/fs/cgroup',
  type: 'cgroup',
  source: 'cgroup',
  options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
});

export interface DefaultSpecOptions {
  rootfs: string;
  args?: string[];
  /** The container's cgroup below each hierarchy root, e.g. `box/<id>`; none when absent. */
  cgroupsPath?: string;
  /** Run in a new user namespace with these maps (container root = mappings[0].hostID). */
  userns?: { uidMappings: IdMapping[]; gidMappings: IdMapping[] };
}

/** A config.json with docker's defaults, like `runc spec` but with docker's choices. */
export function defaultSpec(options: DefaultSpecOptions): Spec {
  const namespaces: LinuxNamespace[] = [
    { type: 'pid' },
    { type: 'network' },
    { type: 'ipc' },
    { type: 'uts' },
    { type: 'mount' },
  ];
  if (options.userns) namespaces.push({ type: 'user' });
  return {
    ociVersion: '1.2.0',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: options.args ?? ['sh'],
      env: [`PATH=${DEFAULT_PATH}`],
      cwd: '/',
      capabilities: {
        bounding: [...DEFAULT_CAPABILITIES],
        effective: [...DEFAULT_CAPABILITIES],
        permitted: [...DEFAULT_CAPABILITIES],
      },
      noNewPrivileges: false,
    },
    root: { path: options.rootfs, readonly: false },
    hostname: 'box',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      {
        destination: '/dev',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
      },
      {
        destination: '/dev/pts',
        type: 'devpts',
        source: 'devpts',
        options: [
          'nosuid',
          'noexec',
          'newinstance',
          'ptmxmode=0666',
          'mode=0620',
          ...(options.userns ? [] : ['gid=5']),
        ],
      },
      {
        destination: '/dev/shm',
        type: 'tmpfs',
        source: 'shm',
        options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
      },
      {
        destination: '/dev/mqueue',
        type: 'mqueue',
        source: 'mqueue',
        options: ['nosuid', 'noexec', 'nodev'],
      },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      // As docker's: the container's own cgroup, read-only, where the programs that size
      // themselves to their limits look (a JVM's heap, Go's GOMAXPROCS helpers). Without it they
      // see none and size themselves to the host.
      ...(options.cgroupsPath ? [CGROUP_MOUNT()] : []),
    ],
    linux: {
      namespaces,
      cgroupsPath: options.cgroupsPath,
      resources: options.cgroupsPath
        ? { devices: DEFAULT_DEVICE_RULES.map((rule) => ({ ...rule })) }
        : undefined,
      uidMappings: options.userns?.uidMappings,
      gidMappings: options.userns?.gidMappings,
      maskedPaths: [...DEFAULT_MASKED_PATHS],
      readonlyPaths: [...DEFAULT_READONLY_PATHS],
    },
  };
}

const HOSTNAME = /^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/;

/**
 * Checks a spec before anything is created; throws SpecError naming the problem. All but
 * `linux.seccomp`, which validateSpecSeccomp checks (async: its code loads only when needed):
 * call both.
 */
export function validateSpec(spec: Spec): asserts spec is Spec & { process: Process; root: Root } {
  if (!spec.process) throw new SpecError('config has no process');
  if (!spec.root?.path) throw new SpecError('config has no root.path');
  const p = spec.process;
  if (!Array.isArray(p.args) || p.args.length === 0) throw new SpecError('process.args must not be empty');
  if (typeof p.cwd !== 'string') throw new SpecError('config has no process.cwd');
  if (typeof p.user !== 'object' || p.user === null) throw new SpecError('config has no process.user');
  if (!p.cwd.startsWith('/')) throw new SpecError(`process.cwd must be an absolute path, not "${p.cwd}"`);
  for (const entry of p.env ?? []) {
    if (!entry.includes('=') || entry.startsWith('='))
      throw new SpecError(`invalid environment variable "${entry}"`);
  }
  for (const id of [p.user.uid, p.user.gid, ...(p.user.additionalGids ?? [])]) {
    if (!Number.isInteger(id) || id < 0 || id > 0xfffffffe)
      throw new SpecError(`invalid user or group id ${id}`);
  }
  if (spec.hostname !== undefined && !HOSTNAME.test(spec.hostname)) {
    throw new SpecError(`invalid hostname "${spec.hostname}"`);
  }
  if (spec.domainname !== undefined && !HOSTNAME.test(spec.domainname)) {
    throw new SpecError(`invalid domainname "${spec.domainname}"`);
  }
  const types = new Set((spec.linux?.namespaces ?? []).map((n) => n.type as string));
  if (spec.hostname !== undefined && !types.has('uts'))
    throw new SpecError('hostname needs a new uts namespace');
  if (spec.domainname !== undefined && !types.has('uts'))
    throw new SpecError('domainname needs a new uts namespace');
  validateUnsupported(spec.linux, types);
  const propagation = spec.linux?.rootfsPropagation;
  if (propagation !== undefined && propagationFlags(propagation) === undefined)
    throw new SpecError(`linux.rootfsPropagation: unknown propagation "${propagation}"`);
  if (types.has('user') && !(spec.linux?.uidMappings?.length && spec.linux?.gidMappings?.length)) {
    throw new SpecError('a new user namespace needs uidMappings and gidMappings');
  }
  for (const m of spec.mounts ?? []) {
    if (!m.destination.startsWith('/'))
      throw new SpecError(`mount destination must be absolute: "${m.destination}"`);
  }
  if (p.rlimits !== undefined) validateRlimits(p.rlimits);
  if (p.oomScoreAdj !== undefined && !(Number.isInteger(p.oomScoreAdj) && Math.abs(p.oomScoreAdj) <= 1000))
    throw new SpecError(`process.oomScoreAdj must be an integer from -1000 to 1000, not ${p.oomScoreAdj}`);
  const own = new Set((spec.linux?.namespaces ?? []).filter((n) => !n.path).map((n) => n.type));
  if (spec.linux?.sysctl) validateSysctls(spec.linux.sysctl, own);
  for (const [i, device] of (spec.linux?.devices ?? []).entries())
    validateDevice(device, `linux.devices[${i}]`);
}

/**
 * What validateSpec leaves to this: linux.seccomp, checked with the seccomp code, which is
 * loaded only for a config that has one (its syscall tables are a good part of a start-up's
 * allocations). Call it after validateSpec, before anything of the container is made.
 * A SeccompError names the field; docker's own format (archMap, includes) is not the spec's.
 */
export async function validateSpecSeccomp(spec: Spec): Promise<void> {
  if (spec.linux?.seccomp === undefined) return;
  const { parseProfile } = await import('./seccomp/profile.js');
  const parsed = parseProfile(spec.linux.seccomp, 'linux.seccomp', { unknownSyscalls: 'ignore' }) as {
    archMap?: unknown;
    syscalls?: object[];
  };
  if (parsed.archMap !== undefined || parsed.syscalls?.some((s) => 'includes' in s || 'excludes' in s))
    throw new SpecError(
      "linux.seccomp: docker's profile format (archMap, includes, excludes) is not the OCI config's",
    );
}

/**
 * Parts of the spec box does not implement are refused by name rather than ignored: a
 * container that silently runs without its time offsets or cache allocation is not what the
 * config asked for.
 */
function validateUnsupported(linux: Linux | undefined, types: ReadonlySet<string>): void {
  if (types.has('time') || linux?.timeOffsets !== undefined)
    throw new SpecError('linux.timeOffsets and time namespaces are not supported by box');
  if (linux?.intelRdt !== undefined)
    throw new SpecError('linux.intelRdt is not supported by box (no resctrl management)');
  const personality = linux?.personality;
  if (personality !== undefined) {
    if (personality.domain !== 'LINUX' && personality.domain !== 'LINUX32')
      throw new SpecError(`linux.personality.domain must be LINUX or LINUX32, not "${personality.domain}"`);
    if (personality.flags?.length) throw new SpecError('linux.personality.flags are not supported by box');
  }
}

function validateDevice(device: LinuxDevice, where: string): void {
  if (typeof device?.path !== 'string' || !device.path.startsWith('/'))
    throw new SpecError(`${where}.path must be an absolute path`);
  if (!['c', 'b', 'u', 'p'].includes(device.type))
    throw new SpecError(`${where}.type must be c, b, u or p, not "${device.type}"`);
  const ids: [string, number | undefined][] = [
    ['major', device.major],
    ['minor', device.minor],
    ['uid', device.uid],
    ['gid', device.gid],
  ];
  for (const [key, value] of ids) {
    if (value !== undefined && !(Number.isInteger(value) && value >= 0 && value <= 0xffffffff))
      throw new SpecError(`${where}.${key} is not a valid number: ${value}`);
  }
  if (device.type !== 'p' && (device.major === undefined || device.minor === undefined))
    throw new SpecError(`${where}: a ${device.type} device needs major and minor`);
  // Up to 16 bits: podman 4 sends the host node's whole st_mode (S_IFCHR | 0600), whose file
  // type bits runc drops, and so does box (rootfs/devices.ts); `type` says what the node is.
  if (
    device.fileMode !== undefined &&
    !(Number.isInteger(device.fileMode) && device.fileMode >= 0 && device.fileMode <= 0o177777)
  )
    throw new SpecError(`${where}.fileMode is not a file mode: ${device.fileMode}`);
}
