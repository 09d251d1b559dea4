/**
 * Netlink messages as bytes: a header, a fixed struct (ifinfomsg, ifaddrmsg, rtmsg) and
 * attributes (type-length-value, each padded to 4 bytes, nested ones holding more
 * attributes). Host byte order throughout (little-endian on the machines box runs on).
 */
import { NLA_F_NESTED, NLA_HDRLEN, NLA_TYPE_MASK, NLMSG_HDRLEN } from './constants.js';

/** Rounds up to the 4-byte alignment of netlink headers and attributes. */
export function align(length: number): number {
  return (length + 3) & ~3;
}

/** One attribute: its header, `data` and padding. */
export function attr(type: number, data: Buffer): Buffer {
  const out = Buffer.alloc(align(NLA_HDRLEN + data.length));
  out.writeUInt16LE(NLA_HDRLEN + data.length, 0);
  out.writeUInt16LE(type, 2);
  data.copy(out, NLA_HDRLEN);
  return out;
}

export function attrU32(type: number, value: number): Buffer {
  const data = Buffer.alloc(4);
  data.writeUInt32LE(value >>> 0);
  return attr(type, data);
}

export function attrS32(type: number, value: number): Buffer {
  const data = Buffer.alloc(4);
  data.writeInt32LE(value);
  return attr(type, data);
}

/** A NUL-terminated string attribute (IFLA_IFNAME, IFLA_INFO_KIND). */
export function attrString(type: number, value: string): Buffer {
  return attr(type, Buffer.from(`${value}\0`, 'utf8'));
}

/** An attribute holding other attributes (or, for VETH_INFO_PEER, a struct and attributes). */
export function attrNested(type: number, parts: readonly Buffer[]): Buffer {
  return attr(type | NLA_F_NESTED, Buffer.concat(parts));
}

/** A whole message: header, then `parts` (the fixed struct first, then attributes). */
export function encodeMessage(type: number, flags: number, seq: number, parts: readonly Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const out = Buffer.alloc(NLMSG_HDRLEN + body.length);
  out.writeUInt32LE(out.length, 0);
  out.writeUInt16LE(type, 4);
  out.writeUInt16LE(flags, 6);
  out.writeUInt32LE(seq >>> 0, 8);
  out.writeUInt32LE(0, 12); // port: filled in by the kernel
  body.copy(out, NLMSG_HDRLEN);
  return out;
}

export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  /** The sender's port in the header (ours in a reply to us). */
  port: number;
  /** What follows the header, up to the message's length. */
  payload: Buffer;
}

/**
 * Splits one datagram into its messages. A length that does not fit (shorter than a
 * header, or past the end) ends the walk: what follows cannot be framed.
 */
export function decodeMessages(data: Buffer): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  let offset = 0;
  while (offset + NLMSG_HDRLEN <= data.length) {
    const length = data.readUInt32LE(offset);
    if (length < NLMSG_HDRLEN || offset + length > data.length) break;
    out.push({
      type: data.readUInt16LE(offset + 4),
      flags: data.readUInt16LE(offset + 6),
      seq: data.readUInt32LE(offset + 8),
      port: data.readUInt32LE(offset + 12),
      payload: data.subarray(offset + NLMSG_HDRLEN, offset + length),
    });
    offset += align(length);
  }
  return out;
}

/**
 * The attributes in `data` from `offset` on, by type (flag bits cleared). The values are
 * views into `data`, without their headers or padding. A repeated type keeps the first.
 */
export function decodeAttributes(data: Buffer, offset = 0): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  while (offset + NLA_HDRLEN <= data.length) {
    const length = data.readUInt16LE(offset);
    if (length < NLA_HDRLEN || offset + length > data.length) break;
    const type = data.readUInt16LE(offset + 2) & NLA_TYPE_MASK;
    if (!out.has(type)) out.set(type, data.subarray(offset + NLA_HDRLEN, offset + length));
    offset += align(length);
  }
  return out;
}

/** A NUL-terminated string attribute's text. */
export function attrText(value: Buffer | undefined): string | undefined {
  if (value === undefined) return undefined;
  const end = value.indexOf(0);
  return value.toString('utf8', 0, end < 0 ? value.length : end);
}

export function attrNumber(value: Buffer | undefined): number | undefined {
  return value !== undefined && value.length >= 4 ? value.readUInt32LE(0) : undefined;
}
