import { describe, expect, it } from 'vitest';
import {
  cidrContains,
  cidrsOverlap,
  formatCidr,
  formatIPv4,
  hostRange,
  lastAddress,
  parseCidr,
  parseIPv4,
  parseSubnet,
} from './cidr.js';
import { pickSubnet, poolSubnets } from './subnets.js';

describe('IPv4 addresses', () => {
  it('parses and formats dotted quads', () => {
    expect(parseIPv4('0.0.0.0')).toBe(0);
    expect(parseIPv4('255.255.255.255')).toBe(0xffffffff);
    expect(parseIPv4('172.18.0.1')).toBe(0xac120001);
    expect(formatIPv4(0xac120001)).toBe('172.18.0.1');
    expect(formatIPv4(0xffffffff)).toBe('255.255.255.255');
  });

  it.each([
    '',
    '1.2.3',
    '1.2.3.4.5',
    '256.0.0.1',
    '01.2.3.4',
    '1.2.3.-4',
    ' 1.2.3.4',
    '1.2.3.4 ',
    'a.b.c.d',
    '::1',
  ])('refuses %j naming it', (text) => {
    expect(() => parseIPv4(text)).toThrow(
      expect.objectContaining({ code: 'EIPAMINVAL', message: `invalid IPv4 address: ${text}` }),
    );
  });
});

describe('CIDR blocks', () => {
  it('parses any prefix from 0 to 32 and formats canonically', () => {
    expect(parseCidr('0.0.0.0/0')).toEqual({ base: 0, prefix: 0 });
    expect(parseCidr('10.1.2.3/32')).toEqual({ base: 0x0a010203, prefix: 32 });
    expect(formatCidr(parseCidr('172.16.0.0/12'))).toBe('172.16.0.0/12');
  });

  it('refuses a block whose address has host bits set, naming the right one', () => {
    expect(() => parseCidr('172.18.0.5/16')).toThrow(
      'invalid subnet 172.18.0.5/16: it should be 172.18.0.0/16',
    );
  });

  it.each(['10.0.0.0', '10.0.0.0/33', '10.0.0.0/', '10.0.0.0/08', '10.0.0/8', '10.0.0.0/8/8'])(
    'refuses %j',
    (text) => {
      expect(() => parseCidr(text)).toThrow(expect.objectContaining({ code: 'EIPAMINVAL' }));
      expect(() => parseCidr(text)).toThrow(text);
    },
  );

  it('takes subnets from /8 to /30 only, with one error naming the value', () => {
    expect(parseSubnet('10.0.0.0/8')).toEqual({ base: 0x0a000000, prefix: 8 });
    expect(parseSubnet('192.168.1.0/30').prefix).toBe(30);
    for (const text of ['0.0.0.0/0', '10.0.0.0/7', '10.0.0.0/31', '10.0.0.1/32']) {
      expect(() => parseSubnet(text)).toThrow(`invalid subnet ${text}: the prefix must be /8 to /30`);
    }
  });

  it('knows containment, overlap, broadcast and host addresses', () => {
    const net = parseSubnet('172.18.0.0/16');
    expect(cidrContains(net, parseIPv4('172.18.255.255'))).toBe(true);
    expect(cidrContains(net, parseIPv4('172.19.0.0'))).toBe(false);
    expect(formatIPv4(lastAddress(net))).toBe('172.18.255.255');
    expect(hostRange(net).count).toBe(65534);
    expect(hostRange(parseSubnet('10.0.0.0/30'))).toEqual({
      first: parseIPv4('10.0.0.1'),
      last: parseIPv4('10.0.0.2'),
      count: 2,
    });
    expect(hostRange(parseSubnet('10.0.0.0/8')).count).toBe(2 ** 24 - 2);
    expect(cidrsOverlap(net, parseCidr('172.18.5.0/24'))).toBe(true);
    expect(cidrsOverlap(parseCidr('172.16.0.0/12'), net)).toBe(true);
    expect(cidrsOverlap(net, parseCidr('172.19.0.0/16'))).toBe(false);
    expect(cidrsOverlap(parseCidr('0.0.0.0/0'), net)).toBe(true);
  });
});

describe('default subnets', () => {
  it("are docker's: 172.17-31.0.0/16, then 192.168.x.0/20", () => {
    const all = [...poolSubnets()];
    expect(all).toHaveLength(31);
    expect(all.slice(0, 4)).toEqual(['172.17.0.0/16', '172.18.0.0/16', '172.19.0.0/16', '172.20.0.0/16']);
    expect(all[14]).toBe('172.31.0.0/16');
    expect(all.slice(15, 17)).toEqual(['192.168.0.0/20', '192.168.16.0/20']);
    expect(all[30]).toBe('192.168.240.0/20');
  });

  it('pickSubnet skips subnets of networks and host routes, ignoring the default route', () => {
    expect(pickSubnet(poolSubnets(), [])).toBe('172.17.0.0/16');
    expect(pickSubnet(poolSubnets(), ['0.0.0.0/0', '10.0.2.0/24'])).toBe('172.17.0.0/16');
    expect(pickSubnet(poolSubnets(), ['172.17.0.0/16'], ['172.18.0.0/16'])).toBe('172.19.0.0/16');
    // A route covering a whole pool (a VPN's 172.16.0.0/12) pushes the choice to 192.168.
    expect(pickSubnet(poolSubnets(), ['172.16.0.0/12', '192.168.1.0/24'])).toBe('192.168.16.0/20');
    // A host route inside a candidate counts too.
    expect(pickSubnet(poolSubnets(), ['172.17.3.4/32'])).toBe('172.18.0.0/16');
    expect(pickSubnet(poolSubnets(), ['172.16.0.0/12', '192.168.0.0/16'])).toBeNull();
  });
});
