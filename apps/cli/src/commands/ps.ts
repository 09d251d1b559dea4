/** `box ps` and `box inspect`: containers as docker shows them. */
import type { Container } from '@box/runtime';
import { openEngine } from '../engine.js';
import { CliError, isRuntimeError } from '../errors.js';
import { matchLabels, parseFilters } from '../filters.js';
import { containerSize, formatEach, formatList, GoStruct, humanDuration } from '../output/index.js';
import { containerValue, imageValue } from '../output/inspect.js';

/** Each image's size (its layers), for the virtual size of the containers made from it. */
async function imageSizesById(): Promise<Map<string, number>> {
  // Loaded for -s alone: the image store is most of what `box ps` would load otherwise.
  const { imageStore } = await import('../image-store.js');
  const store = await imageStore(openEngine().root);
  return new Map(store.listImages().map((image) => [image.id, image.size]));
}

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
  /** -s: the SIZE column (writable layer, and virtual: with the image). */
  size?: boolean;
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

function row(state: Container, now: number, noTrunc: boolean, paused = false, imageSize = 0): GoStruct {
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
    Size: state.sizeRw === undefined ? '0B' : containerSize(state.sizeRw, state.sizeRw + imageSize),
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
  Size: 'SIZE',
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
  // As docker: sizes are measured for -s, and for a format that shows them (json shows every field).
  const format = flags.format ?? '';
  const size = !flags.quiet && (flags.size === true || format === 'json' || /\.Size\b/.test(format));
  let states = (await openEngine().list({ all, size })).filter(keep);
  if (last !== undefined)
    states = [...states].sort((a, b) => b.created.localeCompare(a.created)).slice(0, last);
  const now = Date.now();
  if (flags.quiet) {
    process.stdout.write(states.map((s) => `${flags.noTrunc ? s.id : s.id.slice(0, 12)}\n`).join(''));
    return 0;
  }
  const imageSizes = size ? await imageSizesById() : new Map<string, number>();
  const rows = states.map((s) =>
    row(s, now, flags.noTrunc ?? false, s.paused, s.imageId ? (imageSizes.get(s.imageId) ?? 0) : 0),
  );
  process.stdout.write(
    formatList(rows, {
      format: flags.format,
      headers: PS_HEADERS,
      defaultColumns: [
        'ID',
        'Image',
        'Command',
        'RunningFor',
        'Status',
        'Ports',
        'Names',
        ...(flags.size ? ['Size'] : []),
      ],
      typeName: '*formatter.ContainerContext',
      methods: ['Label'],
    }),
  );
  return 0;
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
    return containerValue(await engine.inspectContainer(reference));
  } catch (error) {
    if (!isRuntimeError(error, 'ENOCONTAINER')) throw error;
  }
  const { imageStore } = await import('../image-store.js');
  try {
    return imageValue((await imageStore(engine.root)).inspectImage(reference));
  } catch {
    throw new CliError(`No such object: ${reference}`, 1);
  }
}
