import { closeSync, openSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseStat, processStartTime, readProcessStat } from './stat.js';

describe('parseStat', () => {
  it('takes the fields after the last ")", whatever the command name holds', () => {
    const rest = Array.from({ length: 49 }, (_, i) => String(i + 4)).join(' '); // fields 4-52
    expect(parseStat(`42 (a) b) S ${rest}`)).toEqual({ state: 'S', startTime: 22 });
    expect(parseStat(`42 (x) Z ${rest}`)).toMatchObject({ state: 'Z' });
    expect(parseStat('garbage')).toBeUndefined();
    expect(parseStat('1 (x) S 1 2')).toBeUndefined();
  });
});

describe('readProcessStat / processStartTime', () => {
  it('read this process’s stat, as /proc/self/stat has it', () => {
    const dir = openSync(`/proc/${process.pid}`, 'r');
    try {
      const own = parseStat(readFileSync('/proc/self/stat', 'latin1'))!;
      expect(readProcessStat(dir)).toEqual({ state: expect.any(String), startTime: own.startTime });
      expect(processStartTime(process.pid)).toBe(own.startTime);
    } finally {
      closeSync(dir);
    }
    expect(processStartTime(0x3ffffff)).toBeUndefined();
  });
});
