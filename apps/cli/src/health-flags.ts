/**
 * docker's health-check flags (`--health-cmd`, `--health-interval`, `--health-timeout`,
 * `--health-start-period`, `--health-start-interval`, `--health-retries`, `--no-healthcheck`)
 * → the engine's Healthcheck (durations in nanoseconds, as docker keeps them), with docker's
 * checks and messages.
 */
import { parseGoDuration as goDuration, type Healthcheck } from '@box/runtime';
import { CliError } from './errors.js';

export interface HealthFlags {
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthStartPeriod?: string;
  healthStartInterval?: string;
  healthRetries?: string;
  noHealthcheck?: boolean;
}

const UNITS = new Set(['ns', 'us', 'µs', 'μs', 'ms', 's', 'm', 'h']);

/** Go's time.ParseDuration (what docker's flags use, @box/runtime's reader), with Go's errors. */
export function parseGoDuration(text: string): number {
  const ns = goDuration(text);
  if (ns !== undefined) return ns;
  const unit = /^[-+]?[\d.]+([^\d.]+)/.exec(text)?.[1];
  if (unit !== undefined && !UNITS.has(unit))
    throw new Error(`time: unknown unit "${unit}" in duration "${text}"`);
  if (/\d$/.test(text)) throw new Error(`time: missing unit in duration "${text}"`);
  throw new Error(`time: invalid duration "${text}"`);
}

function duration(flag: string, field: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  let ns: number;
  try {
    ns = parseGoDuration(value);
  } catch (error) {
    throw new CliError(`invalid argument "${value}" for "--${flag}" flag: ${(error as Error).message}`);
  }
  if (ns < 0) throw new CliError(`--${flag} cannot be negative`);
  // The engine's check (docker's daemon), 0 meaning the default.
  if (ns !== 0 && ns < 1e6) throw new CliError(`${field} in Healthcheck cannot be less than 1ms`);
  return ns;
}

/** The flags as a Healthcheck (only what was given: the engine merges it over the image's). */
export function parseHealthFlags(flags: HealthFlags): { healthcheck?: Healthcheck } {
  const interval = duration('health-interval', 'Interval', flags.healthInterval);
  const timeout = duration('health-timeout', 'Timeout', flags.healthTimeout);
  const startPeriod = duration('health-start-period', 'StartPeriod', flags.healthStartPeriod);
  const startInterval = duration('health-start-interval', 'StartInterval', flags.healthStartInterval);
  let retries: number | undefined;
  if (flags.healthRetries !== undefined) {
    if (!/^-?\d+$/.test(flags.healthRetries))
      throw new CliError(
        `invalid argument "${flags.healthRetries}" for "--health-retries" flag: strconv.ParseInt: parsing "${flags.healthRetries}": invalid syntax`,
      );
    retries = Number(flags.healthRetries);
    if (retries < 0) throw new CliError('--health-retries cannot be negative');
  }
  const any =
    flags.healthCmd !== undefined ||
    interval !== undefined ||
    timeout !== undefined ||
    startPeriod !== undefined ||
    startInterval !== undefined ||
    retries !== undefined;
  if (flags.noHealthcheck) {
    if (any) throw new CliError('--no-healthcheck conflicts with --health-* options');
    return { healthcheck: { Test: ['NONE'] } };
  }
  if (!any) return {};
  const check: Healthcheck = {};
  if (flags.healthCmd !== undefined)
    check.Test = flags.healthCmd === '' ? [] : ['CMD-SHELL', flags.healthCmd];
  if (interval !== undefined) check.Interval = interval;
  if (timeout !== undefined) check.Timeout = timeout;
  if (startPeriod !== undefined) check.StartPeriod = startPeriod;
  if (startInterval !== undefined) check.StartInterval = startInterval;
  if (retries !== undefined) check.Retries = retries;
  return { healthcheck: check };
}
