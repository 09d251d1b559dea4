import { describe, expect, it } from 'vitest';
import { cgroupReachProblem, checkLimitsAgainst } from './rootless-cgroups.js';

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

  it('a start or exec only from inside the subtree the container’s cgroup is in', () => {
    const here = delegated(['memory']);
    expect(cgroupReachProblem(here, `${SERVICE}/box/abc`)).toBeUndefined();
    expect(cgroupReachProblem(here, `${SERVICE}2/box/abc`)).toMatch(
      /^its cgroup \/user\.slice\/user-1000\.slice\/user@1000\.service2\/box\/abc is outside the cgroup v2 subtree delegated to this box process \(\/user\.slice/,
    );
    expect(cgroupReachProblem({ reason: 'no delegation here' }, `${SERVICE}/box/abc`)).toMatch(
      /\(no delegation here\); run box from the session that made it$/,
    );
  });
});
