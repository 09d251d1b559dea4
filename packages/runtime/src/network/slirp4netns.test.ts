import { describe, expect, it } from 'vitest';
import { findSlirp4netns, isSlirpMode, parseSlirpMode, slirpAddresses, slirpArgs } from './slirp4netns.js';

describe('--network slirp4netns options', () => {
  it("podman's defaults, and its options", () => {
    expect(isSlirpMode('slirp4netns')).toBe(true);
    expect(isSlirpMode('slirp4netns:mtu=1500')).toBe(true);
    expect(isSlirpMode('slirp4netnsx')).toBe(false);
    expect(parseSlirpMode('slirp4netns')).toEqual({
      allowHostLoopback: false,
      mtu: 65520,
      cidr: '10.0.2.0/24',
      enableIPv6: false,
    });
    expect(
      parseSlirpMode(
        'slirp4netns:allow_host_loopback=true,mtu=1500,cidr=10.41.7.9/24,enable_ipv6=true,port_handler=slirp4netns,outbound_addr=eth0',
      ),
    ).toEqual({
      allowHostLoopback: true,
      mtu: 1500,
      cidr: '10.41.7.0/24',
      enableIPv6: true,
      outboundAddr: 'eth0',
    });
  });

  it.each([
    ['slirp4netns:', /no options/],
    ['slirp4netns:mtu=65522', /mtu must be/],
    ['slirp4netns:mtu=', /mtu must be/],
    ['slirp4netns:cidr=10.0.2.0/26', /cidr must be/],
    ['slirp4netns:cidr=300.0.2.0/24', /cidr must be/],
    ['slirp4netns:allow_host_loopback', /must be true or false/],
    ['slirp4netns:port_handler=rootlesskit', /port_handler must be slirp4netns/],
    ['slirp4netns:mtu=1500,mtu=1400', /mtu given twice/],
    ['slirp4netns:outbound_addr=a b', /outbound_addr must be/],
    ['slirp4netns:nope=1', /unknown option "nope"/],
  ])('refuses %s', (value, message) => {
    expect(() => parseSlirpMode(value)).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(message) }),
    );
  });

  it('addresses: .100, gateway .2, DNS .3 of the network', () => {
    expect(slirpAddresses({ cidr: '10.0.2.0/24' })).toEqual({
      address: '10.0.2.100',
      prefixLength: 24,
      gateway: '10.0.2.2',
      dns: '10.0.2.3',
    });
    expect(slirpAddresses({ cidr: '192.168.7.128/25' }).address).toBe('192.168.7.228');
  });

  it("its command line: the container's pid (so it joins its user namespace too), the sandbox where it has one", () => {
    const binary = findSlirp4netns();
    const args = slirpArgs(binary, parseSlirpMode('slirp4netns'), 4242);
    expect(args.slice(0, 6)).toEqual([
      '--configure',
      '--mtu=65520',
      '--exit-fd=3',
      '--ready-fd=4',
      '--api-socket=slirp4netns.sock',
      '--disable-host-loopback',
    ]);
    expect(args.slice(-2)).toEqual(['4242', 'tap0']);
    // Debian's 1.2 has both.
    expect(args).toContain('--enable-sandbox');
    expect(args).toContain('--enable-seccomp');
    expect(slirpArgs(binary, parseSlirpMode('slirp4netns:allow_host_loopback=true'), 1)).not.toContain(
      '--disable-host-loopback',
    );
  });
});
