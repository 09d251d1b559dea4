import { describe, expect, it } from 'vitest';
import { NLA_F_NESTED } from './constants.js';
import { isNetlinkError, NetlinkError } from './errors.js';
import { broadcastOf, formatIpv4, formatMac, parseIpv4, parseIpv4Prefix, parseMac } from './ipv4.js';
import {
  align,
  attr,
  attrNested,
  attrNumber,
  attrString,
  attrText,
  attrU32,
  decodeAttributes,
  decodeMessages,
  encodeMessage,
} from './message.js';

describe('attributes', () => {
  it('lays out length, type, value and padding to 4 bytes', () => {
    expect(align(0)).toBe(0);
    expect(align(5)).toBe(8);
    expect(attrU32(4, 1500)).toEqual(Buffer.from([8, 0, 4, 0, 0xdc, 0x05, 0, 0]));
    // "br0\0": length 8 (header + 4), no padding; "eth10\0": length 10, padded to 12.
    expect(attrString(3, 'br0')).toEqual(Buffer.from([8, 0, 3, 0, 0x62, 0x72, 0x30, 0]));
    const padded = attrString(3, 'eth10');
    expect(padded.length).toBe(12);
    expect(padded.readUInt16LE(0)).toBe(10);
    expect(attr(1, Buffer.alloc(0))).toEqual(Buffer.from([4, 0, 1, 0]));
  });

  it('marks nested attributes and reads them back', () => {
    const nested = attrNested(18, [attrString(1, 'veth'), attrNested(2, [attrU32(1, 7)])]);
    expect(nested.readUInt16LE(2)).toBe(18 | NLA_F_NESTED);
    const outer = decodeAttributes(nested);
    const info = decodeAttributes(outer.get(18)!);
    expect(attrText(info.get(1))).toBe('veth');
    expect(attrNumber(decodeAttributes(info.get(2)!).get(1))).toBe(7);
  });

  it('stops at an attribute whose length does not fit, and keeps the first of a repeated type', () => {
    const data = Buffer.concat([attrU32(1, 1), attrU32(1, 2), Buffer.from([200, 0, 2, 0, 0, 0])]);
    const attrs = decodeAttributes(data);
    expect(attrNumber(attrs.get(1))).toBe(1);
    expect(attrs.has(2)).toBe(false);
  });
});

describe('messages', () => {
  it('encodes a header before the parts and decodes several messages from one datagram', () => {
    const one = encodeMessage(16, 0x405, 7, [Buffer.alloc(16), attrString(3, 'box0')]);
    expect(one.readUInt32LE(0)).toBe(one.length);
    expect(one.readUInt16LE(4)).toBe(16);
    expect(one.readUInt16LE(6)).toBe(0x405);
    expect(one.readUInt32LE(8)).toBe(7);
    const two = encodeMessage(3, 2, 8, [Buffer.from([0, 0, 0, 0])]);
    const messages = decodeMessages(Buffer.concat([one, two]));
    expect(messages.map(({ type, flags, seq }) => ({ type, flags, seq }))).toEqual([
      { type: 16, flags: 0x405, seq: 7 },
      { type: 3, flags: 2, seq: 8 },
    ]);
    expect(messages[0]!.payload.length).toBe(one.length - 16);
    expect(decodeMessages(one.subarray(0, 20))).toEqual([]); // truncated: nothing framed
  });
});

describe('IPv4 and MAC text', () => {
  it('parses addresses and prefixes, and refuses what is not one with EINVAL naming the operation', () => {
    expect(parseIpv4('10.1.0.2', 'x')).toEqual(Buffer.from([10, 1, 0, 2]));
    expect(parseIpv4Prefix('172.17.0.1/16', 'x')).toEqual({
      address: Buffer.from([172, 17, 0, 1]),
      prefixLength: 16,
    });
    expect(formatIpv4(Buffer.from([192, 168, 1, 255]))).toBe('192.168.1.255');
    for (const bad of ['10.1.0.2', '10.1.0.2/', '10.1.0/24', '10.1.0.2/33', '::1/64', '10.1.0.2/24/1']) {
      let error: unknown;
      try {
        parseIpv4Prefix(bad, 'add address');
      } catch (e) {
        error = e;
      }
      expect(isNetlinkError(error, 'EINVAL'), bad).toBe(true);
    }
  });

  it('computes broadcast addresses', () => {
    expect(formatIpv4(broadcastOf(Buffer.from([10, 1, 2, 3]), 24))).toBe('10.1.2.255');
    expect(formatIpv4(broadcastOf(Buffer.from([10, 1, 2, 3]), 8))).toBe('10.255.255.255');
    expect(formatIpv4(broadcastOf(Buffer.from([10, 1, 2, 3]), 0))).toBe('255.255.255.255');
    expect(formatIpv4(broadcastOf(Buffer.from([10, 1, 2, 3]), 1))).toBe('127.255.255.255');
  });

  it('parses and formats MAC addresses', () => {
    expect(formatMac(parseMac('02:42:AC:11:00:02', 'x'))).toBe('02:42:ac:11:00:02');
    expect(() => parseMac('02:42:ac:11:00', 'set MAC')).toThrow(/^set MAC: EINVAL/);
  });
});

describe('NetlinkError', () => {
  it('reads as the operation, the errno name and text, and the kernel’s words', () => {
    const error = new NetlinkError('add veth box0a1b2c', 17, { detail: 'some detail' });
    expect(error.message).toBe('add veth box0a1b2c: EEXIST (file exists): some detail');
    expect(error).toMatchObject({
      name: 'NetlinkError',
      code: 'EEXIST',
      errno: 17,
      operation: 'add veth box0a1b2c',
    });
    expect(isNetlinkError(error)).toBe(true);
    expect(isNetlinkError(error, 'EEXIST')).toBe(true);
    expect(isNetlinkError(error, 'ENODEV')).toBe(false);
    expect(isNetlinkError(new Error('x'))).toBe(false);
    expect(new NetlinkError('delete link x', 19).message).toBe('delete link x: ENODEV (no such device)');
  });
});
