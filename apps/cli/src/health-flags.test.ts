import { describe, expect, it } from 'vitest';
import { parseGoDuration, parseHealthFlags } from './health-flags.js';

describe('Go durations, as docker parses --health-* values', () => {
  it('reads every unit, fractions and sums', () => {
    expect(parseGoDuration('0')).toBe(0);
    expect(parseGoDuration('90s')).toBe(90e9);
    expect(parseGoDuration('1m30s')).toBe(90e9);
    expect(parseGoDuration('1.5h')).toBe(5400e9);
    expect(parseGoDuration('500ms')).toBe(500e6);
    expect(parseGoDuration('10us')).toBe(10e3);
    expect(parseGoDuration('10µs')).toBe(10e3);
    expect(parseGoDuration('7ns')).toBe(7);
    expect(parseGoDuration('-2s')).toBe(-2e9);
  });

  it("refuses what Go's time.ParseDuration refuses, with its words", () => {
    expect(() => parseGoDuration('5')).toThrow('time: missing unit in duration "5"');
    expect(() => parseGoDuration('')).toThrow('time: invalid duration ""');
    expect(() => parseGoDuration('s')).toThrow('time: invalid duration "s"');
    expect(() => parseGoDuration('1d')).toThrow('time: unknown unit "d" in duration "1d"');
    expect(() => parseGoDuration('1s2')).toThrow('time: missing unit in duration "1s2"');
  });
});

describe('health flags', () => {
  it('gives only what was set: the engine merges it over the image', () => {
    expect(parseHealthFlags({})).toEqual({});
    expect(parseHealthFlags({ healthRetries: '4' })).toEqual({ healthcheck: { Retries: 4 } });
    expect(parseHealthFlags({ healthCmd: 'curl -f http://localhost/', healthInterval: '5s' })).toEqual({
      healthcheck: { Test: ['CMD-SHELL', 'curl -f http://localhost/'], Interval: 5e9 },
    });
    expect(parseHealthFlags({ noHealthcheck: true })).toEqual({ healthcheck: { Test: ['NONE'] } });
  });

  it('refuses bad values with docker lines', () => {
    expect(() => parseHealthFlags({ healthTimeout: '-1s' })).toThrow('--health-timeout cannot be negative');
    expect(() => parseHealthFlags({ healthStartPeriod: '0.5ms' })).toThrow(
      'StartPeriod in Healthcheck cannot be less than 1ms',
    );
    expect(() => parseHealthFlags({ healthRetries: 'x' })).toThrow(
      'invalid argument "x" for "--health-retries" flag: strconv.ParseInt: parsing "x": invalid syntax',
    );
    expect(() => parseHealthFlags({ noHealthcheck: true, healthRetries: '1' })).toThrow(
      '--no-healthcheck conflicts with --health-* options',
    );
  });
});
