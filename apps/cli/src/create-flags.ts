/**
 * `run` and `create` flags → the engine's CreateOptions, checked with docker's rules and
 * messages: environment (`-e`, a bare NAME copies this shell's value), restart policy, log
 * options, resources (resources.ts), mounts (mount-flags.ts), security and process switches
 * (security-flags.ts), networks and ports (network-flags.ts), terminal size.
 */
import { readFileSync } from 'node:fs';
import type { AttachedStreams, CreateOptions, RestartPolicy } from '@box/runtime';
import { CliError } from './errors.js';
import { type HealthFlags, parseHealthFlags } from './health-flags.js';
import { type MountFlags, parseMountFlags } from './mount-flags.js';
import { type NetworkFlags, parseNetworkFlags } from './network-flags.js';
import { parseResourceFlags, type ResourceFlags } from './resources.js';
import { parseSecurityFlags, type SecurityFlags } from './security-flags.js';
import { currentWindowSize } from './terminal.js';

export interface CreateFlags extends ResourceFlags, MountFlags, SecurityFlags, NetworkFlags, HealthFlags {
  rm?: boolean;
  /** --pull: missing (default), always, never. */
  pull?: string;
  platform?: string;
  interactive?: boolean;
  /** -a/--attach: the streams to attach (stdin, stdout, stderr); all but stdin when not given. */
  attach?: string[];
  /** run's -d: no stream attached. */
  detach?: boolean;
  tty?: boolean;
  env: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  pid?: string;
  uts?: string;
  ipc?: string;
  name?: string;
  userns?: boolean;
  restart?: string;
  logOpt?: string[];
  capAdd?: string[];
  capDrop?: string[];
  envFile?: string[];
  entrypoint?: string;
  label?: string[];
  labelFile?: string[];
  stopSignal?: string;
  stopTimeout?: string;
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

/**
 * docker's KEY=VALUE files (`--env-file`, `--label-file`): a line is KEY=VALUE (the value taken
 * as it is), or a bare KEY; blank lines and lines starting with `#` are skipped. `bare` says
 * what a bare KEY becomes (undefined: left out).
 */
function readKeyValueFiles(paths: readonly string[], bare: (name: string) => string | undefined): string[] {
  const out: string[] = [];
  for (const path of paths) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new CliError(
        `open ${path}: ${code === 'ENOENT' ? 'no such file or directory' : code === 'EISDIR' ? 'is a directory' : (error as Error).message}`,
      );
    }
    for (const raw of text.split(/\r?\n/)) {
      const line = raw.trimStart();
      if (line === '' || line.startsWith('#')) continue;
      const eq = line.indexOf('=');
      const name = eq === -1 ? line.trimEnd() : line.slice(0, eq);
      if (name === '') throw new CliError(`invalid environment variable: ${line}`);
      if (/\s/.test(name)) throw new CliError(`variable '${name}' contains whitespaces`);
      if (eq !== -1) out.push(line);
      else {
        const entry = bare(name);
        if (entry !== undefined) out.push(entry);
      }
    }
  }
  return out;
}

/** docker's `--env-file`: a bare KEY copies the host's value when set there. */
export function parseEnvFiles(paths: readonly string[] = []): string[] {
  return readKeyValueFiles(paths, (name) =>
    process.env[name] !== undefined ? `${name}=${process.env[name]}` : undefined,
  );
}

/**
 * docker's `--label-file` then `--label` (a later one for a key wins): K=V, or a bare K for an
 * empty value. A key empty or with a space in it is refused as docker's opts.ValidateLabel does.
 */
export function parseLabels(
  values: readonly string[] = [],
  files: readonly string[] = [],
): Record<string, string> {
  for (const value of values) {
    const eq = value.indexOf('=');
    const key = (eq === -1 ? value : value.slice(0, eq)).replace(/^[ \t]+/, '');
    const problem =
      key === ''
        ? `invalid label '${value}': empty name`
        : /[ \t]/.test(key)
          ? `label '${key}' contains whitespaces`
          : '';
    if (problem) throw new CliError(`invalid argument "${value}" for "-l, --label" flag: ${problem}`);
  }
  const labels: Record<string, string> = {};
  for (const entry of [...readKeyValueFiles(files, (name) => name), ...values]) {
    const eq = entry.indexOf('=');
    labels[eq === -1 ? entry : entry.slice(0, eq)] = eq === -1 ? '' : entry.slice(eq + 1);
  }
  return labels;
}

/** docker's --stop-timeout: an int (negative: stop waits for ever). */
export function parseStopTimeout(value: string): number {
  if (!/^[+-]?\d+$/.test(value.trim()))
    throw new CliError(
      `invalid argument "${value}" for "--stop-timeout" flag: strconv.ParseInt: parsing "${value}": invalid syntax`,
    );
  return Number(value);
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

/**
 * docker's -a/--attach: the streams named (any case), stdin also with -i; without -a, stdout and
 * stderr (and stdin with -i). A detached run attaches nothing, and refuses -a.
 */
export function attachedStreams(
  flags: Pick<CreateFlags, 'attach' | 'detach' | 'interactive'>,
): AttachedStreams {
  const named = new Set<string>();
  for (const value of flags.attach ?? []) {
    const stream = value.toLowerCase();
    if (stream !== 'stdin' && stream !== 'stdout' && stream !== 'stderr')
      throw new CliError(
        `invalid argument "${value}" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR`,
      );
    named.add(stream);
  }
  if (flags.detach) {
    if (named.size > 0) throw new CliError('Conflicting options: -a and -d');
    return { stdin: false, stdout: false, stderr: false };
  }
  const all = named.size === 0;
  return {
    stdin: named.has('stdin') || (flags.interactive ?? false),
    stdout: all || named.has('stdout'),
    stderr: all || named.has('stderr'),
  };
}

/** Every flag checked (nothing is made before), as the engine's create options. */
export function createOptions(image: string, command: string[], flags: CreateFlags): CreateOptions {
  const size = flags.tty ? currentWindowSize() : undefined;
  return {
    image,
    command,
    name: flags.name,
    // As docker: the files first, then -e (a later entry for a name wins).
    env: [...parseEnvFiles(flags.envFile), ...parseEnvFlags(flags.env)],
    // docker's --entrypoint: one program (not split); "" clears the image's.
    ...(flags.entrypoint !== undefined
      ? { entrypoint: flags.entrypoint === '' ? [] : [flags.entrypoint] }
      : {}),
    labels: parseLabels(flags.label, flags.labelFile),
    ...(flags.stopSignal !== undefined ? { stopSignal: flags.stopSignal } : {}),
    ...(flags.stopTimeout !== undefined ? { stopTimeout: parseStopTimeout(flags.stopTimeout) } : {}),
    workdir: flags.workdir,
    user: flags.user,
    hostname: flags.hostname,
    // Checked by the engine, which names what it takes.
    ...(flags.pid !== undefined ? { pid: flags.pid as CreateOptions['pid'] } : {}),
    ...(flags.uts !== undefined ? { uts: flags.uts as CreateOptions['uts'] } : {}),
    ...(flags.ipc !== undefined ? { ipc: flags.ipc as CreateOptions['ipc'] } : {}),
    tty: flags.tty ?? false,
    openStdin: flags.interactive ?? false,
    attach: attachedStreams(flags),
    consoleSize: size && { height: size.rows, width: size.cols },
    userns: flags.userns ?? false,
    resources: parseResourceFlags(flags),
    mounts: parseMountFlags(flags),
    readonlyRootfs: flags.readOnly ?? false,
    capAdd: flags.capAdd,
    capDrop: flags.capDrop,
    ...parseSecurityFlags(flags),
    autoRemove: flags.rm ?? false,
    restartPolicy: parseRestartPolicy(flags.restart),
    logOptions: parseLogOptions(flags.logOpt),
    ...parseHealthFlags(flags),
    ...parseNetworkFlags(flags),
  };
}
