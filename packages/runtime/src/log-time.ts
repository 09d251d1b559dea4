/**
 * The times `logs --since/--until` (and docker's other time filters) accept, read as docker's
 * client reads them: a Go duration before now (`10m`, `1h30m`, `42s`), an RFC 3339 date or
 * timestamp with or without a fraction and zone (no zone: the local one), or Unix seconds with an
 * optional fraction. A time is nanoseconds since the epoch, as a bigint: log entries carry
 * nanoseconds, more than a double holds.
 */

const NS_PER_SECOND = 1_000_000_000n;

/** Nanoseconds of one unit of a Go duration. */
const DURATION_UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** A Go duration (`time.ParseDuration`) in nanoseconds, or undefined when `value` is not one. */
export function parseGoDuration(value: string): number | undefined {
  const match = /^([-+]?)(.+)$/.exec(value);
  if (!match) return undefined;
  const [, sign, body] = match as unknown as [string, string, string];
  if (body === '0') return 0;
  const part = /(\d*(?:\.\d*)?)([a-zµμ]+)/gy;
  let total = 0;
  let end = 0;
  for (let m = part.exec(body); m; m = part.exec(body)) {
    const [, number, unit] = m as unknown as [string, string, string];
    const scale = DURATION_UNITS[unit];
    // A number needs a digit ("." alone is not one); the unit must be one Go knows.
    if (!/\d/.test(number) || scale === undefined) return undefined;
    total += Number(number) * scale;
    end = part.lastIndex;
  }
  if (end === 0 || end !== body.length) return undefined;
  return sign === '-' ? -total : total;
}

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/** The layout docker's client picks for a timestamp (its GetTimestamp), shown in parse errors. */
function layoutFor(value: string, local: boolean): string {
  if (value.includes('.'))
    return local ? '2006-01-02T15:04:05.999999999' : '2006-01-02T15:04:05.999999999Z07:00';
  if (value.includes('T')) {
    let colons = value.split(':').length - 1;
    if (!local && !/[zZ]/.test(value) && colons > 0) colons--;
    const time = colons === 0 ? '15' : colons === 1 ? '15:04' : '15:04:05';
    return `2006-01-02T${time}${local ? '' : 'Z07:00'}`;
  }
  return local ? '2006-01-02' : '2006-01-02Z07:00';
}

const TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?(Z|[+-]\d{2}:\d{2})?$/;

/** An RFC 3339-like timestamp in nanoseconds; throws Go's words when it cannot be one. */
function parseRfc3339(value: string, now: Date): bigint {
  // As docker: a zone is given by Z, +, or a third dash (a negative offset); otherwise local time.
  const local = !(/[zZ+]/.test(value) || value.split('-').length - 1 === 3);
  const layout = layoutFor(value, local);
  const fail = (why: string): never => {
    throw new Error(`parsing time "${value}" as "${layout}": ${why}`);
  };
  const m = TIMESTAMP.exec(value);
  if (!m || (local && m[8] !== undefined) || (!local && m[8] === undefined))
    fail(`cannot parse "${value}" as "${layout}"`);
  const [, y, mo, d, h = '0', mi = '0', s = '0', fraction = '', zone] = m as unknown as string[];
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  if (month < 1 || month > 12) fail('month out of range');
  if (day < 1 || day > DAYS_IN_MONTH[month - 1]! || (month === 2 && day === 29 && !isLeap(year)))
    fail('day out of range');
  if (Number(h) > 23) fail('hour out of range');
  if (Number(mi) > 59) fail('minute out of range');
  if (Number(s) > 59) fail('second out of range');
  // docker reads a zoneless time in the caller's zone at its current offset (Go's FixedZone).
  let offsetMinutes = -now.getTimezoneOffset();
  if (zone === 'Z') offsetMinutes = 0;
  else if (zone) {
    const [zh, zm] = zone.slice(1).split(':').map(Number) as [number, number];
    if (zh > 23 || zm > 59) fail('time zone offset out of range');
    offsetMinutes = (zone[0] === '-' ? -1 : 1) * (zh * 60 + zm);
  }
  const ms = Date.UTC(year, month - 1, day, Number(h), Number(mi), Number(s)) - offsetMinutes * 60_000;
  return BigInt(ms) * 1_000_000n + BigInt(fraction.padEnd(9, '0') || '0');
}

/** Unix seconds with an optional fraction (`1700000000`, `1700000000.5`), as docker's parseTimestamp. */
function parseUnix(value: string): bigint | undefined {
  const m = /^([-+]?\d+)(?:\.(\d+))?$/.exec(value);
  if (!m) return undefined;
  const fraction = (m[2] ?? '').slice(0, 9).padEnd(9, '0');
  return BigInt(m[1]!) * NS_PER_SECOND + BigInt(fraction);
}

/**
 * A `--since`/`--until` value as nanoseconds since the epoch; `now` is what durations count back
 * from. Throws with docker's words (without its `invalid value for "since":` prefix).
 */
export function parseLogTime(value: string, now: Date = new Date()): bigint {
  const duration = value === '0' ? undefined : parseGoDuration(value);
  if (duration !== undefined) {
    // docker sends whole seconds for a duration: now minus it, truncated.
    const ns = BigInt(now.getTime()) * 1_000_000n - BigInt(Math.round(duration));
    return (ns / NS_PER_SECOND) * NS_PER_SECOND;
  }
  try {
    return parseRfc3339(value, now);
  } catch (error) {
    // With a dash it was meant as a timestamp: Go's words. Otherwise it may be Unix seconds.
    if (value.includes('-')) throw error;
    const unix = parseUnix(value);
    if (unix === undefined) throw new Error(`failed to parse value as time or duration: "${value}"`);
    return unix;
  }
}

/** A log entry's RFC 3339 UTC time (`2024-01-01T00:00:00.123456789Z`) in nanoseconds. */
export function logEntryTime(time: string): bigint {
  const dot = time.indexOf('.');
  const whole = dot === -1 ? time.replace(/Z$/, '') : time.slice(0, dot);
  const fraction = dot === -1 ? '' : time.slice(dot + 1).replace(/Z$/, '');
  return BigInt(Date.parse(`${whole}Z`)) * 1_000_000n + BigInt(fraction.slice(0, 9).padEnd(9, '0') || '0');
}
