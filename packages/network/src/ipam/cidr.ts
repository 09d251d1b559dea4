/**
 * IPv4 addresses and CIDR blocks as unsigned 32-bit numbers. Text is parsed strictly (four
 * decimal octets, no leading zeros, which inet_aton would read as octal) and always formatted
 * canonically.
 */
import { IpamError } from './errors.js';

/** An IPv4 block: `base` has no bits set past `prefix`. */
export interface Cidr {
  readonly base: number;
  readonly prefix: number;
}

/** The prefixes box accepts for a network's subnet. */
export const MIN_SUBNET_PREFIX = 8;
export const MAX_SUBNET_PREFIX = 30;

const OCTET = /^(0|[1-9][0-9]{0,2})$/;

/** The number for a dotted-quad IPv4 address, or null when `text` is not one. */
export function tryParseIPv4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!OCTET.test(part)) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    value = value * 256 + octet;
  }
  return value;
}

/** The number for a dotted-quad IPv4 address; throws `EIPAMINVAL` naming the value otherwise. */
export function parseIPv4(text: string): number {
  const value = typeof text === 'string' ? tryParseIPv4(text) : null;
  if (value === null) throw new IpamError('EIPAMINVAL', `invalid IPv4 address: ${String(text)}`);
  return value;
}

export function formatIPv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/** The netmask of a prefix length, as a number. */
export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * Parses `a.b.c.d/p` with any prefix 0-32. The address must be the block's first one
 * (`172.18.0.5/16` is refused, naming `172.18.0.0/16`).
 */
export function parseCidr(text: string): Cidr {
  const match = typeof text === 'string' ? /^([0-9.]+)\/(0|[1-9][0-9]?)$/.exec(text) : null;
  const address = match ? tryParseIPv4(match[1]!) : null;
  const prefix = match ? Number(match[2]) : Number.NaN;
  if (address === null || !(prefix <= 32)) {
    throw new IpamError(
      'EIPAMINVAL',
      `invalid CIDR: ${String(text)} (expected an IPv4 block such as 172.18.0.0/16)`,
    );
  }
  const base = (address & prefixMask(prefix)) >>> 0;
  if (base !== address) {
    throw new IpamError('EIPAMINVAL', `invalid subnet ${text}: it should be ${formatIPv4(base)}/${prefix}`, {
      address: text,
    });
  }
  return { base, prefix };
}

/** Parses a network's subnet: a CIDR block with a prefix from /8 to /30. */
export function parseSubnet(text: string): Cidr {
  const cidr = parseCidr(text);
  if (cidr.prefix < MIN_SUBNET_PREFIX || cidr.prefix > MAX_SUBNET_PREFIX) {
    throw new IpamError(
      'EIPAMINVAL',
      `invalid subnet ${text}: the prefix must be /${MIN_SUBNET_PREFIX} to /${MAX_SUBNET_PREFIX}`,
      { address: text },
    );
  }
  return cidr;
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIPv4(cidr.base)}/${cidr.prefix}`;
}

/** The block's last address (the broadcast address of a subnet). */
export function lastAddress(cidr: Cidr): number {
  return (cidr.base | (~prefixMask(cidr.prefix) >>> 0)) >>> 0;
}

export function cidrContains(cidr: Cidr, address: number): boolean {
  return (address & prefixMask(cidr.prefix)) >>> 0 === cidr.base;
}

/** True when the two blocks share an address (one then contains the other). */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b.base) || cidrContains(b, a.base);
}

/** The host addresses of a subnet: all but its network and broadcast addresses. */
export function hostRange(cidr: Cidr): { first: number; last: number; count: number } {
  const first = cidr.base + 1;
  const last = lastAddress(cidr) - 1;
  return { first, last, count: last - first + 1 };
}
