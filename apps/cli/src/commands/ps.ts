/** `box ps` and `box inspect`: containers as docker shows them. */
import type { Container, Spec } from '@box/runtime';
import { openEngine } from '../engine.js';
import { CliError, isRuntimeError } from '../errors.js';
import { matchLabels, parseFilters } from '../filters.js';
import { formatEach, formatList, GoStruct, humanDuration } from '../output/index.js';

export interface PsFlags {
  all?: boolean;
  quiet?: boolean;
  noTrunc?: boolean;
  format?: string;
  /** -n: the last N created, in every state. */
  last?: string;
  /** -l: the latest created. */
  latest?: boolean;
  filter?: string[];
}

/** docker ps --filter KEY=VALUE: the keys box knows, each a test of a container. */
const PS_FILTERS: Record<string, (state: Container, value: string) => boolean> = {
  id: (state, value) => state.id.startsWith(value),
  name: (state, value) => state.name.includes(value),
  status: (state, value) => (state.running ? (state.paused ? 'paused' : 'running') : state.status) === value,
  ancestor: (state, value) => state.image === value || state.image === `${value}:latest`,
  exited: (state, value) => !state.running && state.status === 'exited' && String(state.exitCode) === value,
  network: (state, value) =>
    (state.networks?.length ? state.networks : [state.networkMode ?? 'bridge']).includes(value),
  // starting, healthy, unhealthy, or none (no health check)
  health: (state, value) => (state.running && state.health ? state.health.Status : 'none') === value,
  label: (state, value) => matchLabels(state.labels, [value]),
};

/** Filters of one key are alternatives (any may match), but labels must all match; different keys must all match, as docker's. */
function psFilter(values: readonly string[]): (state: Container) => boolean {
  const filters = parseFilters(values, Object.keys(PS_FILTERS));
  return (state) =>
    [...filters].every(([key, wanted]) =>
      key === 'label' ? matchLabels(state.labels, wanted) : wanted.some((v) => PS_FILTERS[key]!(state, v)),
    );
}

function statusText(state: Container, now: number, paused: boolean): string {
  if (state.running) {
    const up = `Up ${humanDuration(now - Date.parse(state.started ?? state.created))}`;
    if (paused) return `${up} (Paused)`;
    const health = state.health?.Status;
    return health === undefined ? up : `${up} (${health === 'starting' ? 'health: starting' : health})`;
  }
  if (state.status === 'restarting') {
    return `Restarting (${state.exitCode ?? 0}) ${humanDuration(now - Date.parse(state.finished ?? state.created))} ago`;
  }
  if (state.status === 'exited') {
    return `Exited (${state.exitCode ?? 0}) ${humanDuration(now - Date.parse(state.finished ?? state.created))} ago`;
  }
  return 'Created';
}

/** docker's `{{.Labels}}`: k=v joined by commas (sorted here; docker's map order is random). */
function labelsText(labels: Record<string, string> = {}): string {
  return Object.keys(labels)
    .sort()
    .map((key) => `${key}=${labels[key]}`)
    .join(',');
}

function row(state: Container, now: number, noTrunc: boolean, paused = false): GoStruct {
  const command = JSON.stringify(state.command.join(' '));
  const labels = state.labels ?? {};
  const fields = {
    ID: noTrunc ? state.id : state.id.slice(0, 12),
    Image: state.image,
    Command: noTrunc || command.length <= 22 ? command : `${command.slice(0, 19)}…"`,
    CreatedAt: state.created,
    RunningFor: `${humanDuration(now - Date.parse(state.created))} ago`,
    Status: statusText(state, now, paused),
    State: state.running ? (paused ? 'paused' : 'running') : state.status,
    Names: state.name,
    Labels: labelsText(labels),
    Ports: portsText(state),
  };
  return new GoStruct('*formatter.ContainerContext', fields, {
    Label: { params: ['string'], fn: (name) => labels[name] ?? '' },
  });
}

/** docker ps's PORTS: `0.0.0.0:8080->80/tcp` while it runs. */
function portsText(state: Container): string {
  if (!state.running) return '';
  return (state.networkSettings?.ports ?? [])
    .map((p) => `${p.hostIp ?? '0.0.0.0'}:${p.hostPort}->${p.containerPort}/${p.protocol}`)
    .join(', ');
}

/** docker's NetworkSettings: the container's addresses and ports while it runs. */
function networkSettings(state: Container) {
  const settings = state.running ? state.networkSettings : undefined;
  const ports: Record<string, { HostIp: string; HostPort: string }[] | null> = {};
  for (const p of state.ports ?? []) ports[`${p.containerPort}/${p.protocol}`] = null;
  for (const p of settings?.ports ?? []) {
    const key = `${p.containerPort}/${p.protocol}`;
    ports[key] = [...(ports[key] ?? []), { HostIp: p.hostIp ?? '0.0.0.0', HostPort: String(p.hostPort) }];
  }
  const networks = Object.fromEntries(
    Object.entries(settings?.networks ?? {}).map(([name, e]) => [
      name,
      {
        NetworkID: e.networkId,
        Gateway: e.gateway,
        IPAddress: e.ipAddress,
        IPPrefixLen: e.prefixLength,
        MacAddress: e.macAddress,
      },
    ]),
  );
  const main = Object.values(settings?.networks ?? {})[0];
  return {
    Ports: ports,
    SandboxKey: state.running && state.pid ? `/proc/${state.pid}/ns/net` : '',
    Gateway: main?.gateway ?? '',
    IPAddress: main?.ipAddress ?? '',
    IPPrefixLen: main?.prefixLength ?? 0,
    MacAddress: main?.macAddress ?? '',
    Networks: networks,
  };
}

/** docker's column headers for the fields of a `ps` row. */
const PS_HEADERS = {
  ID: 'CONTAINER ID',
  Image: 'IMAGE',
  Command: 'COMMAND',
  CreatedAt: 'CREATED AT',
  RunningFor: 'CREATED',
  Status: 'STATUS',
  State: 'STATE',
  Names: 'NAMES',
  Labels: 'LABELS',
  Ports: 'PORTS',
};

export async function ps(flags: PsFlags): Promise<number> {
  let last: number | undefined;
  if (flags.latest) last = 1;
  if (flags.last !== undefined) {
    if (!/^-?\d+$/.test(flags.last))
      throw new CliError(`invalid argument "${flags.last}" for "-n, --last" flag`);
    if (Number(flags.last) >= 0) last = Number(flags.last);
  }
  const keep = psFilter(flags.filter ?? []);
  // -n and -l look at every container whatever its state, and so do status and exit-code
  // filters (they name stopped ones), as docker's.
  const all =
    flags.all || last !== undefined || (flags.filter ?? []).some((f) => /^(status|exited)=/.test(f));
  let states = (await openEngine().list({ all })).filter(keep);
  if (last !== undefined)
    states = [...states].sort((a, b) => b.created.localeCompare(a.created)).slice(0, last);
  const now = Date.now();
  if (flags.quiet) {
    process.stdout.write(states.map((s) => `${flags.noTrunc ? s.id : s.id.slice(0, 12)}\n`).join(''));
    return 0;
  }
  const rows = states.map((s) => row(s, now, flags.noTrunc ?? false, s.paused));
  process.stdout.write(
    formatList(rows, {
      format: flags.format,
      headers: PS_HEADERS,
      defaultColumns: ['ID', 'Image', 'Command', 'RunningFor', 'Status', 'Ports', 'Names'],
      typeName: '*formatter.ContainerContext',
      methods: ['Label'],
    }),
  );
  return 0;
}

/** docker inspect's shape for a container. */
export function inspectState(state: Container) {
  const { spec, running, paused } = state;
  return {
    Id: state.id,
    Created: state.created,
    Path: state.command[0],
    Args: state.command.slice(1),
    State: {
      Status: running ? (paused ? 'paused' : 'running') : state.status,
      Running: running,
      Paused: running && paused,
      Restarting: state.status === 'restarting',
      OOMKilled: state.oomKilled ?? false,
      Dead: false,
      Pid: running ? state.pid : 0,
      ExitCode: state.exitCode ?? 0,
      Error: state.error && state.error !== 'stopped' ? state.error : '',
      StartedAt: state.started ?? '0001-01-01T00:00:00Z',
      FinishedAt: state.finished ?? '0001-01-01T00:00:00Z',
      ...(state.health ? { Health: state.health } : {}),
    },
    Image: state.image,
    Name: `/${state.name}`,
    RestartCount: state.restartCount ?? 0,
    LogPath: state.logPath,
    HostConfig: {
      AutoRemove: state.autoRemove,
      RestartPolicy: {
        Name: state.restartPolicy?.name ?? 'no',
        MaximumRetryCount: state.restartPolicy?.maximumRetryCount ?? 0,
      },
      LogConfig: { Type: 'json-file', Config: state.logOptions ?? {} },
      Memory: spec.linux?.resources?.memory?.limit ?? 0,
      NanoCpus: spec.linux?.resources?.cpu?.quota
        ? (spec.linux.resources.cpu.quota / (spec.linux.resources.cpu.period ?? 100000)) * 1e9
        : 0,
      PidsLimit: spec.linux?.resources?.pids?.limit ?? null,
      CapAdd: state.capAdd ?? null,
      CapDrop: state.capDrop ?? null,
      Privileged: state.privileged ?? false,
      SecurityOpt: securityOpt(state, spec),
      Devices: (state.devices ?? []).map((d) => ({
        PathOnHost: d.hostPath,
        PathInContainer: d.containerPath ?? d.hostPath,
        CgroupPermissions: d.permissions ?? 'rwm',
      })),
      DeviceCgroupRules: state.deviceCgroupRules ?? null,
      Ulimits: state.ulimits?.map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })) ?? null,
      Sysctls: spec.linux?.sysctl ?? null,
      OomScoreAdj: spec.process?.oomScoreAdj ?? 0,
      GroupAdd: state.groupAdd ?? null,
      Init: state.init ?? null,
      ShmSize: state.shmSize ?? 64 * 1024 * 1024,
      NetworkMode: state.networkMode ?? 'none',
      PortBindings: Object.fromEntries(
        (state.ports ?? []).map((p) => [
          `${p.containerPort}/${p.protocol}`,
          [{ HostIp: p.hostIp ?? '', HostPort: p.hostPort ? String(p.hostPort) : '' }],
        ]),
      ),
      Dns: state.networkOptions?.dns ?? [],
      DnsSearch: state.networkOptions?.dnsSearch ?? [],
      DnsOptions: state.networkOptions?.dnsOptions ?? [],
      ExtraHosts: state.networkOptions?.extraHosts?.map((h) => `${h.name}:${h.ip}`) ?? null,
    },
    NetworkSettings: networkSettings(state),
    GraphDriver: {
      Name: 'overlay2',
      Data: {
        LowerDir: state.overlay.lowerdirs.join(':'),
        UpperDir: state.overlay.upperdir,
        WorkDir: state.overlay.workdir,
      },
    },
    Config: {
      Hostname: spec.hostname ?? '',
      // As given (docker shows "nobody", not its ids; "" when the image's default, root, applies).
      User: state.user ?? '',
      Tty: spec.process?.terminal ?? false,
      OpenStdin: state.openStdin ?? false,
      Env: spec.process?.env ?? [],
      Cmd: state.command,
      Image: state.image,
      WorkingDir: spec.process?.cwd ?? '/',
      Labels: state.labels ?? {},
      ...(state.stopSignal !== undefined ? { StopSignal: state.stopSignal } : {}),
      ...(state.stopTimeout !== undefined ? { StopTimeout: state.stopTimeout } : {}),
      ...(state.healthcheck ? { Healthcheck: state.healthcheck } : {}),
    },
  };
}

/** docker's HostConfig.SecurityOpt: the options as given (the default profile is not listed). */
function securityOpt(state: Container, spec: Spec): string[] | null {
  const opts: string[] = [];
  if (spec.process?.noNewPrivileges) opts.push('no-new-privileges');
  if (state.seccomp) opts.push(`seccomp=${state.seccomp}`);
  return opts.length > 0 ? opts : null;
}

export async function inspect(references: string[], flags: { format?: string }): Promise<number> {
  const engine = openEngine();
  const found: unknown[] = [];
  let failed = false;
  for (const reference of references) {
    try {
      found.push(await inspectObject(engine, reference));
    } catch (error) {
      failed = true;
      process.stderr.write(`box: ${(error as Error).message}\n`);
    }
  }
  process.stdout.write(formatEach(found, flags.format));
  return failed ? 1 : 0;
}

/** docker's `inspect`: a container by that name or ID, else an image, else "No such object". */
async function inspectObject(engine: ReturnType<typeof openEngine>, reference: string): Promise<unknown> {
  try {
    return inspectState(await engine.inspect(reference));
  } catch (error) {
    if (!isRuntimeError(error, 'ENOCONTAINER')) throw error;
  }
  const { imageStore } = await import('../image-store.js');
  try {
    return (await imageStore(engine.root)).inspectImage(reference);
  } catch {
    throw new CliError(`No such object: ${reference}`, 1);
  }
}
