/**
 * docker's time arguments (`--since`, `--until`), read as docker's client reads them
 * (api/types/time GetTimestamp): a Go duration back from now (`10m`, `1h30m`), an RFC 3339 time
 * or a shorter form of one (`2024-01-02`, `2024-01-02T15:04`, with `Z` or `+01:00`, else in the
 * local zone), or Unix seconds (`1704067200`, `1704067200.000000001`: nanoseconds after the dot,
 * as docker takes them). Results are nanoseconds since the epoch.
 */
import { CliError } from './errors.js';

const UNIT_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Go's time.ParseDuration, in nanoseconds; undefined when it is not one. */
export function parseGoDuration(value: string): number | undefined {
  const match = /^([+-]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/.exec(value);
  if (!match) return value === '0' || value === '+0' || value === '-0' ? 0 : undefined;
  let total = 0;
  for (const part of value.slice(match[1]!.length).matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    total += Number(part[1]) * UNIT_NS[part[2]!]!;
  }
  return match[1] === '-' ? -total : total;
}

const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?(Z|[+-]\d{2}:\d{2})?$/;

/** Days in a month of a year (month 1-12). */
function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** A time argument as nanoseconds since the epoch; `reference` is now. */
export function parseTimestamp(value: string, reference: Date = new Date()): bigint {
  const duration = parseGoDuration(value);
  if (value !== '0' && duration !== undefined) {
    // docker keeps whole seconds of now minus the duration.
    return BigInt(Math.floor((reference.getTime() - duration / 1e6) / 1000)) * 1_000_000_000n;
  }
  // As docker: with Z, + or three dashes the zone is in the text; otherwise it is local.
  const inLocation = !(/[zZ+]/.test(value) || value.split('-').length - 1 === 3);
  const match = DATE_TIME.exec(value.replace(/z$/, 'Z'));
  if (match) {
    const [, y, mo, d, h = '0', mi = '0', s = '0', fraction = '', zone] = match;
    const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s].map(Number) as number[];
    const valid =
      month! >= 1 &&
      month! <= 12 &&
      day! >= 1 &&
      day! <= daysIn(year!, month!) &&
      hour! < 24 &&
      minute! < 60 &&
      second! < 60 &&
      (zone === undefined) === inLocation;
    if (!valid) throw new CliError(`parsing time "${value}": out of range or not a time docker reads`);
    let offsetMinutes: number;
    if (zone === undefined) offsetMinutes = -reference.getTimezoneOffset();
    else if (zone === 'Z') offsetMinutes = 0;
    else
      offsetMinutes = (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
    const ms = Date.UTC(year!, month! - 1, day!, hour!, minute!, second!) - offsetMinutes * 60_000;
    return BigInt(ms) * 1_000_000n + BigInt(fraction.padEnd(9, '0') || '0');
  }
  // With a dash it was meant as a date and is malformed; otherwise Unix seconds[.nanoseconds].
  const unix = /^(\d+)(?:\.(\d+))?$/.exec(value);
  if (value.includes('-') || !unix) {
    if (value.includes('-')) throw new CliError(`parsing time "${value}": not a time docker reads`);
    throw new CliError(`failed to parse value as time or duration: "${value}"`);
  }
  return BigInt(unix[1]!) * 1_000_000_000n + BigInt(unix[2] ?? '0');
}

/** docker's event time: RFC 3339 with nine digits of nanoseconds, in the local zone. */
export function formatTimeNano(
  ns: bigint,
  zoneOffsetMinutes = -new Date(Number(ns / 1_000_000n)).getTimezoneOffset(),
): string {
  const ms = Number(ns / 1_000_000n);
  const local = new Date(ms + zoneOffsetMinutes * 60_000).toISOString().slice(0, 19);
  const nanos = String(ns % 1_000_000_000n).padStart(9, '0');
  if (zoneOffsetMinutes === 0) return `${local}.${nanos}Z`;
  const sign = zoneOffsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(zoneOffsetMinutes);
  return `${local}.${nanos}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}
