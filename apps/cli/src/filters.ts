/**
 * docker's --filter KEY=VALUE lists (`ps`, `images`): values grouped by key, the keys a command
 * accepts checked as docker's daemon does (filters.Args.Validate), and the matchers shared by
 * several commands (labels, path.Match patterns).
 */
import { CliError } from './errors.js';

/** The values of each key, in the order given. */
export type Filters = Map<string, string[]>;

export function parseFilters(values: readonly string[] = [], accepted: readonly string[]): Filters {
  const filters: Filters = new Map();
  for (const value of values) {
    if (value === '') continue;
    const eq = value.indexOf('=');
    if (eq === -1) throw new CliError('bad format of filter (expected name=value)');
    // As docker's CLI: the key trimmed and lower-cased, the value trimmed.
    const key = value.slice(0, eq).trim().toLowerCase();
    filters.set(key, [...(filters.get(key) ?? []), value.slice(eq + 1).trim()]);
  }
  for (const key of filters.keys())
    if (!accepted.includes(key)) throw new CliError(`invalid filter '${key}'`);
  return filters;
}

/**
 * docker's label filters (filters.MatchKVList): `K` asks for the label, `K=V` for that value
 * too, and every one given must match.
 */
export function matchLabels(labels: Record<string, string> | undefined, wanted: readonly string[]): boolean {
  return wanted.every((filter) => {
    const eq = filter.indexOf('=');
    const key = eq === -1 ? filter : filter.slice(0, eq);
    if (!labels || !Object.hasOwn(labels, key)) return false;
    return eq === -1 || labels[key] === filter.slice(eq + 1);
  });
}

/**
 * Go's path.Match: `*` is any run of characters but `/`, `?` one of them, `[...]` a class
 * (`^` or `!` negates it, `a-z` a range), `\` quotes the next character. A malformed pattern
 * throws, as Go's ErrBadPattern.
 */
export function pathMatch(pattern: string, name: string): boolean {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else if (c === '\\') {
      if (i + 1 >= pattern.length) throw new CliError('syntax error in pattern');
      source += escapeRegExp(pattern[++i]!);
    } else if (c === '[') {
      let j = i + 1;
      let negate = false;
      if (pattern[j] === '^' || pattern[j] === '!') {
        negate = true;
        j++;
      }
      let cls = '';
      let first = true;
      for (;;) {
        if (j >= pattern.length) throw new CliError('syntax error in pattern');
        if (pattern[j] === ']' && !first) break;
        first = false;
        let lo = pattern[j]!;
        if (lo === '\\') {
          if (++j >= pattern.length) throw new CliError('syntax error in pattern');
          lo = pattern[j]!;
        }
        if (lo === ']' || lo === '-') throw new CliError('syntax error in pattern');
        j++;
        let hi = lo;
        if (pattern[j] === '-') {
          hi = pattern[++j] ?? '';
          if (hi === '\\') hi = pattern[++j] ?? '';
          if (hi === '' || hi === ']') throw new CliError('syntax error in pattern');
          j++;
        }
        cls += lo === hi ? escapeClass(lo) : `${escapeClass(lo)}-${escapeClass(hi)}`;
      }
      source += negate ? `[^${cls}]` : `[${cls}]`;
      i = j;
    } else source += escapeRegExp(c);
  }
  return new RegExp(`^${source}$`, 's').test(name);
}

function escapeRegExp(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

function escapeClass(c: string): string {
  return c.replace(/[\]\\^-]/g, '\\$&');
}
