import { describe, expect, it } from 'vitest';
import { blkioWeightToIoWeight, memorySwapToV2, sharesToWeight } from './convert.js';

describe('sharesToWeight (runc: 1 + ((shares - 2) * 9999) / 262142)', () => {
  it.each([
    [0, 0],
    [2, 1],
    [512, 20],
    [1024, 39],
    [2048, 79],
    [262_144, 10_000],
  ])('cpu.shares %d → cpu.weight %d', (shares, weight) => {
    expect(sharesToWeight(shares)).toBe(weight);
  });
});

describe('blkioWeightToIoWeight', () => {
  it.each([
    [10, 1],
    [500, 4950],
    [1000, 10_000],
  ])('blkio.weight %d → io.weight %d', (blkio, io) => {
    expect(blkioWeightToIoWeight(blkio)).toBe(io);
  });
});

describe('memorySwapToV2 (memory.swap.max = memory+swap - memory)', () => {
  const MiB = 1024 ** 2;
  it('subtracts the memory limit', () => {
    expect(memorySwapToV2(96 * MiB, 32 * MiB)).toBe(64 * MiB);
    expect(memorySwapToV2(32 * MiB, 32 * MiB)).toBe(0);
  });
  it('treats -1 as max and leaves an unset swap alone', () => {
    expect(memorySwapToV2(-1, 32 * MiB)).toBe('max');
    expect(memorySwapToV2(undefined, 32 * MiB)).toBeUndefined();
    expect(memorySwapToV2(undefined, -1)).toBe('max');
  });
  it('refuses a swap limit without a memory limit, or below it', () => {
    expect(() => memorySwapToV2(64 * MiB, undefined)).toThrow(/needs a memory limit/);
    expect(() => memorySwapToV2(16 * MiB, 32 * MiB)).toThrow(/must be >= memory.limit/);
  });
});
