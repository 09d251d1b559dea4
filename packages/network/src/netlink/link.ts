/**
 * Links (network interfaces) through RTM_NEWLINK, RTM_DELLINK and RTM_GETLINK: bridges, veth
 * pairs with one end created straight in another network namespace, up/down, master, MAC,
 * MTU, lookups and the list.
 */
import { closeSync, openSync } from 'node:fs';
import {
  AF_UNSPEC,
  IFF_LOWER_UP,
  IFF_UP,
  IFINFOMSG_LEN,
  IFLA_ADDRESS,
  IFLA_EXT_MASK,
  IFLA_IFNAME,
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  IFLA_LINK,
  IFLA_LINK_NETNSID,
  IFLA_LINKINFO,
  IFLA_MASTER,
  IFLA_MTU,
  IFLA_NET_NS_FD,
  IFLA_NET_NS_PID,
  IFLA_OPERSTATE,
  IFNAME_MAX,
  NLM_F_CREATE,
  NLM_F_EXCL,
  OPER_STATES,
  RTEXT_FILTER_SKIP_STATS,
  RTM_DELLINK,
  RTM_GETLINK,
  RTM_NEWLINK,
  VETH_INFO_PEER,
} from './constants.js';
import { ENODEV, invalidArgument, isNetlinkError, NetlinkError } from './errors.js';
import { formatMac, parseMac } from './ipv4.js';
import {
  attr,
  attrNested,
  attrNumber,
  attrString,
  attrText,
  attrU32,
  decodeAttributes,
  type NetlinkMessage,
} from './message.js';
import { describeNetns, type NetnsRef, netnsPath } from './netns.js';
import type { NetlinkSocket } from './socket.js';

/** A link by name (`eth0`) or by index. */
export type LinkRef = string | number;

export interface LinkInfo {
  index: number;
  name: string;
  /** `bridge`, `veth`…; undefined for links without a kind (`lo`, physical devices). */
  kind: string | undefined;
  /** IFF_* flags. */
  flags: number;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** Carrier present (IFF_LOWER_UP): for a veth, both ends are up. */
  lowerUp: boolean;
  /** RFC 2863 state: `up`, `down`, `lowerlayerdown`, `unknown` (lo)… */
  operState: string;
  mtu: number;
  /** `02:42:ac:11:00:02`; undefined for links without one. */
  mac: string | undefined;
  /** Index of the bridge (or other master) this link is attached to. */
  master: number | undefined;
  /** A veth's peer index (IFLA_LINK), counted in `peerNetnsId`'s namespace when that is set. */
  peerIndex: number | undefined;
  /** The namespace id (in this namespace) of the namespace where the peer is. */
  peerNetnsId: number | undefined;
}

export interface BridgeOptions {
  mtu?: number;
  /** A fixed MAC address (otherwise the kernel picks one). */
  mac?: string;
  /** Bring it up as it is created. */
  up?: boolean;
}

export interface VethOptions {
  /**
   * The network namespace to create the peer in, so it can take a name (`eth0`) that exists
   * here. Without it both ends are created in the socket's namespace.
   */
  peerNetns?: NetnsRef;
  /** MTU of both ends. */
  mtu?: number;
  /** The bridge (or other master) to attach the end in this namespace to, as it is created. */
  master?: LinkRef;
  /**
   * Bring the end in this namespace up as it is created. (The peer cannot be: the kernel
   * configures it before the pair is joined, and a veth without its peer refuses to go up,
   * ENOTCONN. Bring it up through a socket in its namespace.)
   */
  up?: boolean;
  mac?: string;
  peerMac?: string;
}

/** How a link shows in messages: its name, or `index 7`. */
export function linkLabel(link: LinkRef): string {
  return typeof link === 'number' ? `index ${link}` : link;
}

function ifinfomsg(index = 0, flags = 0, change = 0): Buffer {
  const out = Buffer.alloc(IFINFOMSG_LEN);
  out.writeUInt8(AF_UNSPEC, 0);
  out.writeInt32LE(index, 4);
  out.writeUInt32LE(flags >>> 0, 8);
  out.writeUInt32LE(change >>> 0, 12);
  return out;
}

function checkName(name: string, operation: string): void {
  const length = Buffer.byteLength(name);
  if (length === 0 || length > IFNAME_MAX || /[\s/:\0]/.test(name) || name === '.' || name === '..')
    throw invalidArgument(
      operation,
      `not an interface name (1 to ${IFNAME_MAX} bytes, no whitespace, "/" or ":"): ${JSON.stringify(name)}`,
    );
}

/** The ifinfomsg and, for a name, IFLA_IFNAME that select an existing link. */
function select(link: LinkRef, operation: string, flags = 0, change = 0): Buffer[] {
  if (typeof link === 'number') {
    if (!Number.isInteger(link) || link <= 0) throw invalidArgument(operation, `not a link index: ${link}`);
    return [ifinfomsg(link, flags, change)];
  }
  checkName(link, operation);
  return [ifinfomsg(0, flags, change), attrString(IFLA_IFNAME, link)];
}

function checkMtu(mtu: number | undefined, operation: string): void {
  if (mtu !== undefined && (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535))
    throw invalidArgument(operation, `not an MTU (68 to 65535): ${mtu}`);
}

/** The attributes of a new link's optional settings. */
function settings(operation: string, mtu?: number, mac?: string): Buffer[] {
  checkMtu(mtu, operation);
  const out: Buffer[] = [];
  if (mtu !== undefined) out.push(attrU32(IFLA_MTU, mtu));
  if (mac !== undefined) out.push(attr(IFLA_ADDRESS, parseMac(mac, operation)));
  return out;
}

function upFlags(up: boolean | undefined): [number, number] {
  return up ? [IFF_UP, IFF_UP] : [0, 0];
}

export function createBridge(socket: NetlinkSocket, name: string, options: BridgeOptions = {}): void {
  const operation = `add bridge ${name}`;
  checkName(name, operation);
  socket.request(
    RTM_NEWLINK,
    NLM_F_CREATE | NLM_F_EXCL,
    [
      ifinfomsg(0, ...upFlags(options.up)),
      attrString(IFLA_IFNAME, name),
      ...settings(operation, options.mtu, options.mac),
      attrNested(IFLA_LINKINFO, [attrString(IFLA_INFO_KIND, 'bridge')]),
    ],
    operation,
  );
}

/**
 * A veth pair in one RTM_NEWLINK: `hostName` in the socket's namespace, `peerName` in
 * `peerNetns` (IFLA_NET_NS_PID or IFLA_NET_NS_FD inside VETH_INFO_PEER, whose payload is
 * the peer's own ifinfomsg and attributes). The kernel creates both or neither; with
 * `master` the host end is attached before the call returns, and if that fails the pair is
 * removed again.
 */
export function createVethPair(
  socket: NetlinkSocket,
  hostName: string,
  peerName: string,
  options: VethOptions = {},
): void {
  const where = options.peerNetns ? ` in ${describeNetns(options.peerNetns)}` : '';
  const operation = `add veth ${hostName} with peer ${peerName}${where}`;
  checkName(hostName, operation);
  checkName(peerName, operation);
  const host = [attrString(IFLA_IFNAME, hostName), ...settings(operation, options.mtu, options.mac)];
  if (options.master !== undefined)
    host.push(attrU32(IFLA_MASTER, resolveIndex(socket, options.master, operation)));
  const peer = [ifinfomsg(), attrString(IFLA_IFNAME, peerName)];
  peer.push(...settings(operation, options.mtu, options.peerMac));
  const target = options.peerNetns;
  const pathFd = target && 'path' in target ? openNamespace(target.path, operation) : undefined;
  try {
    if (target && 'pid' in target) {
      netnsPath(target); // checks the pid
      peer.push(attrU32(IFLA_NET_NS_PID, target.pid));
    } else if (target) {
      peer.push(attrU32(IFLA_NET_NS_FD, pathFd ?? (target as { fd: number }).fd));
    }
    socket.request(
      RTM_NEWLINK,
      NLM_F_CREATE | NLM_F_EXCL,
      [
        ifinfomsg(0, ...upFlags(options.up)),
        ...host,
        attrNested(IFLA_LINKINFO, [
          attrString(IFLA_INFO_KIND, 'veth'),
          attrNested(IFLA_INFO_DATA, [attrNested(VETH_INFO_PEER, peer)]),
        ]),
      ],
      operation,
    );
  } finally {
    if (pathFd !== undefined) closeSync(pathFd);
  }
}

/** A namespace file opened for IFLA_NET_NS_FD. */
function openNamespace(path: string, operation: string): number {
  try {
    return openSync(path, 'r');
  } catch (error) {
    const errno = (error as NodeJS.ErrnoException).errno;
    throw new NetlinkError(operation, errno ? Math.abs(errno) : 5, { detail: `open ${path}`, cause: error });
  }
}

export function deleteLink(socket: NetlinkSocket, link: LinkRef): void {
  const operation = `delete link ${linkLabel(link)}`;
  socket.request(RTM_DELLINK, 0, select(link, operation), operation);
}

export function setLinkUp(socket: NetlinkSocket, link: LinkRef, up = true): void {
  const operation = `set link ${linkLabel(link)} ${up ? 'up' : 'down'}`;
  socket.request(RTM_NEWLINK, 0, select(link, operation, up ? IFF_UP : 0, IFF_UP), operation);
}

/** Attaches `link` to a bridge (or other master); `null` detaches it. */
export function setMaster(socket: NetlinkSocket, link: LinkRef, master: LinkRef | null): void {
  const operation =
    master === null
      ? `detach link ${linkLabel(link)} from its master`
      : `set master of ${linkLabel(link)} to ${linkLabel(master)}`;
  const parts = select(link, operation);
  parts.push(attrU32(IFLA_MASTER, master === null ? 0 : resolveIndex(socket, master, operation)));
  socket.request(RTM_NEWLINK, 0, parts, operation);
}

export function setMac(socket: NetlinkSocket, link: LinkRef, mac: string): void {
  const operation = `set MAC address of ${linkLabel(link)} to ${mac}`;
  socket.request(
    RTM_NEWLINK,
    0,
    [...select(link, operation), attr(IFLA_ADDRESS, parseMac(mac, operation))],
    operation,
  );
}

export function setMtu(socket: NetlinkSocket, link: LinkRef, mtu: number): void {
  const operation = `set MTU of ${linkLabel(link)} to ${mtu}`;
  checkMtu(mtu, operation);
  socket.request(RTM_NEWLINK, 0, [...select(link, operation), attrU32(IFLA_MTU, mtu)], operation);
}

/** One link; ENODEV when there is none of that name or index. */
export function getLink(socket: NetlinkSocket, link: LinkRef): LinkInfo {
  const operation = `get link ${linkLabel(link)}`;
  const message = socket.get(
    RTM_GETLINK,
    [...select(link, operation), attrU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)],
    operation,
  );
  return decodeLink(message);
}

export function listLinks(socket: NetlinkSocket): LinkInfo[] {
  const messages = socket.dump(
    RTM_GETLINK,
    [ifinfomsg(), attrU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)],
    'list links',
  );
  return messages.filter((message) => message.type === RTM_NEWLINK).map(decodeLink);
}

/** The index of a link given by name or index, for attributes that take an index. */
export function resolveIndex(socket: NetlinkSocket, link: LinkRef, operation: string): number {
  if (typeof link === 'number') {
    if (!Number.isInteger(link) || link <= 0) throw invalidArgument(operation, `not a link index: ${link}`);
    return link;
  }
  try {
    return getLink(socket, link).index;
  } catch (error) {
    if (isNetlinkError(error, 'ENODEV'))
      throw new NetlinkError(`${operation}${socket.where}`, ENODEV, {
        detail: `no link named ${link}`,
        cause: error,
      });
    throw error;
  }
}

export function decodeLink(message: NetlinkMessage): LinkInfo {
  const { payload } = message;
  const flags = payload.readUInt32LE(8);
  const attrs = decodeAttributes(payload, IFINFOMSG_LEN);
  const info = attrs.get(IFLA_LINKINFO);
  const mac = attrs.get(IFLA_ADDRESS);
  const operState = attrs.get(IFLA_OPERSTATE)?.readUInt8(0);
  const peerNetnsId = attrs.get(IFLA_LINK_NETNSID);
  const peerIndex = attrNumber(attrs.get(IFLA_LINK));
  const index = payload.readInt32LE(4);
  return {
    index,
    name: attrText(attrs.get(IFLA_IFNAME)) ?? '',
    kind: info ? attrText(decodeAttributes(info).get(IFLA_INFO_KIND)) : undefined,
    flags,
    up: (flags & IFF_UP) !== 0,
    lowerUp: (flags & IFF_LOWER_UP) !== 0,
    operState: operState === undefined ? 'unknown' : (OPER_STATES[operState] ?? `${operState}`),
    mtu: attrNumber(attrs.get(IFLA_MTU)) ?? 0,
    mac: mac && mac.length === 6 ? formatMac(mac) : undefined,
    master: attrNumber(attrs.get(IFLA_MASTER)) || undefined,
    peerIndex: peerIndex !== undefined && peerIndex !== index ? peerIndex : undefined,
    peerNetnsId: peerNetnsId && peerNetnsId.length >= 4 ? peerNetnsId.readInt32LE(0) : undefined,
  };
}
