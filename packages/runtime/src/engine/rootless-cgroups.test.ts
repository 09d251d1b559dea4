import { describe, expect, it } from 'vitest';
import { checkLimitsAgainst } from './rootless-cgroups.js';

const SERVICE = 'user.slice/user-1000.slice/user@1000.service';
const delegated = (controllers: string[]) => ({ delegated: { path: SERVICE, controllers } });

describe('rootless limits against the user’s cgroups', () => {
  it('without a delegated subtree: any limit is refused with the reason; none is fine', () => {
    const none = { reason: 'cgroup v1 delegates no cgroup to a user' };
    expect(() => checkLimitsAgainst(none, { memory: { limit: 1 << 26 }, pids: { limit: 10 } })).toThrow(
      'resource limits (memory, pids) need a cgroup, which a rootless container does not get on this host (cgroup v1 delegates no cgroup to a user)',
    );
    expect(() => checkLimitsAgainst(none, {})).not.toThrow();
    expect(() => checkLimitsAgainst(none, { memory: {} })).not.toThrow();
  });

  it('in a delegated subtree: limits of the controllers it hands down, the others named', () => {
    const some = delegated(['cpu', 'memory', 'pids']);
    expect(() =>
      checkLimitsAgainst(some, { memory: { limit: 1 << 26 }, cpu: { quota: 50_000, period: 100_000 } }),
    ).not.toThrow();
    expect(() => checkLimitsAgainst(some, { cpu: { cpus: '0' }, blockIO: { weight: 300 } })).toThrow(
      `resource limits (cpuset, blockIO) need the cgroup controllers cpuset, io, which /${SERVICE} does not hand down to this user`,
    );
  });

  it('device cgroup rules: refused even in a delegated subtree (an eBPF program needs host privilege)', () => {
    expect(() => checkLimitsAgainst(delegated(['memory']), {}, ['c 1:3 r'])).toThrow(
      /device cgroup rules \(--device-cgroup-rule\) need a device program/,
    );
  });
});
