import { describe, expect, it } from 'vitest';
import { formatCpuList, parseCpuList, parseCpus, parseCpuset, parseSize } from './size.js';

describe('parseSize', () => {
  it.each([
    ['123', 123],
    ['0', 0],
    ['512k', 512 * 1024],
    ['512K', 512 * 1024],
    ['64m', 64 * 1024 ** 2],
    ['64mb', 64 * 1024 ** 2],
    ['64MB', 64 * 1024 ** 2],
    ['64MiB', 64 * 1024 ** 2],
    ['64 m', 64 * 1024 ** 2],
    ['1g', 1024 ** 3],
    ['1.5g', 1.5 * 1024 ** 3],
    ['2t', 2 * 1024 ** 4],
    ['1p', 1024 ** 5],
    ['100b', 100],
    ['100B', 100],
    ['1.9', 1],
  ])('reads %j as %d bytes, like docker RAMInBytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each([
    '',
    'm',
    '-1',
    '-64m',
    '64x',
    '64mm',
    '64 mb b',
    '1e3',
    'abc',
    '64bi',
    '64ib',
    '0x10',
    '9000000p',
  ])('rejects %j with ECGROUPVALUE', (text) => {
    expect(() => parseSize(text)).toThrow(expect.objectContaining({ code: 'ECGROUPVALUE' }));
  });

  it('names the bad input in the message', () => {
    expect(() => parseSize('12q')).toThrow(/invalid size "12q"/);
  });
});

describe('parseCpus', () => {
  it.each([
    ['0.5', 50_000],
    ['1', 100_000],
    ['1.5', 150_000],
    ['2', 200_000],
    ['0.01', 1000],
    ['.25', 25_000],
    ['0.123456789', 12_345],
  ])('turns %j CPUs into a quota of %d per 100000 µs (docker NanoCPUs)', (text, quota) => {
    expect(parseCpus(text)).toEqual({ quota, period: 100_000 });
  });

  it('accepts numbers', () => {
    expect(parseCpus(0.5)).toEqual({ quota: 50_000, period: 100_000 });
  });

  it.each(['0', '0.0', '-1', '', 'abc', 'NaN', '1.2.3', '.', ' '])('rejects %j', (text) => {
    expect(() => parseCpus(text)).toThrow(expect.objectContaining({ code: 'ECGROUPVALUE' }));
  });

  it('rejects NaN, too little and too precise values', () => {
    expect(() => parseCpus(Number.NaN)).toThrow(/invalid number of CPUs/);
    expect(() => parseCpus('0.000000001')).toThrow(/at least 0.01/);
    expect(() => parseCpus('0.0000000001')).toThrow(/too precise/);
  });

  it('checks the number of CPUs available when given', () => {
    expect(parseCpus('2', 2).quota).toBe(200_000);
    expect(() => parseCpus('2.5', 2)).toThrow(/only 2 are available/);
  });
});

describe('CPU lists', () => {
  it('parses and formats the kernel list format', () => {
    expect(parseCpuList('0-2,4')).toEqual([0, 1, 2, 4]);
    expect(parseCpuList(' 3, 1-2 ')).toEqual([1, 2, 3]);
    expect(parseCpuList('')).toEqual([]);
    expect(formatCpuList([4, 0, 1, 2, 2])).toBe('0-2,4');
    expect(formatCpuList([1, 3, 5])).toBe('1,3,5');
  });

  it('rejects bad lists', () => {
    for (const text of ['a', '1-', '3-1', '1,,2', '-1']) {
      expect(() => parseCpuList(text), text).toThrow(expect.objectContaining({ code: 'ECGROUPVALUE' }));
    }
  });

  it('validates a cpuset against the available CPUs and returns it canonical', () => {
    expect(parseCpuset('0-2,4', '0-7')).toBe('0-2,4');
    expect(parseCpuset('2,0,1', [0, 1, 2, 3])).toBe('0-2');
    expect(() => parseCpuset('0-2,4', '0-3')).toThrow(/names 4, which is not available \(available: 0-3\)/);
    expect(() => parseCpuset('4-5', '0-1')).toThrow(/4-5, which are not available/);
    expect(() => parseCpuset('', '0-1')).toThrow(/empty CPU list/);
  });
});
