import { describe, expect, it } from 'vitest';
import { parseAddHost, parseNetworkFlags, parsePublish } from './network-flags.js';

describe('network flags', () => {
  it('reads -p as docker does', () => {
    expect(parsePublish('8080:80')).toEqual([{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }]);
    expect(parsePublish('80')).toEqual([{ containerPort: 80, protocol: 'tcp' }]);
    expect(parsePublish('127.0.0.1::53/udp')).toEqual([
      { hostIp: '127.0.0.1', containerPort: 53, protocol: 'udp' },
    ]);
    expect(parsePublish('127.0.0.1:8080:80/TCP')).toEqual([
      { hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' },
    ]);
    expect(parsePublish('8000-8001:80-81')).toEqual([
      { hostPort: 8000, containerPort: 80, protocol: 'tcp' },
      { hostPort: 8001, containerPort: 81, protocol: 'tcp' },
    ]);
    expect(() => parsePublish('80/sctp')).toThrow('invalid proto: sctp in "80/sctp" (tcp or udp)');
    expect(() => parsePublish('0:80')).toThrow('invalid port 0 in "0:80"');
    expect(() => parsePublish('70000')).toThrow('invalid port 70000 in "70000"');
    expect(() => parsePublish('1.2.3:80:80')).toThrow('invalid IP address 1.2.3 in "1.2.3:80:80"');
    expect(() => parsePublish('8000-8002:80-81')).toThrow(/ranges differ in size/);
    expect(() => parsePublish('::1:80:80')).toThrow(/IPv6/);
  });

  it('reads --add-host, --dns, --ip and --network', () => {
    expect(parseAddHost('db:10.0.0.5')).toEqual({ name: 'db', ip: '10.0.0.5' });
    expect(() => parseAddHost('db')).toThrow(/expected NAME:IPv4/);
    expect(
      parseNetworkFlags({
        network: 'net1',
        ip: '10.1.0.9',
        dns: ['1.1.1.1'],
        addHost: ['a=1.2.3.4'],
        publishAll: true,
      }),
    ).toEqual({
      network: 'net1',
      ip: '10.1.0.9',
      dns: ['1.1.1.1'],
      extraHosts: [{ name: 'a', ip: '1.2.3.4' }],
      publishAll: true,
    });
    expect(parseNetworkFlags({})).toEqual({});
    expect(() => parseNetworkFlags({ dns: ['resolver'] })).toThrow('resolver is not an ip address');
    expect(() => parseNetworkFlags({ ip: '10.1.0.300' })).toThrow('invalid IPv4 address: 10.1.0.300');
  });
});
