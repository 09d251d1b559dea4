/**
 * The command line: a table of commands (names, arguments, options) parsed with Node's own
 * `util.parseArgs`, and help made from the same table. No argument library is loaded: this
 * module is all every box command pays before its own work (see the start-up profile in
 * apps/e2e/bench/README.md).
 *
 * Rules, as docker's CLI: options go before a command's arguments; for commands that run a
 * command of their own (`run IMAGE CMD…`, `exec CONTAINER CMD…`) everything after the first
 * argument belongs to that command. Short options cluster (`-it`), `--name=value` and
 * `--name value` both work, repeatable options collect, `--no-trunc` style flags are flags of
 * their own.
 */
import { parseArgs } from 'node:util';

export interface OptionSpec {
  /** Long name without dashes, e.g. `memory-swap`; the value's key is its camelCase (`memorySwap`). */
  long: string;
  short?: string;
  /** Placeholder of the value (the option takes one), e.g. `bytes`. */
  value?: string;
  /** Repeatable: the values are collected in a list. */
  multiple?: boolean;
  default?: string;
  description: string;
}

export interface CommandSpec {
  name: string;
  description: string;
  /** Arguments: `<name>` required, `[name]` optional, `...` at the end for the rest. */
  args?: string[];
  options?: OptionSpec[];
  /** Everything after the first argument is the argument list of a command to run. */
  passThrough?: boolean;
  subcommands?: CommandSpec[];
  run?: (args: Args, options: Options) => Promise<number>;
}

export type Args = (string | string[] | undefined)[];
export type Options = Record<string, string | string[] | boolean | undefined>;

/** A usage error: one line, exit 125 (docker's). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const HELP: OptionSpec = { long: 'help', short: 'h', description: 'Print usage' };

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function optionLabel(option: OptionSpec): string {
  const names = option.short ? `-${option.short}, --${option.long}` : `    --${option.long}`;
  return option.value ? `${names} ${option.value}` : names;
}

/** `box run --help`. */
export function help(path: string[], command: CommandSpec): string {
  const args = (command.args ?? []).map((a) =>
    a
      .replace(/^<(.*)>$/, '$1')
      .replace(/^\[(.*)\]$/, '[$1]')
      .toUpperCase(),
  );
  const lines = [
    `Usage:  ${['box', ...path].join(' ')}${command.options?.length ? ' [OPTIONS]' : ''} ${args.join(' ')}`.trimEnd(),
    '',
    command.description,
  ];
  if (command.subcommands?.length) {
    lines.push('', 'Commands:');
    const width = Math.max(...command.subcommands.map((c) => c.name.length));
    for (const sub of command.subcommands) lines.push(`  ${sub.name.padEnd(width)}   ${sub.description}`);
  }
  const options = [...(command.options ?? []), HELP];
  lines.push('', 'Options:');
  const width = Math.max(...options.map((o) => optionLabel(o).length));
  for (const option of options) {
    const def = option.default === undefined ? '' : ` (default "${option.default}")`;
    lines.push(`  ${optionLabel(option).padEnd(width)}   ${option.description}${def}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Where a command's own arguments start: the first one that is neither an option nor an option's value. */
function firstArgument(argv: readonly string[], options: readonly OptionSpec[]): number {
  const takesValue = new Set<string>();
  for (const option of options) {
    if (!option.value) continue;
    takesValue.add(`--${option.long}`);
    if (option.short) takesValue.add(`-${option.short}`);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return i;
    if (!arg.startsWith('-') || arg === '-') return i;
    if (arg.startsWith('--')) {
      if (!arg.includes('=') && takesValue.has(arg)) i++;
      continue;
    }
    // A short cluster: the value is the next argument when its last letter takes one (-it, -e K=V, -dit).
    if (
      arg.length === 2
        ? takesValue.has(arg)
        : takesValue.has(`-${arg.slice(-1)}`) && ![...arg.slice(1, -1)].some((c) => takesValue.has(`-${c}`))
    )
      i++;
  }
  return argv.length;
}

/**
 * `--name VALUE` and `-e VALUE` as `--name=VALUE`: parseArgs refuses a separate value that
 * starts with a dash (`--name -bad`), which docker takes as the value (and then refuses it
 * with its own message).
 */
function withInlineValues(argv: readonly string[], options: readonly OptionSpec[]): string[] {
  const byName = new Map<string, OptionSpec>();
  for (const option of options) {
    byName.set(`--${option.long}`, option);
    if (option.short) byName.set(`-${option.short}`, option);
  }
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const option = byName.get(arg);
    if (option?.value && i + 1 < argv.length) {
      out.push(`--${option.long}=${argv[++i]}`);
      continue;
    }
    // A short cluster of flags ending in an option that takes a value: -ie VALUE. (In -udev the
    // value is attached: parseArgs reads it so.)
    const letters = /^-[a-zA-Z]{2,}$/.test(arg) ? [...arg.slice(1)] : [];
    const last = letters.length > 0 ? byName.get(`-${letters.at(-1)}`) : undefined;
    const flagsBefore = letters.slice(0, -1).every((c) => byName.get(`-${c}`)?.value === undefined);
    if (last?.value && flagsBefore && i + 1 < argv.length) {
      out.push(arg.slice(0, -1), `--${last.long}=${argv[++i]}`);
      continue;
    }
    out.push(arg);
  }
  return out;
}

export interface Parsed {
  path: string[];
  command: CommandSpec;
  args: Args;
  options: Options;
  help: boolean;
}

/** Finds the command and parses its options and arguments; throws UsageError for bad usage. */
export function parseCommandLine(argv: readonly string[], root: CommandSpec): Parsed {
  let command = root;
  const path: string[] = [];
  let rest = [...argv];
  while (command.subcommands && rest.length > 0 && !rest[0]!.startsWith('-')) {
    const sub = command.subcommands.find((c) => c.name === rest[0]);
    if (!sub) {
      const where = path.length ? `box ${path.join(' ')}` : 'box';
      throw new UsageError(`'${rest[0]}' is not a ${where} command. See '${where} --help'`);
    }
    path.push(sub.name);
    command = sub;
    rest = rest.slice(1);
  }
  const specs = [...(command.options ?? []), HELP];
  let tail: string[] = [];
  if (command.passThrough) {
    // [options] FIRST [command…]: FIRST (the image or container) is parsed with the options,
    // the command after it is passed on as it is. A `--` may stand before FIRST.
    const start = firstArgument(rest, specs);
    const dashes = rest[start] === '--';
    const first = rest[dashes ? start + 1 : start];
    tail = rest.slice(dashes ? start + 2 : start + 1);
    rest = first === undefined ? rest.slice(0, start) : [...rest.slice(0, start), '--', first];
  }
  // docker's --flag=true / --flag=false for a switch (--sig-proxy=false): parseArgs takes no value
  // for one, so the value is read here.
  const switches = new Map<string, boolean>();
  rest = rest.filter((arg, i) => {
    const m = /^--([\w-]+)=(true|false)$/.exec(arg);
    const spec = m && specs.find((o) => o.long === m[1] && !o.value);
    if (!spec || rest.slice(0, i).includes('--')) return true;
    switches.set(spec.long, m[2] === 'true');
    return false;
  });
  let values: Record<string, unknown>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: withInlineValues(rest, specs),
      allowPositionals: true,
      strict: true,
      options: Object.fromEntries(
        specs.map((o) => [
          o.long,
          {
            type: o.value ? 'string' : 'boolean',
            ...(o.short ? { short: o.short } : {}),
            ...(o.multiple ? { multiple: true } : {}),
          },
        ]),
      ) as never,
    }));
  } catch (error) {
    const message = (error as Error).message;
    const unknown = /Unknown option '([^']+)'/.exec(message);
    if (unknown) throw new UsageError(`unknown flag: ${unknown[1]}`);
    const missing = /Option '(?:-\w, )?(--[\w-]+) <value>' argument missing/.exec(message);
    if (missing) throw new UsageError(`flag needs an argument: ${missing[1]}`);
    throw new UsageError(message.split('\n')[0]!);
  }
  const options: Options = {};
  for (const spec of specs) {
    const value = (values[spec.long] ?? switches.get(spec.long)) as string | string[] | boolean | undefined;
    options[camel(spec.long)] = value ?? (spec.multiple ? [] : spec.default);
  }
  if (options.help) return { path, command, args: [], options, help: true };
  if (command.subcommands && !command.run) {
    if (positionals.length === 0) return { path, command, args: [], options, help: true };
  }
  positionals.push(...tail);
  const args: Args = [];
  const declared = command.args ?? [];
  declared.forEach((arg, i) => {
    const variadic = arg.endsWith('...>') || arg.endsWith('...]');
    const required = arg.startsWith('<');
    const name = arg.replace(/[<>[\].]/g, '');
    if (variadic) {
      const list = positionals.slice(i);
      if (required && list.length === 0)
        throw new UsageError(
          `"${[...path].join(' ')}" requires at least ${i + 1} argument${i ? 's' : ''} (${name})`,
        );
      args.push(list);
    } else {
      if (required && positionals[i] === undefined)
        throw new UsageError(`"${[...path].join(' ')}" requires the argument ${name.toUpperCase()}`);
      args.push(positionals[i]);
    }
  });
  const takes = declared.some((a) => a.includes('...')) ? Number.POSITIVE_INFINITY : declared.length;
  if (positionals.length > takes)
    throw new UsageError(
      `"${path.join(' ')}" takes ${declared.length === 0 ? 'no arguments' : `at most ${declared.length} argument${declared.length > 1 ? 's' : ''}`}: ${positionals.slice(takes).join(' ')}`,
    );
  return { path, command, args, options, help: false };
}
