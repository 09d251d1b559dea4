/** IPv4 addresses of links through RTM_NEWADDR, RTM_DELADDR and RTM_GETADDR. */
import {
  AF_INET,
  IFA_ADDRESS,
  IFA_BROADCAST,
  IFA_LABEL,
  IFA_LOCAL,
  IFADDRMSG_LEN,
  NLM_F_CREATE,
  NLM_F_EXCL,
  RT_SCOPE_HOST,
  RT_SCOPE_UNIVERSE,
  RTM_DELADDR,
  RTM_GETADDR,
  RTM_NEWADDR,
} from './constants.js';
import { broadcastOf, formatIpv4, parseIpv4Prefix } from './ipv4.js';
import { type LinkRef, linkLabel, resolveIndex } from './link.js';
import { attr, attrText, decodeAttributes, type NetlinkMessage } from './message.js';
import type { NetlinkSocket } from './socket.js';

export interface AddressInfo {
  /** The link's index. */
  index: number;
  /** `10.1.0.2` */
  address: string;
  prefixLength: number;
  /** `10.1.0.2/24` */
  cidr: string;
  broadcast: string | undefined;
  /** The address's label (the link's name, or `name:alias`). */
  label: string | undefined;
  /** RT_SCOPE_*: 0 global, 253 link, 254 host. */
  scope: number;
}

function ifaddrmsg(prefixLength: number, scope: number, index: number): Buffer {
  const out = Buffer.alloc(IFADDRMSG_LEN);
  out.writeUInt8(AF_INET, 0);
  out.writeUInt8(prefixLength, 1);
  out.writeUInt8(scope, 3);
  out.writeUInt32LE(index, 4);
  return out;
}

/**
 * Adds `cidr` (`10.1.0.2/24`) to a link, with the prefix's broadcast address as `ip addr
 * add … brd +` sets it (none for /31 and /32); the kernel adds the prefix's route. EEXIST
 * when the link already has that address.
 */
export function addAddress(socket: NetlinkSocket, link: LinkRef, cidr: string): void {
  const operation = `add address ${cidr} to ${linkLabel(link)}`;
  const { address, prefixLength } = parseIpv4Prefix(cidr, operation);
  const index = resolveIndex(socket, link, operation);
  const scope = address[0] === 127 ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE;
  const parts = [ifaddrmsg(prefixLength, scope, index), attr(IFA_LOCAL, address), attr(IFA_ADDRESS, address)];
  if (prefixLength < 31) parts.push(attr(IFA_BROADCAST, broadcastOf(address, prefixLength)));
  socket.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, parts, operation);
}

/** The IPv4 addresses of every link, or of one. */
/** Removes an IPv4 address (`10.1.0.2/24`) from a link; EADDRNOTAVAIL when it does not have it. */
export function deleteAddress(socket: NetlinkSocket, link: LinkRef, cidr: string): void {
  const operation = `delete address ${cidr} from ${linkLabel(link)}`;
  const { address, prefixLength } = parseIpv4Prefix(cidr, operation);
  const index = resolveIndex(socket, link, operation);
  socket.request(RTM_DELADDR, 0, [ifaddrmsg(prefixLength, 0, index), attr(IFA_LOCAL, address)], operation);
}

export function listAddresses(socket: NetlinkSocket, link?: LinkRef): AddressInfo[] {
  const operation = link === undefined ? 'list addresses' : `list addresses of ${linkLabel(link)}`;
  const index = link === undefined ? undefined : resolveIndex(socket, link, operation);
  const messages = socket.dump(RTM_GETADDR, [ifaddrmsg(0, 0, 0)], operation);
  return messages
    .filter((message) => message.type === RTM_NEWADDR)
    .map(decodeAddress)
    .filter((address): address is AddressInfo => address !== undefined)
    .filter((address) => index === undefined || address.index === index);
}

function decodeAddress(message: NetlinkMessage): AddressInfo | undefined {
  const { payload } = message;
  if (payload.readUInt8(0) !== AF_INET) return undefined;
  const prefixLength = payload.readUInt8(1);
  const attrs = decodeAttributes(payload, IFADDRMSG_LEN);
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS the peer's on point-to-point links.
  const local = attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS);
  if (local?.length !== 4) return undefined;
  const address = formatIpv4(local);
  const broadcast = attrs.get(IFA_BROADCAST);
  return {
    index: payload.readUInt32LE(4),
    address,
    prefixLength,
    cidr: `${address}/${prefixLength}`,
    broadcast: broadcast?.length === 4 ? formatIpv4(broadcast) : undefined,
    label: attrText(attrs.get(IFA_LABEL)),
    scope: payload.readUInt8(3),
  };
}
