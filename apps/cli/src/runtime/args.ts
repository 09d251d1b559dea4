/**
 * runc's command line (urfave/cli over Go's flag package): global options before the command,
 * the command's options before its arguments, `--name value`, `--name=value`, and Go's single
 * dash for long names (`-bundle x`), which containerd's shim and older callers use.
 */
export interface FlagSpec {
  /** Names without dashes: the long one first, then aliases (`bundle`, `b`). */
  names: string[];
  /** Takes a value (else a boolean). */
  value?: boolean;
  /** May repeat: the values are collected. */
  multiple?: boolean;
}

export type Flags = Record<string, string | string[] | boolean | undefined>;

export class ArgsError extends Error {
  override readonly name = 'ArgsError';
}

/** Parses flags from the front of `argv` until the first non-flag (or `--`); returns the rest. */
export function parseFlags(
  argv: readonly string[],
  specs: readonly FlagSpec[],
): { flags: Flags; rest: string[] } {
  const flags: Flags = {};
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq === -1 ? body : body.slice(0, eq);
    const spec = specs.find((s) => s.names.includes(name));
    if (!spec) throw new ArgsError(`flag provided but not defined: -${name}`);
    const key = spec.names[0]!;
    let value: string | boolean;
    if (spec.value) {
      if (eq !== -1) value = body.slice(eq + 1);
      else {
        if (i + 1 >= argv.length) throw new ArgsError(`flag needs an argument: -${name}`);
        value = argv[++i]!;
      }
    } else {
      value = eq === -1 ? true : !/^(false|0)$/.test(body.slice(eq + 1));
    }
    if (spec.multiple) flags[key] = [...((flags[key] as string[] | undefined) ?? []), value as string];
    else flags[key] = value;
  }
  return { flags, rest: argv.slice(i) };
}
