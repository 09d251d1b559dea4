import { describe, expect, it } from 'vitest';
import { SpecError } from '../errors.js';
import { sysctlNamespace, sysctlPath, validateSysctls } from './sysctl.js';

describe('sysctl keys', () => {
  it('maps dotted and slashed keys to a path under /proc/sys', () => {
    expect(sysctlPath('net.ipv4.ip_forward')).toBe('net/ipv4/ip_forward');
    expect(sysctlPath('net/ipv4/conf/eth0.100/forwarding')).toBe('net/ipv4/conf/eth0.100/forwarding');
  });

  it.each(['net.ipv4/../../x', '../kernel/core_pattern', 'net..ipv4', 'net/./ipv4', 'net.ipv4.a b', 'net/'])(
    'refuses %j: never a path out of /proc/sys',
    (key) => expect(() => sysctlPath(key)).toThrow(SpecError),
  );

  it('knows which namespace keeps a key, and refuses the others', () => {
    expect(sysctlNamespace('net.core.somaxconn')).toBe('network');
    expect(sysctlNamespace('kernel.shmmax')).toBe('ipc');
    expect(sysctlNamespace('kernel.sem')).toBe('ipc');
    expect(sysctlNamespace('fs.mqueue.msg_max')).toBe('ipc');
    expect(sysctlNamespace('kernel.domainname')).toBe('uts');
    for (const key of [
      'kernel.core_pattern',
      'kernel.hostname',
      'vm.overcommit_memory',
      'fs.file-max',
      'kernel.shmmaxx',
    ])
      expect(sysctlNamespace(key)).toBeUndefined();
  });

  it("needs a namespace of the container's own for each key", () => {
    const own = new Set(['network', 'ipc'] as const);
    expect(() => validateSysctls({ 'net.ipv4.ip_forward': '1', 'kernel.msgmax': '8192' }, own)).not.toThrow();
    expect(() => validateSysctls({ 'kernel.domainname': 'x' }, own)).toThrow(/needs a uts namespace/);
    expect(() => validateSysctls({ 'kernel.panic': '1' }, own)).toThrow(/not in a separate kernel namespace/);
    expect(() => validateSysctls({ 'net.ipv4.ip_forward': '1' }, new Set())).toThrow(
      /needs a network namespace/,
    );
  });
});
