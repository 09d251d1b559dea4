/**
 * A container as docker's `inspect` shows it (docker 24's ContainerJSON, API 1.43), made from
 * its record, its OCI config and what runs now. Only what box has: a field box has no notion of
 * (AppArmorProfile, ExecIDs, Runtime, SELinux labels, …) is absent rather than given a made-up
 * value. Keys are in docker's order, so `inspect` output reads as docker's does.
 */
import { hostname } from 'node:os';
import type { LogOptions } from '../logs.js';
import type { Spec } from '../spec.js';
import type { NetworkEndpoint } from './network-attach.js';
import type { Container, Healthcheck, HealthState, ImageConfig, MountRequest, PortBinding } from './types.js';

/** docker's zero time, for a container that never started or never ended. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

export interface ContainerStateInspect {
  Status: 'created' | 'running' | 'paused' | 'restarting' | 'exited';
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
  Health?: HealthState;
}

export interface PortBindingInspect {
  HostIp: string;
  HostPort: string;
}

/** docker's MountPoint: a mount of the container as `inspect` lists it under Mounts. */
export interface MountPointInspect {
  Type: 'bind' | 'volume' | 'tmpfs';
  /** The volume's name (volumes only). */
  Name?: string;
  Source: string;
  Destination: string;
  /** 'local' (volumes only). */
  Driver?: string;
  /** The options as written after the last `:` of -v ('' otherwise). */
  Mode: string;
  RW: boolean;
  Propagation: string;
}

/** docker's HostConfig.Mounts entry: a --mount as asked. */
export interface HostMountInspect {
  Type: 'bind' | 'volume' | 'tmpfs';
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
}

export interface HostConfigInspect {
  Binds: string[] | null;
  LogConfig: { Type: 'json-file'; Config: Record<string, string> };
  NetworkMode: string;
  PortBindings: Record<string, PortBindingInspect[]>;
  RestartPolicy: { Name: string; MaximumRetryCount: number };
  AutoRemove: boolean;
  VolumeDriver: string;
  ConsoleSize: [number, number];
  CapAdd: string[] | null;
  CapDrop: string[] | null;
  CgroupnsMode: 'private' | 'host';
  Dns: string[];
  DnsOptions: string[];
  DnsSearch: string[];
  ExtraHosts: string[] | null;
  GroupAdd: string[] | null;
  IpcMode: string;
  OomScoreAdj: number;
  PidMode: string;
  Privileged: boolean;
  PublishAllPorts: boolean;
  ReadonlyRootfs: boolean;
  SecurityOpt: string[] | null;
  /** --tmpfs: its options by mount point (absent without one, as docker's). */
  Tmpfs?: Record<string, string>;
  UTSMode: string;
  UsernsMode: string;
  ShmSize: number;
  CpuShares: number;
  Memory: number;
  NanoCpus: number;
  CpusetCpus: string;
  CpusetMems: string;
  Devices: { PathOnHost: string; PathInContainer: string; CgroupPermissions: string }[];
  DeviceCgroupRules: string[] | null;
  MemoryReservation: number;
  MemorySwap: number;
  PidsLimit: number | null;
  Ulimits: { Name: string; Soft: number; Hard: number }[] | null;
  MaskedPaths: string[] | null;
  ReadonlyPaths: string[] | null;
  /** --mount: as asked (absent without one). */
  Mounts?: HostMountInspect[];
  Init?: boolean;
  Sysctls?: Record<string, string>;
}

export interface ConfigInspect {
  Hostname: string;
  Domainname: string;
  User: string;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  ExposedPorts?: Record<string, Record<string, never>>;
  Tty: boolean;
  OpenStdin: boolean;
  StdinOnce: boolean;
  Env: string[];
  Cmd: string[] | null;
  Image: string;
  Volumes: Record<string, Record<string, never>> | null;
  WorkingDir: string;
  Entrypoint: string[] | null;
  Labels: Record<string, string>;
  StopSignal?: string;
  StopTimeout?: number;
  Healthcheck?: Healthcheck;
}

export interface EndpointInspect {
  IPAMConfig: { IPv4Address: string } | null;
  Aliases: string[] | null;
  NetworkID: string;
  Gateway: string;
  IPAddress: string;
  IPPrefixLen: number;
  MacAddress: string;
}

export interface NetworkSettingsInspect {
  Ports: Record<string, PortBindingInspect[] | null>;
  SandboxKey: string;
  Gateway: string;
  IPAddress: string;
  IPPrefixLen: number;
  MacAddress: string;
  Networks: Record<string, EndpointInspect>;
}

/** docker's ContainerJSON, for what box has. */
export interface ContainerInspect {
  Id: string;
  Created: string;
  Path: string;
  Args: string[];
  State: ContainerStateInspect;
  /** The image's ID. */
  Image: string;
  ResolvConfPath: string;
  HostnamePath: string;
  HostsPath: string;
  LogPath: string;
  Name: string;
  RestartCount: number;
  Driver: 'overlay2';
  Platform: 'linux';
  HostConfig: HostConfigInspect;
  GraphDriver: { Name: 'overlay2'; Data: { LowerDir: string; UpperDir: string; WorkDir: string } };
  Mounts: MountPointInspect[];
  Config: ConfigInspect;
  NetworkSettings: NetworkSettingsInspect;
}

/** What the record does not hold: where volumes live, the image's config, networks' IDs. */
export interface InspectContext {
  volumePath(name: string): string;
  /** The image's config (its labels and exposed ports), when the image is still there. */
  imageConfig?: ImageConfig;
  /** A network's ID by name ('' when it is gone). */
  networkId(name: string): string;
}

export function containerInspect(container: Container, context: InspectContext): ContainerInspect {
  const { spec, running, paused } = container;
  const entrypoint = container.entrypoint ?? [];
  const cmd = container.command.slice(entrypoint.length);
  const anonymous = new Set(container.anonymousVolumes ?? []);
  const etcFile = (file: string) => spec.mounts?.find((m) => m.destination === `/etc/${file}`)?.source ?? '';
  return {
    Id: container.id,
    Created: container.created,
    Path: container.command[0] ?? '',
    Args: container.command.slice(1),
    State: {
      Status: running ? (paused ? 'paused' : 'running') : container.status,
      Running: running,
      Paused: running && paused,
      Restarting: container.status === 'restarting',
      OOMKilled: container.oomKilled ?? false,
      Dead: false,
      Pid: running ? (container.pid ?? 0) : 0,
      ExitCode: container.exitCode ?? 0,
      Error: container.error && container.error !== 'stopped' ? container.error : '',
      StartedAt: container.started ?? ZERO_TIME,
      FinishedAt: container.finished ?? ZERO_TIME,
      ...(container.health ? { Health: container.health } : {}),
    },
    Image: container.imageId ?? '',
    ResolvConfPath: etcFile('resolv.conf'),
    HostnamePath: etcFile('hostname'),
    HostsPath: etcFile('hosts'),
    LogPath: container.logPath,
    Name: `/${container.name}`,
    RestartCount: container.restartCount ?? 0,
    Driver: 'overlay2',
    Platform: 'linux',
    HostConfig: hostConfig(container, anonymous),
    GraphDriver: {
      Name: 'overlay2',
      Data: {
        LowerDir: container.overlay.lowerdirs.join(':'),
        UpperDir: container.overlay.upperdir,
        WorkDir: container.overlay.workdir,
      },
    },
    Mounts: mountPoints(container.mounts ?? [], context),
    Config: {
      // In the host's UTS namespace (--uts host), the host's name, as docker shows it.
      Hostname: spec.hostname ?? (spec.linux?.namespaces?.some((n) => n.type === 'uts') ? '' : hostname()),
      Domainname: spec.domainname ?? '',
      // As given (docker shows "nobody", not its ids; "" when the image's default, root, applies).
      User: container.user ?? '',
      AttachStdin: container.attach?.stdin ?? false,
      AttachStdout: container.attach?.stdout ?? false,
      AttachStderr: container.attach?.stderr ?? false,
      ...exposedPorts(context.imageConfig, container.ports ?? []),
      Tty: spec.process?.terminal ?? false,
      OpenStdin: container.openStdin ?? false,
      // docker: stdin closes with the first caller that attached it.
      StdinOnce: (container.openStdin ?? false) && (container.attach?.stdin ?? false),
      Env: spec.process?.env ?? [],
      Cmd: cmd.length > 0 ? cmd : null,
      Image: container.image,
      Volumes: anonymousVolumes(container.mounts ?? [], anonymous),
      WorkingDir: spec.process?.cwd ?? '/',
      Entrypoint: entrypoint.length > 0 ? entrypoint : null,
      // The container's (the image's with --label over them); the image's for an older record.
      Labels: container.labels ? { ...container.labels } : labelsOf(context.imageConfig),
      ...(container.stopSignal !== undefined ? { StopSignal: container.stopSignal } : {}),
      ...(container.stopTimeout !== undefined ? { StopTimeout: container.stopTimeout } : {}),
      ...(container.healthcheck ? { Healthcheck: container.healthcheck } : {}),
    },
    NetworkSettings: networkSettings(container, context),
  };
}

function hostConfig(container: Container, anonymous: ReadonlySet<string>): HostConfigInspect {
  const { spec } = container;
  const resources = spec.linux?.resources;
  const cpu = resources?.cpu;
  const namespaces = new Set((spec.linux?.namespaces ?? []).map((n) => n.type));
  const mounts = container.mounts ?? [];
  // -v SRC:DST; -v DST (an anonymous volume) is in Config.Volumes instead.
  const binds = mounts.flatMap((m) =>
    m.short && m.type !== 'tmpfs' && !anonymous.has(m.source ?? '') ? [bindText(m)] : [],
  );
  const tmpfs = mounts.filter((m) => m.short && m.type === 'tmpfs');
  const long = mounts.filter((m) => !m.short);
  const size = spec.process?.consoleSize;
  return {
    Binds: binds.length > 0 ? binds : null,
    LogConfig: { Type: 'json-file', Config: logConfig(container.logOptions ?? {}) },
    NetworkMode: container.networkMode ?? 'bridge',
    PortBindings: portBindings(container.ports ?? []),
    RestartPolicy: {
      Name: container.restartPolicy?.name ?? 'no',
      MaximumRetryCount: container.restartPolicy?.maximumRetryCount ?? 0,
    },
    AutoRemove: container.autoRemove,
    VolumeDriver: '',
    ConsoleSize: [size?.height ?? 0, size?.width ?? 0],
    CapAdd: container.capAdd ?? null,
    CapDrop: container.capDrop ?? null,
    CgroupnsMode: namespaces.has('cgroup') ? 'private' : 'host',
    Dns: container.networkOptions?.dns ?? [],
    DnsOptions: container.networkOptions?.dnsOptions ?? [],
    DnsSearch: container.networkOptions?.dnsSearch ?? [],
    ExtraHosts: container.networkOptions?.extraHosts?.map((h) => `${h.name}:${h.ip}`) ?? null,
    GroupAdd: container.groupAdd ?? null,
    IpcMode: !namespaces.has('ipc')
      ? 'host'
      : spec.mounts?.some((m) => m.destination === '/dev/shm')
        ? 'private'
        : 'none',
    OomScoreAdj: spec.process?.oomScoreAdj ?? 0,
    PidMode: namespaces.has('pid') ? '' : 'host',
    Privileged: container.privileged ?? false,
    PublishAllPorts: container.publishAll ?? false,
    ReadonlyRootfs: spec.root?.readonly ?? false,
    SecurityOpt: securityOpt(container, spec),
    ...(tmpfs.length > 0
      ? { Tmpfs: Object.fromEntries(tmpfs.map((m) => [m.destination, m.short?.mode ?? ''])) }
      : {}),
    UTSMode: namespaces.has('uts') ? '' : 'host',
    UsernsMode: '',
    ShmSize: container.shmSize ?? 64 * 1024 * 1024,
    CpuShares: cpu?.shares ?? 0,
    Memory: resources?.memory?.limit ?? 0,
    // --cpus, kept by box as a CFS quota per period.
    NanoCpus: cpu?.quota ? Math.round((cpu.quota / (cpu.period ?? 100000)) * 1e9) : 0,
    CpusetCpus: cpu?.cpus ?? '',
    CpusetMems: cpu?.mems ?? '',
    Devices: (container.devices ?? []).map((d) => ({
      PathOnHost: d.hostPath,
      PathInContainer: d.containerPath ?? d.hostPath,
      CgroupPermissions: d.permissions ?? 'rwm',
    })),
    DeviceCgroupRules: container.deviceCgroupRules ?? null,
    MemoryReservation: resources?.memory?.reservation ?? 0,
    MemorySwap: resources?.memory?.swap ?? 0,
    PidsLimit: resources?.pids?.limit ?? null,
    Ulimits: container.ulimits?.map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })) ?? null,
    MaskedPaths: spec.linux?.maskedPaths ?? null,
    ReadonlyPaths: spec.linux?.readonlyPaths ?? null,
    ...(long.length > 0 ? { Mounts: long.map(hostMount) } : {}),
    ...(container.init ? { Init: true } : {}),
    ...(spec.linux?.sysctl && Object.keys(spec.linux.sysctl).length > 0
      ? { Sysctls: spec.linux.sysctl }
      : {}),
  };
}

/** -v as docker lists it in HostConfig.Binds: SRC:DST[:MODE]. */
function bindText(mount: MountRequest): string {
  const source = mount.type === 'tmpfs' ? '' : (mount.source ?? '');
  const mode = mount.short?.mode ?? '';
  return `${source}:${mount.destination}${mode ? `:${mode}` : ''}`;
}

function hostMount(mount: MountRequest): HostMountInspect {
  if (mount.type === 'tmpfs') return { Type: 'tmpfs', Target: mount.destination };
  return {
    Type: mount.type,
    ...(mount.source !== undefined ? { Source: mount.source } : {}),
    Target: mount.destination,
    ...(mount.readonly ? { ReadOnly: true } : {}),
  };
}

/** docker's Mounts: binds and volumes, and tmpfs mounts asked with --mount (not --tmpfs's). */
function mountPoints(mounts: readonly MountRequest[], context: InspectContext): MountPointInspect[] {
  const out: MountPointInspect[] = [];
  for (const mount of mounts) {
    const Mode = mount.short?.mode ?? '';
    if (mount.type === 'bind') {
      out.push({
        Type: 'bind',
        Source: mount.source,
        Destination: mount.destination,
        Mode,
        RW: !mount.readonly,
        Propagation: mount.propagation?.[0] ?? 'rprivate',
      });
    } else if (mount.type === 'volume') {
      const name = mount.source ?? '';
      out.push({
        Type: 'volume',
        Name: name,
        Source: context.volumePath(name),
        Destination: mount.destination,
        Driver: 'local',
        Mode,
        RW: !mount.readonly,
        Propagation: '',
      });
    } else if (!mount.short) {
      const readonly = mount.options?.includes('ro') ?? false;
      out.push({
        Type: 'tmpfs',
        Source: '',
        Destination: mount.destination,
        Mode,
        RW: !readonly,
        Propagation: '',
      });
    }
  }
  return out;
}

/** docker's Config.Volumes: the mount points of anonymous volumes (-v DST). */
function anonymousVolumes(
  mounts: readonly MountRequest[],
  anonymous: ReadonlySet<string>,
): ConfigInspect['Volumes'] {
  const points = mounts.filter((m) => m.type === 'volume' && anonymous.has(m.source ?? ''));
  return points.length > 0 ? Object.fromEntries(points.map((m) => [m.destination, {}])) : null;
}

/** docker's PortBindings: each -p by container port, as asked ('' for any address or a free port). */
function portBindings(ports: readonly PortBinding[]): Record<string, PortBindingInspect[]> {
  const out: Record<string, PortBindingInspect[]> = {};
  for (const p of ports) {
    const key = `${p.containerPort}/${p.protocol}`;
    out[key] = [
      ...(out[key] ?? []),
      { HostIp: p.hostIp ?? '', HostPort: p.hostPort ? String(p.hostPort) : '' },
    ];
  }
  return out;
}

/** The image's exposed ports and the published ones, as docker merges them (absent when none). */
function exposedPorts(
  image: ImageConfig | undefined,
  ports: readonly PortBinding[],
): Pick<ConfigInspect, 'ExposedPorts'> {
  const keys = new Set(Object.keys((image?.ExposedPorts ?? {}) as Record<string, unknown>));
  for (const p of ports) keys.add(`${p.containerPort}/${p.protocol}`);
  return keys.size > 0 ? { ExposedPorts: Object.fromEntries([...keys].map((k) => [k, {}])) } : {};
}

/** The image's labels (Config.Labels of a container recorded before it kept its own). */
function labelsOf(image: ImageConfig | undefined): Record<string, string> {
  const labels = image?.Labels;
  return labels && typeof labels === 'object' ? { ...(labels as Record<string, string>) } : {};
}

/** --log-opt as docker shows it: max-size in its unit, max-file. */
function logConfig(options: LogOptions): Record<string, string> {
  const out: Record<string, string> = {};
  if (options.maxSize !== undefined) out['max-size'] = logSize(options.maxSize);
  if (options.maxFiles !== undefined) out['max-file'] = String(options.maxFiles);
  return out;
}

/** A --log-opt size in the largest unit that keeps it whole, as given: 10485760 → 10m. */
export function logSize(bytes: number): string {
  for (const [unit, factor] of [
    ['g', 1024 ** 3],
    ['m', 1024 ** 2],
    ['k', 1024],
  ] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return String(bytes);
}

/** docker's HostConfig.SecurityOpt: the options as given (the default profile is not listed). */
function securityOpt(container: Container, spec: Spec): string[] | null {
  const opts: string[] = [];
  if (spec.process?.noNewPrivileges) opts.push('no-new-privileges');
  if (container.seccomp) opts.push(`seccomp=${container.seccomp}`);
  return opts.length > 0 ? opts : null;
}

/**
 * docker's NetworkSettings. Its top-level address fields are the default network's only (they
 * are empty on a network of the user's, as docker's); each network's entry has its addresses
 * while the container runs, and only the network's ID otherwise.
 */
function networkSettings(container: Container, context: InspectContext): NetworkSettingsInspect {
  const settings = container.running ? container.networkSettings : undefined;
  const ports: Record<string, PortBindingInspect[] | null> = {};
  if (settings) {
    for (const p of container.ports ?? []) ports[`${p.containerPort}/${p.protocol}`] = null;
    for (const p of settings.ports) {
      const key = `${p.containerPort}/${p.protocol}`;
      ports[key] = [...(ports[key] ?? []), { HostIp: p.hostIp ?? '0.0.0.0', HostPort: String(p.hostPort) }];
    }
  }
  const networks: Record<string, EndpointInspect> = {};
  for (const name of container.networks ?? []) {
    networks[name] = endpoint(container, context, name, settings?.networks[name]);
  }
  const bridge = settings?.networks.bridge;
  return {
    Ports: ports,
    SandboxKey: container.running && container.pid ? `/proc/${container.pid}/ns/net` : '',
    Gateway: bridge?.gateway ?? '',
    IPAddress: bridge?.ipAddress ?? '',
    IPPrefixLen: bridge?.prefixLength ?? 0,
    MacAddress: bridge?.macAddress ?? '',
    Networks: networks,
  };
}

function endpoint(
  container: Container,
  context: InspectContext,
  name: string,
  live: NetworkEndpoint | undefined,
): EndpointInspect {
  const ip = container.networkOptions?.ip;
  return {
    IPAMConfig: ip ? { IPv4Address: ip } : null,
    // Other containers on its networks reach it by its short ID as well as by its name.
    Aliases: [container.id.slice(0, 12)],
    NetworkID: live?.networkId ?? context.networkId(name),
    Gateway: live?.gateway ?? '',
    IPAddress: live?.ipAddress ?? '',
    IPPrefixLen: live?.prefixLength ?? 0,
    MacAddress: live?.macAddress ?? '',
  };
}
