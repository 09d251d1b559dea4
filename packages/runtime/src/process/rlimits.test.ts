import { describe, expect, it } from 'vitest';
import { RLIM_INFINITY, resourceLimits, validateRlimits } from './rlimits.js';

describe('rlimits', () => {
  it('turns the spec into prlimit64 arguments; 2^63 and above mean unlimited', () => {
    expect(
      resourceLimits([
        { type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 },
        { type: 'RLIMIT_CORE', soft: 2 ** 64, hard: 2 ** 64 },
      ]),
    ).toEqual([
      { resource: 7, soft: 1024n, hard: 2048n, name: 'nofile' },
      { resource: 4, soft: RLIM_INFINITY, hard: RLIM_INFINITY, name: 'core' },
    ]);
  });

  it.each([
    [[{ type: 'RLIMIT_FLIES', soft: 1, hard: 1 }], /unknown rlimit type "RLIMIT_FLIES"/],
    [[{ type: 'RLIMIT_NOFILE', soft: 2, hard: 1 }], /soft limit 2 is above the hard limit 1/],
    [[{ type: 'RLIMIT_NOFILE', soft: -1, hard: 1 }], /soft: not a non-negative integer/],
    [
      [
        { type: 'RLIMIT_NOFILE', soft: 1, hard: 1 },
        { type: 'RLIMIT_NOFILE', soft: 1, hard: 1 },
      ],
      /given twice/,
    ],
  ])('refuses %j', (rlimits, message) => {
    expect(() => validateRlimits(rlimits)).toThrow(message);
  });
});
