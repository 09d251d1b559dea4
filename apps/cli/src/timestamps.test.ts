import { parseGoDuration } from '@box/runtime';
import { describe, expect, it } from 'vitest';
import { formatTimeNano, parseTimestamp } from './timestamps.js';

const NOW = new Date('2024-06-01T12:00:00.500Z');
const ns = (iso: string) => BigInt(Date.parse(iso)) * 1_000_000n;

describe('parseGoDuration', () => {
  it.each([
    ['10m', 600e9],
    ['1h30m', 5400e9],
    ['1.5s', 1.5e9],
    ['300ms', 300e6],
    ['-10s', -10e9],
    ['0', 0],
  ])('%s', (text, value) => expect(parseGoDuration(text)).toBe(value));
  it.each(['10', 'm', '1d', '', '1h 30m'])('%s is not one', (text) =>
    expect(parseGoDuration(text)).toBeUndefined(),
  );
});

describe('parseTimestamp (docker GetTimestamp)', () => {
  it('a duration is now minus it, in whole seconds', () => {
    expect(parseTimestamp('10m', NOW)).toBe(ns('2024-06-01T11:50:00Z'));
    expect(parseTimestamp('-1h', NOW)).toBe(ns('2024-06-01T13:00:00Z'));
  });

  it('Unix seconds, with nanoseconds after the dot as docker takes them', () => {
    expect(parseTimestamp('0', NOW)).toBe(0n);
    expect(parseTimestamp('1704067200', NOW)).toBe(ns('2024-01-01T00:00:00Z'));
    expect(parseTimestamp('1704067200.000000005', NOW)).toBe(ns('2024-01-01T00:00:00Z') + 5n);
  });

  it('RFC 3339 and its shorter forms, with a zone', () => {
    expect(parseTimestamp('2024-01-01T00:00:00Z', NOW)).toBe(ns('2024-01-01T00:00:00Z'));
    expect(parseTimestamp('2024-01-01T00:00:00.123456789Z', NOW)).toBe(
      ns('2024-01-01T00:00:00Z') + 123456789n,
    );
    expect(parseTimestamp('2024-01-01T01:00:00+01:00', NOW)).toBe(ns('2024-01-01T00:00:00Z'));
    expect(parseTimestamp('2024-01-01T05Z', NOW)).toBe(ns('2024-01-01T05:00:00Z'));
    expect(parseTimestamp('2024-01-01Z', NOW)).toBe(ns('2024-01-01T00:00:00Z'));
  });

  it('without a zone: local time', () => {
    const offset = -NOW.getTimezoneOffset() * 60_000;
    expect(parseTimestamp('2024-01-01', NOW)).toBe(ns('2024-01-01T00:00:00Z') - BigInt(offset) * 1_000_000n);
    expect(parseTimestamp('2024-01-01T10:30', NOW)).toBe(
      ns('2024-01-01T10:30:00Z') - BigInt(offset) * 1_000_000n,
    );
  });

  it('refuses what docker refuses', () => {
    expect(() => parseTimestamp('abc', NOW)).toThrow('failed to parse value as time or duration: "abc"');
    expect(() => parseTimestamp('2024-13-01', NOW)).toThrow('parsing time "2024-13-01"');
    expect(() => parseTimestamp('2024-02-30', NOW)).toThrow('parsing time');
    expect(() => parseTimestamp('12:00', NOW)).toThrow('failed to parse value as time or duration');
  });
});

describe('formatTimeNano', () => {
  it('nine digits of nanoseconds, Z in UTC, else the offset', () => {
    const t = ns('2024-01-01T00:00:00Z') + 5n;
    expect(formatTimeNano(t, 0)).toBe('2024-01-01T00:00:00.000000005Z');
    expect(formatTimeNano(t, 90)).toBe('2024-01-01T01:30:00.000000005+01:30');
    expect(formatTimeNano(t, -300)).toBe('2023-12-31T19:00:00.000000005-05:00');
  });
});
