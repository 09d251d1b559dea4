/** IPv4 addresses, prefixes and MAC addresses between text and the bytes netlink carries. */
import { isIPv4 } from 'node:net';
import { invalidArgument } from './errors.js';

export interface Ipv4Prefix {
  /** The address as written (host bits kept): 4 bytes, network order. */
  address: Buffer;
  prefixLength: number;
}

/** `10.1.0.2` → its 4 bytes; throws EINVAL (naming `operation`) for anything else. */
export function parseIpv4(text: string, operation: string): Buffer {
  if (!isIPv4(text)) throw invalidArgument(operation, `not an IPv4 address: ${JSON.stringify(text)}`);
  return Buffer.from(text.split('.').map(Number));
}

/** `10.1.0.2/24` → address and prefix length; throws EINVAL (naming `operation`) otherwise. */
export function parseIpv4Prefix(text: string, operation: string): Ipv4Prefix {
  const match = /^([^/]+)\/(\d{1,2})$/.exec(text);
  const prefixLength = match ? Number(match[2]) : Number.NaN;
  if (!match || prefixLength > 32)
    throw invalidArgument(
      operation,
      `not an IPv4 address with a prefix length (a.b.c.d/n): ${JSON.stringify(text)}`,
    );
  return { address: parseIpv4(match[1]!, operation), prefixLength };
}

export function formatIpv4(bytes: Buffer): string {
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

/** The broadcast address of an address's prefix (all host bits set). */
export function broadcastOf(address: Buffer, prefixLength: number): Buffer {
  const hostMask = prefixLength === 0 ? 0xffffffff : (1 << (32 - prefixLength)) - 1;
  const out = Buffer.alloc(4);
  out.writeUInt32BE((address.readUInt32BE(0) | hostMask) >>> 0);
  return out;
}

/** `02:42:ac:11:00:02` → 6 bytes; throws EINVAL (naming `operation`) otherwise. */
export function parseMac(text: string, operation: string): Buffer {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(text))
    throw invalidArgument(operation, `not a MAC address (xx:xx:xx:xx:xx:xx): ${JSON.stringify(text)}`);
  return Buffer.from(text.replaceAll(':', ''), 'hex');
}

export function formatMac(bytes: Buffer): string {
  return [...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join(':');
}
