/** The engine's public types: container records, what create takes, the image provider. */
import type { Readable } from 'node:stream';
import type { LogOptions } from '../logs.js';
import type { LinuxResources, Spec } from '../spec.js';

export type ContainerStatus = 'created' | 'running' | 'restarting' | 'exited';

export interface RestartPolicy {
  name: 'no' | 'on-failure' | 'always';
  /** Most restarts for on-failure (0: no limit). */
  maximumRetryCount: number;
}

/** A container as stored in containers/ID/state.json. */
export interface ContainerRecord {
  id: string;
  name: string;
  /** The image as the user named it. */
  image: string;
  command: string[];
  /** The entrypoint it runs with (given, or the image's): the first part of `command`. */
  entrypoint?: string[];
  /** USER[:GROUP] as given (or the image's User), names unresolved: what `inspect` shows. */
  user?: string;
  /** The image's labels with --label's over them, as docker's container config keeps them. */
  labels?: Record<string, string>;
  /** What stop sends first, as given (--stop-signal, or the image's StopSignal); SIGTERM without. */
  stopSignal?: string;
  /** Seconds stop waits before SIGKILL (--stop-timeout; negative: no end); 10 without. */
  stopTimeout?: number;
  created: string;
  status: ContainerStatus;
  /** Remove the container when it exits (--rm). */
  autoRemove: boolean;
  /**
   * Made by a `run --rm` whose process holds the container's lock from its creation until it
   * runs: if that process dies first (SIGKILL during the start), recovery removes the container
   * instead of keeping a created one nobody asked for. Cleared once it runs.
   */
  runPending?: boolean;
  /** The cgroup below each hierarchy root. */
  cgroupsPath: string;
  /** The image's ID, held by the image provider while the container exists. */
  imageId?: string;
  /** The layers of its root filesystem: image layers (top first) and its own. */
  overlay: { lowerdirs: string[]; upperdir: string; workdir: string; layersRoot?: string };
  /**
   * Rootless, on fuse-overlayfs (see rootless-overlay.ts): asked for at its creation, or since its
   * kernel refused overlayfs. Whoever starts it or reads its files (the service, `cp`) does the same.
   */
  fuseOverlay?: boolean;
  /** The mounts as asked (-v, --mount, --tmpfs), for inspect. */
  mounts?: MountRequest[];
  /**
   * -i (its stdin is kept open for attachers) and the streams attached at create, as asked
   * (docker's Config.OpenStdin, AttachStdin, …).
   */
  openStdin?: boolean;
  attach?: AttachedStreams;
  /** Named volumes it mounts (kept after it), and anonymous ones (removed by remove({ volumes })). */
  volumes?: string[];
  anonymousVolumes?: string[];
  /** Owned by the supervisor (detached), rather than by the process that attached to it. */
  detached?: boolean;
  restartPolicy?: RestartPolicy;
  restartCount?: number;
  logOptions?: LogOptions;
  /** The health check, the image's merged with the flags'; absent when there is none. */
  healthcheck?: Healthcheck;
  /** --cap-add / --cap-drop as asked (the effective set is in the OCI config). */
  capAdd?: string[];
  capDrop?: string[];
  /** The security and process switches as asked (the effective settings are in the OCI config). */
  privileged?: boolean;
  /** 'unconfined', or where a custom profile came from; absent: the default profile. */
  seccomp?: string;
  devices?: DeviceRequest[];
  deviceCgroupRules?: string[];
  ulimits?: Ulimit[];
  groupAdd?: string[];
  init?: boolean;
  shmSize?: number;
  pid?: number;
  /** The pid's start time (clock ticks since boot), to tell it from a later process with the same pid. */
  pidStartTime?: number;
  started?: string;
  exitCode?: number;
  oomKilled?: boolean;
  finished?: string;
  /** Why the container did not end normally; 'stopped' when stopped on purpose. */
  error?: string;
  /** --network as asked: bridge (default), none, host, container:REF, or a network's name. */
  networkMode?: string;
  /** The networks it joins when it starts (by name). */
  networks?: string[];
  /** -p (with -P's ports added at create). */
  ports?: PortBinding[];
  /** -P was given. */
  publishAll?: boolean;
  /** --ip, --add-host and the resolver options, used at each start. */
  networkOptions?: {
    ip?: string;
    extraHosts?: { name: string; ip: string }[];
    dns?: string[];
    dnsSearch?: string[];
    dnsOptions?: string[];
  };
  /** While it runs: its address on each network and the host ports it got. */
  networkSettings?: import('./network-attach.js').NetworkSettings;
}

/** A container as the engine reports it: its record, its OCI config and what runs now. */
export interface Container extends ContainerRecord {
  /**
   * Its process runs (status 'running' and the same process still there). `status` is what its
   * owner recorded: a process that just ended is 'running' with `running` false until its owner
   * records the end (with the exit code).
   */
  running: boolean;
  /** Running with its cgroup frozen (pause). */
  paused: boolean;
  /** The OCI config it runs with (its environment included). */
  spec: Spec;
  /** Its json-file log. */
  logPath: string;
  /** The last health its checks recorded (containers with a health check that have run). */
  health?: HealthState;
  /** Bytes of its writable layer (docker's SizeRw), when asked for (`list({ size: true })`). */
  sizeRw?: number;
}

/** An image as the engine uses it: resolved by the image provider. */
export interface EngineImage {
  /** Content ID (config digest), what holds refer to. */
  id: string;
  /** As the user sees it: `busybox:latest`, or a short ID. */
  name: string;
  /** Layer directories, top first (overlayfs's lowerdir order). */
  layers: string[];
  /** Where short links for overlays of many layers are made (@box/unionfs linkLayer). */
  layersRoot?: string;
  config: ImageConfig;
}

/** The parts of an image's config a container starts from (OCI image config's `config`). */
export interface ImageConfig {
  Healthcheck?: Healthcheck;
  User?: string;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  [key: string]: unknown;
}

export interface CommitRequest {
  /** The container's changes as an OCI layer tar (whiteouts as `.wh.` files). */
  layer: Readable;
  parent: string;
  reference?: string;
  config: ImageConfig;
  comment?: string;
  author?: string;
  createdBy: string;
}

/**
 * Where the engine gets images from. @box/runtime does not know how images are stored: the
 * `box` CLI wires this to @box/image's store. Errors for a missing image should be an
 * EngineError 'ENOIMAGE'.
 */
export interface ImageProvider {
  resolve(reference: string): Promise<EngineImage>;
  /**
   * Marks the image as used by a container (removal refused while held). `durable: false`: the
   * hold need not survive a power loss (a container removed when it ends; recovery releases
   * what is left).
   */
  hold(imageId: string, containerId: string, options?: { durable?: boolean }): Promise<void>;
  /** Drops every hold of a container; unknown containers are ignored. */
  release(containerId: string, options?: { durable?: boolean }): Promise<void>;
  /** Stores a new image from a container's changes; resolves with its ID. */
  commit?(request: CommitRequest): Promise<string>;
  /** Image config of an image ID (commit starts from it). */
  config?(imageId: string): Promise<ImageConfig>;
}

/** docker's --device HOST[:CONTAINER[:PERMISSIONS]]. */
export interface DeviceRequest {
  hostPath: string;
  /** Where it appears in the container (default: hostPath). */
  containerPath?: string;
  /** Cgroup permissions: some of r, w, m (default rwm). */
  permissions?: string;
}

/** docker's --ulimit NAME=SOFT[:HARD]. */
export interface Ulimit {
  name: string;
  soft: number;
  hard: number;
}

/**
 * A mount as create takes it; paths are checked and volumes made by the engine. `short`: it
 * was given in docker's short form (`-v SRC:DST:MODE`, `--tmpfs DST:OPTS`) with MODE or OPTS as
 * written; inspect then lists it where docker does (HostConfig.Binds, HostConfig.Tmpfs) rather
 * than in HostConfig.Mounts.
 */
export type MountRequest =
  | {
      type: 'bind';
      source: string;
      destination: string;
      readonly?: boolean;
      propagation?: string[];
      /** docker's -v: a missing source is made (a directory, 0755); --mount refuses one. */
      createSource?: boolean;
      short?: { mode: string };
    }
  /** A named volume (made on first use), or an anonymous one without `source`. */
  | { type: 'volume'; source?: string; destination: string; readonly?: boolean; short?: { mode: string } }
  | { type: 'tmpfs'; destination: string; options?: string[]; short?: { mode: string } };

/** Which of stdin, stdout and stderr a caller attaches to (docker's Config.Attach*). */
export interface AttachedStreams {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

/** docker's -p: a container port published on the host. */
export interface PortBinding {
  /** The host address it listens on; absent: every address. */
  hostIp?: string;
  /** Absent (or 0): a free port is chosen at start. */
  hostPort?: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

export interface CreateOptions {
  /**
   * Rootless only: mount its overlay with fuse-overlayfs rather than the kernel's (default: where
   * the kernel refuses it, or BOX_ROOTLESS_OVERLAY=fuse-overlayfs of the caller).
   */
  fuseOverlay?: boolean;
  image: string;
  /** Replaces the image's Cmd (after its Entrypoint). */
  command?: string[];
  /** Replaces the image's Entrypoint (`[]` clears it); the image's Cmd then goes too, as docker's. */
  entrypoint?: string[];
  name?: string;
  /** docker's --label: over the image's labels. */
  labels?: Record<string, string>;
  /** docker's --stop-signal (`SIGUSR1`, `usr1`, `10`); the image's StopSignal, else SIGTERM, without. */
  stopSignal?: string;
  /** docker's --stop-timeout: seconds stop waits before SIGKILL (negative: no end; default 10). */
  stopTimeout?: number;
  /** KEY=VALUE entries, after the image's. */
  env?: string[];
  workdir?: string;
  /** USER[:GROUP], names looked up in the image. */
  user?: string;
  hostname?: string;
  /**
   * docker's --pid: 'host' shares the host's PID namespace (its /proc shows every process of the
   * host); without it, a new one. Not for a rootless container.
   */
  pid?: 'host';
  /**
   * docker's --uts: 'host' shares the host's UTS namespace, and so its hostname, which the
   * container cannot change without CAP_SYS_ADMIN; without it, a new one.
   */
  uts?: 'host';
  /**
   * docker's --ipc: 'private' (the default) a new IPC namespace with its own /dev/shm; 'none' a
   * new one without /dev/shm; 'host' the host's IPC namespace, /dev/shm and /dev/mqueue.
   */
  ipc?: 'private' | 'none' | 'host';
  tty?: boolean;
  /** docker's -i: its stdin is kept open for attachers (a pipe, or the terminal's input with a tty). */
  openStdin?: boolean;
  /** The streams the caller attaches (kept for inspect). */
  attach?: AttachedStreams;
  /** Terminal size for tty containers. */
  consoleSize?: { height: number; width: number };
  /** A user namespace: container root is an unprivileged host uid (box's range in /etc/subuid). */
  userns?: boolean;
  resources?: LinuxResources;
  mounts?: MountRequest[];
  readonlyRootfs?: boolean;
  /** docker's --cap-add / --cap-drop (names with or without CAP_, or ALL). */
  capAdd?: string[];
  capDrop?: string[];
  /** The process and its children cannot gain privileges (setuid bits, file capabilities). */
  noNewPrivileges?: boolean;
  /** docker's --privileged: every capability, every host device, no masked or read-only paths, no seccomp. */
  privileged?: boolean;
  /**
   * The seccomp profile: docker's default when absent, none with 'unconfined', or a profile in
   * docker's JSON format or as the OCI config's linux.seccomp (parsed JSON; `source` names it in
   * errors, e.g. the file's path).
   */
  seccomp?: 'unconfined' | { profile: unknown; source: string };
  /** docker's --device: host device nodes (or directories of them) made in the container. */
  devices?: DeviceRequest[];
  /** docker's --device-cgroup-rule: `c 1:3 rwm`, `b 8:* r`, `a *:* rwm`. */
  deviceCgroupRules?: string[];
  /** docker's --ulimit: `nofile`, `nproc`, ... (-1 is unlimited). */
  ulimits?: Ulimit[];
  /** Namespaced kernel parameters (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*). */
  sysctls?: Record<string, string>;
  /** The process's oom_score_adj, -1000 to 1000. */
  oomScoreAdj?: number;
  /** More supplementary groups: names in the image's /etc/group, or ids. */
  groupAdd?: string[];
  /** A minimal init as PID 1 that forwards signals to the command and reaps zombies (docker's --init). */
  init?: boolean;
  /** The size of /dev/shm in bytes (default 64 MiB). */
  shmSize?: number;
  autoRemove?: boolean;
  restartPolicy?: RestartPolicy;
  logOptions?: LogOptions;
  /** docker's --health-* over the image's Healthcheck: each given field replaces the image's. */
  healthcheck?: Healthcheck;
  /**
   * docker's --network: 'bridge' (the default network, made on first use), 'none' (only lo),
   * 'host' (the host's network namespace), 'container:NAME|ID' (another's), or a network's name.
   */
  network?: string;
  /** An address on the (bridge or user-defined) network; one is chosen without it. */
  ip?: string;
  /** docker's -p. */
  publish?: PortBinding[];
  /** docker's -P: each port the image exposes, on a free host port. */
  publishAll?: boolean;
  /** Nameservers, search domains, resolver options for /etc/resolv.conf (else the host's). */
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** docker's --add-host: lines of /etc/hosts. */
  extraHosts?: { name: string; ip: string }[];
}

export interface ExecOptions {
  command: string[];
  env?: string[];
  workdir?: string;
  user?: string;
  tty?: boolean;
  consoleSize?: { height: number; width: number };
}

/** Host fds of the caller for a container or exec process it runs attached. */
export interface AttachStdio {
  /** Fds for the process's 0, 1, 2 (without a terminal). */
  stdio?: readonly [number, number, number];
  /** Unix socket receiving the pty master (with a terminal). */
  consoleSocket?: number;
}

export interface ExitStatus {
  /** docker's exit code: the status, or 128 + the signal that killed it. */
  exitCode: number;
  oomKilled: boolean;
}

export type EngineEventType =
  | 'create'
  | 'start'
  | 'die'
  | 'oom'
  | 'destroy'
  | 'pause'
  | 'unpause'
  | 'rename'
  | `health_status: ${HealthState['Status']}`;

/**
 * docker's health check (an image's `Healthcheck`, `--health-*`): Test is `["CMD", args…]`,
 * `["CMD-SHELL", command]` or `["NONE"]`; durations in nanoseconds, 0 for the default.
 */
export interface Healthcheck {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** docker's State.Health. */
export interface HealthState {
  Status: 'starting' | 'healthy' | 'unhealthy';
  FailingStreak: number;
  Log: { Start: string; End: string; ExitCode: number; Output: string }[];
}

export interface EngineEvent {
  type: EngineEventType;
  id: string;
  name: string;
  image: string;
  /** RFC 3339 with nanoseconds. */
  time: string;
  exitCode?: number;
  /** A rename's name before it. */
  oldName?: string;
}

export interface ContainerStats {
  id: string;
  name: string;
  cpuPercent: number;
  memoryUsage: number;
  memoryLimit: number | null;
  memoryPercent: number | null;
  pids: number;
}

export interface ContainerProcessInfo {
  uid: string;
  pid: number;
  ppid: number;
  /** CPU time in seconds. */
  cpuSeconds: number;
  command: string;
}
