import { describe, expect, it } from 'vitest';
import { logEntryTime, parseGoDuration, parseLogTime } from './log-time.js';

const NOW = new Date('2024-05-06T07:08:09.500Z');
const seconds = (iso: string) => BigInt(Date.parse(iso)) * 1_000_000n;

describe('parseGoDuration', () => {
  it("reads Go's durations", () => {
    expect(parseGoDuration('42s')).toBe(42e9);
    expect(parseGoDuration('1h30m')).toBe(5400e9);
    expect(parseGoDuration('1.5h')).toBe(5400e9);
    expect(parseGoDuration('-10m')).toBe(-600e9);
    expect(parseGoDuration('250ms')).toBe(250e6);
    expect(parseGoDuration('0')).toBe(0);
  });

  it('refuses what Go refuses', () => {
    for (const bad of ['', '10', '10x', 'm', '.s', '1h 30m', '1h30', '2024-01-01'])
      expect(parseGoDuration(bad)).toBe(undefined);
  });
});

describe('parseLogTime', () => {
  it('counts a duration back from now, in whole seconds', () => {
    expect(parseLogTime('10m', NOW)).toBe(seconds('2024-05-06T06:58:09Z'));
    expect(parseLogTime('1h30m', NOW)).toBe(seconds('2024-05-06T05:38:09Z'));
    expect(parseLogTime('-42s', NOW)).toBe(seconds('2024-05-06T07:08:51Z'));
  });

  it('reads RFC 3339 with a zone, with or without a fraction', () => {
    expect(parseLogTime('2024-01-02T13:23:37Z', NOW)).toBe(seconds('2024-01-02T13:23:37Z'));
    expect(parseLogTime('2024-01-02T13:23:37.25Z', NOW)).toBe(seconds('2024-01-02T13:23:37Z') + 250_000_000n);
    expect(parseLogTime('2024-01-02T13:23:37+02:00', NOW)).toBe(seconds('2024-01-02T11:23:37Z'));
    expect(parseLogTime('2024-01-02T13:23:37-01:30', NOW)).toBe(seconds('2024-01-02T14:53:37Z'));
    expect(parseLogTime('2024-01-02T13:23Z', NOW)).toBe(seconds('2024-01-02T13:23:00Z'));
    expect(parseLogTime('2024-01-02Z', NOW)).toBe(seconds('2024-01-02T00:00:00Z'));
  });

  it("reads a timestamp without a zone in the caller's zone", () => {
    const offset = BigInt(-NOW.getTimezoneOffset()) * 60_000_000_000n;
    expect(parseLogTime('2024-01-02T13:23:37', NOW)).toBe(seconds('2024-01-02T13:23:37Z') - offset);
    expect(parseLogTime('2024-01-02T13:23:37.000000001', NOW)).toBe(
      seconds('2024-01-02T13:23:37Z') - offset + 1n,
    );
    expect(parseLogTime('2024-01-02', NOW)).toBe(seconds('2024-01-02T00:00:00Z') - offset);
  });

  it('reads Unix seconds with an optional fraction; 0 is the epoch, not a duration', () => {
    expect(parseLogTime('1700000000', NOW)).toBe(1_700_000_000_000_000_000n);
    expect(parseLogTime('1700000000.5', NOW)).toBe(1_700_000_000_500_000_000n);
    expect(parseLogTime('0', NOW)).toBe(0n);
  });

  it("refuses anything else with docker's words", () => {
    expect(() => parseLogTime('yesterday', NOW)).toThrow(
      'failed to parse value as time or duration: "yesterday"',
    );
    expect(() => parseLogTime('10', NOW)).not.toThrow();
    expect(() => parseLogTime('2024-13-01', NOW)).toThrow(
      'parsing time "2024-13-01" as "2006-01-02": month out of range',
    );
    expect(() => parseLogTime('2023-02-29T00:00:00Z', NOW)).toThrow('day out of range');
    expect(() => parseLogTime('2024-01-02T1:2', NOW)).toThrow(
      'parsing time "2024-01-02T1:2" as "2006-01-02T15:04": cannot parse',
    );
    expect(() => parseLogTime('-5', NOW)).toThrow('parsing time "-5"');
  });
});

describe('logEntryTime', () => {
  it('keeps the nanoseconds of a log entry', () => {
    expect(logEntryTime('2024-01-02T13:23:37.123456789Z')).toBe(
      seconds('2024-01-02T13:23:37Z') + 123_456_789n,
    );
    expect(logEntryTime('2024-01-02T13:23:37Z')).toBe(seconds('2024-01-02T13:23:37Z'));
  });
});
