/** `box ps` and `box inspect`: containers as docker shows them. */
import type { Container } from '@box/runtime';
import { openEngine } from '../engine.js';
import { CliError } from '../errors.js';
import { humanDuration, renderTemplate, table } from '../format.js';

export interface PsFlags {
  all?: boolean;
  quiet?: boolean;
  noTrunc?: boolean;
  format?: string;
}

function statusText(state: Container, now: number, paused: boolean): string {
  if (state.running) {
    return `Up ${humanDuration(now - Date.parse(state.started ?? state.created))}${paused ? ' (Paused)' : ''}`;
  }
  if (state.status === 'restarting') {
    return `Restarting (${state.exitCode ?? 0}) ${humanDuration(now - Date.parse(state.finished ?? state.created))} ago`;
  }
  if (state.status === 'exited') {
    return `Exited (${state.exitCode ?? 0}) ${humanDuration(now - Date.parse(state.finished ?? state.created))} ago`;
  }
  return 'Created';
}

function row(state: Container, now: number, noTrunc: boolean, paused = false) {
  const command = JSON.stringify(state.command.join(' '));
  return {
    ID: noTrunc ? state.id : state.id.slice(0, 12),
    Image: state.image,
    Command: noTrunc || command.length <= 22 ? command : `${command.slice(0, 19)}…"`,
    CreatedAt: state.created,
    RunningFor: `${humanDuration(now - Date.parse(state.created))} ago`,
    Status: statusText(state, now, paused),
    State: state.running ? (paused ? 'paused' : 'running') : state.status,
    Names: state.name,
    Ports: '',
  };
}

export async function ps(flags: PsFlags): Promise<number> {
  const states = await openEngine().list({ all: flags.all });
  const now = Date.now();
  if (flags.quiet) {
    process.stdout.write(states.map((s) => `${flags.noTrunc ? s.id : s.id.slice(0, 12)}\n`).join(''));
    return 0;
  }
  const rows = states.map((s) => row(s, now, flags.noTrunc ?? false, s.paused));
  if (flags.format === 'json' || flags.format === '{{json .}}') {
    process.stdout.write(rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
  } else if (flags.format !== undefined && flags.format !== 'table') {
    try {
      // Checked even when there is nothing to list.
      renderTemplate(
        flags.format,
        row(
          {
            id: '0'.repeat(64),
            name: '',
            image: '',
            command: [],
            created: new Date(now).toISOString(),
            status: 'created',
            autoRemove: false,
            cgroupsPath: '',
            overlay: { lowerdirs: [], upperdir: '', workdir: '' },
            running: false,
            paused: false,
            spec: { ociVersion: '1.0.2' } as Container['spec'],
            logPath: '',
          },
          now,
          false,
        ),
      );
      process.stdout.write(rows.map((r) => `${renderTemplate(flags.format!, r)}\n`).join(''));
    } catch (error) {
      throw new CliError(`invalid --format: ${(error as Error).message}`);
    }
  } else {
    process.stdout.write(
      table([
        ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'],
        ...rows.map((r) => [r.ID, r.Image, r.Command, r.RunningFor, r.Status, r.Ports, r.Names]),
      ]),
    );
  }
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
    },
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
      User: `${spec.process?.user.uid ?? 0}:${spec.process?.user.gid ?? 0}`,
      Tty: spec.process?.terminal ?? false,
      Env: spec.process?.env ?? [],
      Cmd: state.command,
      Image: state.image,
      WorkingDir: spec.process?.cwd ?? '/',
    },
  };
}

export async function inspect(references: string[], flags: { format?: string }): Promise<number> {
  const engine = openEngine();
  const found: ReturnType<typeof inspectState>[] = [];
  let failed = false;
  for (const reference of references) {
    try {
      found.push(inspectState(await engine.inspect(reference)));
    } catch (error) {
      failed = true;
      process.stderr.write(`box: ${(error as Error).message}\n`);
    }
  }
  if (flags.format) {
    for (const item of found) {
      const value = flags.format.replace(
        /\{\{\s*(json\s+)?((?:\.\w+)+)\s*\}\}/g,
        (_, json: string | undefined, path: string) => {
          let v: unknown = item;
          for (const key of path.slice(1).split('.')) v = (v as Record<string, unknown> | undefined)?.[key];
          return json ? JSON.stringify(v) : String(v ?? '');
        },
      );
      process.stdout.write(`${value}\n`);
    }
  } else process.stdout.write(`${JSON.stringify(found, null, 4)}\n`);
  return failed ? 1 : 0;
}
