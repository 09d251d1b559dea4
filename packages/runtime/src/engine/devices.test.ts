import { describe, expect, it } from 'vitest';
import { hostDevices, parseDeviceCgroupRule, requestedDevices } from './devices.js';

describe('devices', () => {
  it("reads docker's --device-cgroup-rule", () => {
    expect(parseDeviceCgroupRule('c 1:3 rwm')).toEqual({
      allow: true,
      type: 'c',
      major: 1,
      minor: 3,
      access: 'rwm',
    });
    expect(parseDeviceCgroupRule('b 8:* r')).toEqual({
      allow: true,
      type: 'b',
      major: 8,
      minor: '*',
      access: 'r',
    });
    expect(parseDeviceCgroupRule('a *:* rwm')).toMatchObject({ type: 'a', major: '*', minor: '*' });
    for (const bad of ['c 1:3', 'x 1:3 r', 'c 1:3 rr', 'c a:3 r', 'c 1:3 rwmx'])
      expect(() => parseDeviceCgroupRule(bad)).toThrow(`invalid device cgroup format '${bad}'`);
  });

  it('reads a host device with its numbers, mode and owner, at the path asked', () => {
    const { devices, rules } = requestedDevices([
      { hostPath: '/dev/null', containerPath: '/dev/mynull', permissions: 'r' },
    ]);
    expect(devices).toEqual([
      {
        path: '/dev/mynull',
        type: 'c',
        major: 1,
        minor: 3,
        fileMode: 0o666,
        uid: 0,
        gid: 0,
        hostPath: '/dev/null',
      },
    ]);
    expect(rules).toEqual([{ allow: true, type: 'c', major: 1, minor: 3, access: 'r' }]);
  });

  it('refuses a missing device, a file that is not one, and bad permissions', () => {
    expect(() => requestedDevices([{ hostPath: '/dev/nope' }])).toThrow(
      'error gathering device information while adding custom device "/dev/nope": no such file or directory',
    );
    expect(() => requestedDevices([{ hostPath: '/etc/hostname' }])).toThrow(/not a device node/);
    expect(() => requestedDevices([{ hostPath: '/dev/null', permissions: 'rx' }])).toThrow(
      /invalid device permissions/,
    );
  });

  it("lists the host's devices for --privileged, without those every container has", () => {
    const paths = hostDevices().map((d) => d.path);
    expect(paths).toContain('/dev/kmsg');
    for (const own of ['/dev/null', '/dev/tty', '/dev/ptmx', '/dev/console'])
      expect(paths).not.toContain(own);
    expect(paths.some((p) => p.startsWith('/dev/pts/'))).toBe(false);
  });
});
