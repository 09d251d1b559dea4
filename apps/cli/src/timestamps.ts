/**
 * docker's time arguments (`--since`, `--until`), read as docker's client reads them
 * (api/types/time GetTimestamp): a Go duration back from now (`10m`, `1h30m`), an RFC 3339 time
 * or a shorter form of one (`2024-01-02`, `2024-01-02T15:04`, with `Z` or `+01:00`, else in the
 * local zone), or Unix seconds (`1704067200`, `1704067200.000000001`: nanoseconds after the dot,
 * as docker takes them). Results are nanoseconds since the epoch.
 */
import { parseLogTime } from '@box/runtime';
import { CliError } from './errors.js';

/** A time argument as nanoseconds since the epoch; `reference` is now. One reader for every command: the runtime's. */
export function parseTimestamp(value: string, reference: Date = new Date()): bigint {
  try {
    return parseLogTime(value, reference);
  } catch (error) {
    throw new CliError((error as Error).message);
  }
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
