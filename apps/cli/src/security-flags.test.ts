import { describe, expect, it } from 'vitest';
import { parseDevice, parseSecurityFlags, parseSecurityOptions, parseUlimit } from './security-flags.js';

describe('security flags', () => {
  it('reads --device as docker does', () => {
    expect(parseDevice('/dev/fuse')).toEqual({ hostPath: '/dev/fuse' });
    expect(parseDevice('/dev/fuse:r')).toEqual({ hostPath: '/dev/fuse', permissions: 'r' });
    expect(parseDevice('/dev/fuse:/dev/f')).toEqual({ hostPath: '/dev/fuse', containerPath: '/dev/f' });
    expect(parseDevice('/dev/fuse:/dev/f:rw')).toEqual({
      hostPath: '/dev/fuse',
      containerPath: '/dev/f',
      permissions: 'rw',
    });
    expect(() => parseDevice('a:b:c:d')).toThrow(/invalid device specification/);
  });

  it('reads --ulimit NAME=SOFT[:HARD]', () => {
    expect(parseUlimit('nofile=1024:2048')).toEqual({ name: 'nofile', soft: 1024, hard: 2048 });
    expect(parseUlimit('core=-1')).toEqual({ name: 'core', soft: -1, hard: -1 });
    expect(() => parseUlimit('nofile')).toThrow(/NAME=SOFT\[:HARD\]/);
  });

  it('reads --security-opt; seccomp=unconfined, and anything unknown refused', () => {
    expect(parseSecurityOptions(['no-new-privileges', 'seccomp=unconfined'])).toEqual({
      noNewPrivileges: true,
      seccomp: 'unconfined',
    });
    expect(parseSecurityOptions(['seccomp:unconfined'])).toMatchObject({ seccomp: 'unconfined' });
    expect(() => parseSecurityOptions(['seccomp=/nonexistent.json'])).toThrow(
      'opening seccomp profile (/nonexistent.json) failed: no such file or directory',
    );
    expect(() => parseSecurityOptions(['apparmor=unconfined'])).toThrow(/unsupported --security-opt/);
  });

  it('reads sizes and numbers with one line for a bad one', () => {
    expect(parseSecurityFlags({ shmSize: '128m', oomScoreAdj: '-5', sysctl: ['a.b=c=d'] })).toMatchObject({
      shmSize: 128 * 1024 * 1024,
      oomScoreAdj: -5,
      sysctls: { 'a.b': 'c=d' },
    });
    expect(() => parseSecurityFlags({ oomScoreAdj: 'x' })).toThrow(/--oom-score-adj/);
    expect(() => parseSecurityFlags({ shmSize: 'lots' })).toThrow(/--shm-size/);
    expect(() => parseSecurityFlags({ sysctl: ['novalue'] })).toThrow(/KEY=VALUE/);
  });
});
