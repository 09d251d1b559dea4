import { describe, expect, it } from 'vitest';
import { parseResourceFlags } from './resources.js';

describe('parseResourceFlags (docker rules)', () => {
  it('turns docker flags into OCI resources', () => {
    expect(
      parseResourceFlags({
        memory: '64m',
        memorySwap: '128m',
        memoryReservation: '32m',
        cpus: '0.5',
        cpuShares: '512',
        cpusetCpus: '0',
        pidsLimit: '20',
      }),
    ).toEqual({
      memory: { limit: 64 << 20, swap: 128 << 20, reservation: 32 << 20 },
      cpu: { quota: 50000, period: 100000, shares: 512, cpus: '0' },
      pids: { limit: 20 },
    });
  });

  it('treats -1 swap and 0 or -1 pids as unlimited', () => {
    expect(parseResourceFlags({ memory: '64m', memorySwap: '-1' }).memory).toEqual({
      limit: 64 << 20,
      swap: -1,
    });
    expect(parseResourceFlags({ pidsLimit: '0' })).toEqual({});
    expect(parseResourceFlags({ pidsLimit: '-1' })).toEqual({});
  });

  it.each([
    [{ memory: '1k' }, 'Minimum memory limit allowed is 6MB'],
    [{ memory: 'abc' }, 'invalid argument "abc" for "--memory" flag'],
    [{ memorySwap: '64m' }, 'always set the Memory limit'],
    [{ memory: '64m', memorySwap: '32m' }, 'memoryswap limit should be larger'],
    [{ memory: '64m', memoryReservation: '128m' }, 'can not be less than memory reservation'],
    [{ cpus: '-1' }, 'invalid argument "-1" for "--cpus" flag'],
    [{ cpus: '0' }, 'invalid argument "0" for "--cpus" flag'],
    [{ cpuShares: '1' }, 'must be between 2 and 262144'],
    [{ cpusetCpus: '99' }, 'not available'],
    [{ pidsLimit: '1.5' }, 'not an integer'],
  ])('rejects %j', (flags, message) => {
    expect(() => parseResourceFlags(flags)).toThrow(message);
  });
});
