import { describe, expect, it } from 'vitest';
import { hostsFile, resolvConf } from './etc-files.js';

describe('/etc files', () => {
  it("writes docker's /etc/hosts: localhost, --add-host, the container, its peers", () => {
    const text = hostsFile({
      hostname: 'web',
      addresses: ['172.18.0.2'],
      extraHosts: [{ name: 'db', ip: '10.0.0.5' }],
      peers: [{ ip: '172.18.0.3', names: ['api', 'api.local'] }],
    });
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('127.0.0.1\tlocalhost');
    expect(lines.slice(-3)).toEqual(['10.0.0.5\tdb', '172.18.0.2\tweb', '172.18.0.3\tapi api.local']);
  });

  it("drops the host's loopback resolvers, falls back to docker's, lets --dns* replace", () => {
    const host =
      '# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nsearch corp.example\noptions edns0\n';
    expect(resolvConf(host)).toBe('nameserver 10.0.0.1\nsearch corp.example\noptions edns0\n');
    expect(resolvConf('nameserver 127.0.0.53\nnameserver ::1\n')).toBe(
      'nameserver 8.8.8.8\nnameserver 8.8.4.4\n',
    );
    expect(resolvConf(host, { dns: ['1.1.1.1'], dnsSearch: ['a.example'], dnsOptions: ['ndots:2'] })).toBe(
      'nameserver 1.1.1.1\nsearch a.example\noptions ndots:2\n',
    );
  });
});
