/**
 * `box-runtime`: runc's command line over @box/runtime's OCI runtime, for podman
 * (`--runtime`), containerd's runc shim (`--runc-binary`, a RuntimeClass's BinaryName) and
 * Kubernetes. Flags in, one call into the library, runc's output and exit codes out: 1 for an
 * error (one line on stderr, and a record in `--log`), the command's status for `run` and `exec`
 * in the foreground.
 */
import { readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { LinuxResources } from '@box/runtime';
import { type FlagSpec, type Flags, parseFlags } from './args.js';
import { type LogOptions, logLine } from './log.js';
import { writeAll } from './output.js';

declare const BOX_VERSION: string;

const GLOBAL: FlagSpec[] = [
  { names: ['root'], value: true },
  { names: ['log'], value: true },
  { names: ['log-format'], value: true },
  { names: ['debug'] },
  { names: ['systemd-cgroup'] },
  { names: ['rootless'], value: true },
  { names: ['criu'], value: true },
  { names: ['version', 'v'] },
  { names: ['help', 'h'] },
];

const CREATE: FlagSpec[] = [
  { names: ['bundle', 'b'], value: true },
  { names: ['console-socket'], value: true },
  { names: ['pid-file'], value: true },
  { names: ['no-pivot'] },
  { names: ['no-new-keyring'] },
  { names: ['preserve-fds'], value: true },
];

const COMMANDS: Record<string, FlagSpec[]> = {
  create: CREATE,
  run: [...CREATE, { names: ['detach', 'd'] }, { names: ['keep'] }],
  start: [],
  state: [],
  kill: [{ names: ['all', 'a'] }],
  delete: [{ names: ['force', 'f'] }],
  exec: [
    { names: ['process', 'p'], value: true },
    { names: ['console-socket'], value: true },
    { names: ['pid-file'], value: true },
    { names: ['detach', 'd'] },
    { names: ['tty', 't'] },
    { names: ['cwd'], value: true },
    { names: ['env', 'e'], value: true, multiple: true },
    { names: ['user', 'u'], value: true },
    { names: ['additional-gids', 'g'], value: true, multiple: true },
    { names: ['cap', 'c'], value: true, multiple: true },
    { names: ['no-new-privs'] },
    { names: ['preserve-fds'], value: true },
  ],
  ps: [{ names: ['format', 'f'], value: true }],
  pause: [],
  resume: [],
  update: [{ names: ['resources', 'r'], value: true }],
  events: [{ names: ['stats'] }, { names: ['interval'], value: true }],
  features: [],
  spec: [{ names: ['bundle', 'b'], value: true }, { names: ['rootless'] }],
  list: [{ names: ['format', 'f'], value: true }, { names: ['quiet', 'q'] }],
};

class UsageError extends Error {}

function id(rest: string[], command: string): string {
  const [value] = rest;
  if (!value) throw new UsageError(`"${command}" requires a container id`);
  return value;
}

function signalNumber(value = 'SIGTERM'): number {
  if (/^\d+$/.test(value)) return Number(value);
  const name = value.toUpperCase().startsWith('SIG') ? value.toUpperCase() : `SIG${value.toUpperCase()}`;
  const n = osConstants.signals[name as NodeJS.Signals];
  if (n === undefined) throw new UsageError(`unknown signal "${value}"`);
  return n;
}

function print(value: unknown): void {
  writeAll(1, `${JSON.stringify(value, null, 2)}\n`);
}

/** A user flag `uid[:gid]` (runc takes numbers only). */
function userOf(value: string): { uid: number; gid: number } {
  const match = /^(\d+)(?::(\d+))?$/.exec(value);
  if (!match) throw new UsageError(`invalid --user "${value}": expected UID[:GID]`);
  return { uid: Number(match[1]), gid: Number(match[2] ?? 0) };
}

/** runc's table: `ps ARGS` (default -ef), its header and the lines of the container's pids. */
async function psTable(pids: readonly number[], psArgs: string[]): Promise<string> {
  const { spawnSync } = await import('node:child_process');
  const ps = spawnSync('ps', psArgs, { encoding: 'utf8' });
  if (ps.error || ps.status !== 0)
    throw new Error(`ps ${psArgs.join(' ')}: ${ps.error?.message ?? ps.stderr.trim()}`);
  const [header = '', ...lines] = ps.stdout.split('\n');
  const column = header.trim().split(/\s+/).indexOf('PID');
  if (column === -1) throw new Error(`ps ${psArgs.join(' ')}: no PID column in its output`);
  const wanted = new Set(pids.map(String));
  const mine = lines.filter((line) => wanted.has(line.trim().split(/\s+/)[column] ?? ''));
  return `${[header, ...mine].join('\n')}\n`;
}

async function main(argv: string[], log: LogOptions): Promise<number> {
  const { flags: global, rest } = parseFlags(argv, GLOBAL);
  log.path = global.log as string | undefined;
  if (global['log-format'] !== undefined) {
    if (global['log-format'] !== 'text' && global['log-format'] !== 'json')
      throw new UsageError(`invalid log-format: ${global['log-format']}`);
    log.format = global['log-format'];
  }
  if (global.version) {
    writeAll(1, `box-runtime version ${BOX_VERSION}\nspec: 1.2.0\n`);
    return 0;
  }
  const [command, ...more] = rest;
  if (!command || global.help) {
    writeAll(
      1,
      `usage: box-runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND [OPTIONS] ID\ncommands: ${Object.keys(COMMANDS).join(', ')}\n`,
    );
    return command || global.help ? 0 : 1;
  }
  const specs = COMMANDS[command];
  if (!specs) throw new UsageError(`No help topic for '${command}'`);
  if (global['systemd-cgroup'])
    throw new UsageError(
      '--systemd-cgroup is not supported: box-runtime manages cgroupfs paths (use cgroupfs in the caller)',
    );
  const { flags, rest: args } = parseFlags(more, specs);
  const { OciRuntime, features, specTemplate } = await import('@box/runtime/oci');
  const runtime = new OciRuntime((global.root as string | undefined) ?? '/run/box-runtime');
  const createOptions = (f: Flags) => ({
    bundle: (f.bundle as string | undefined) ?? process.cwd(),
    pidFile: f['pid-file'] as string | undefined,
    consoleSocket: f['console-socket'] as string | undefined,
    preserveFds: f['preserve-fds'] === undefined ? 0 : Number(f['preserve-fds']),
  });
  switch (command) {
    case 'create':
      await runtime.create(id(args, command), createOptions(flags));
      return 0;
    case 'start':
      await runtime.start(id(args, command));
      return 0;
    case 'run': {
      const name = id(args, command);
      const { exited } = await runtime.run(name, { ...createOptions(flags), detach: flags.detach === true });
      if (flags.detach) return 0;
      const code = await exited;
      if (!flags.keep) await runtime.delete(name, { force: true });
      return code;
    }
    case 'state':
      print(await runtime.state(id(args, command)));
      return 0;
    case 'kill':
      await runtime.kill(id(args, command), signalNumber(args[1]), { all: flags.all === true });
      return 0;
    case 'delete':
      await runtime.delete(id(args, command), { force: flags.force === true });
      return 0;
    case 'pause':
      await runtime.pause(id(args, command));
      return 0;
    case 'resume':
      await runtime.resume(id(args, command));
      return 0;
    case 'ps': {
      const pids = await runtime.ps(id(args, command));
      if (flags.format === 'json') writeAll(1, `${JSON.stringify(pids)}\n`);
      else if (flags.format !== undefined && flags.format !== 'table')
        throw new UsageError(`invalid format option: ${flags.format}`);
      else writeAll(1, await psTable(pids, args.length > 1 ? args.slice(1) : ['-ef']));
      return 0;
    }
    case 'list': {
      const states = await runtime.list();
      if (flags.quiet) writeAll(1, states.map((s) => `${s.id}\n`).join(''));
      else if (flags.format === 'json') writeAll(1, `${JSON.stringify(states)}\n`);
      else {
        writeAll(1, 'ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n');
        for (const s of states)
          writeAll(1, `${s.id}\t${s.pid}\t${s.status}\t${s.bundle}\t${s.created}\troot\n`);
      }
      return 0;
    }
    case 'update': {
      const source = flags.resources as string | undefined;
      if (!source) throw new UsageError('update needs --resources FILE or -');
      const resources = JSON.parse(readFileSync(source === '-' ? 0 : source, 'utf8')) as LinuxResources;
      await runtime.update(id(args, command), resources);
      return 0;
    }
    case 'events': {
      const name = id(args, command);
      const stats = async () => ({ type: 'stats', id: name, data: await runtime.stats(name) });
      if (flags.stats) {
        writeAll(1, `${JSON.stringify(await stats())}\n`);
        return 0;
      }
      const interval = Number.parseFloat(String(flags.interval ?? '5')) * 1000;
      for (;;) {
        if ((await runtime.state(name)).status === 'stopped') return 0;
        writeAll(1, `${JSON.stringify(await stats())}\n`);
        await new Promise((r) => setTimeout(r, interval));
      }
    }
    case 'features':
      print(await features());
      return 0;
    case 'spec': {
      const { existsSync, writeFileSync } = await import('node:fs');
      const { join } = await import('node:path');
      const path = join((flags.bundle as string | undefined) ?? '.', 'config.json');
      if (existsSync(path)) throw new UsageError('File config.json exists. Remove it first');
      writeFileSync(path, `${JSON.stringify(await specTemplate(), null, '\t')}\n`);
      return 0;
    }
    case 'exec': {
      const name = id(args, command);
      let proc: { args: string[]; [key: string]: unknown };
      if (flags.process) {
        proc = JSON.parse(readFileSync(flags.process as string, 'utf8'));
      } else {
        if (args.length < 2) throw new UsageError('exec needs a command to run');
        proc = { args: args.slice(1) };
        if (flags.tty) proc.terminal = true;
        if (flags.cwd) proc.cwd = flags.cwd;
        if (flags.user)
          proc.user = {
            ...userOf(flags.user as string),
            additionalGids: ((flags['additional-gids'] as string[]) ?? []).map(Number),
          };
        if (flags['no-new-privs']) proc.noNewPrivileges = true;
      }
      const child = await runtime.exec(name, {
        process: proc as never,
        env: flags.env as string[] | undefined,
        capabilities: (flags.cap as string[] | undefined)?.map((c) => c.toUpperCase()),
        preserveFds: flags['preserve-fds'] === undefined ? 0 : Number(flags['preserve-fds']),
        consoleSocket: flags['console-socket'] as string | undefined,
        pidFile: flags['pid-file'] as string | undefined,
        detach: flags.detach === true,
      });
      if (flags.detach) return 0;
      const status = await child.exited;
      return status.exitCode ?? 128 + (status.signal ?? 0);
    }
  }
  return 1;
}

const log: LogOptions = { format: 'text' };
// Not a top-level await: this entry is loaded as CommonJS (see tsup.config.ts).
main(process.argv.slice(2), log).then(
  // Explicitly: a created container's process is still watched by this one.
  (code) => process.exit(code),
  (error: unknown) => {
    logLine(log, 'error', (error as Error).message);
    process.exit(1);
  },
);
