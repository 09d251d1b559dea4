/** IPv4 routes through RTM_NEWROUTE and RTM_GETROUTE. */
import {
  AF_INET,
  NLM_F_CREATE,
  NLM_F_EXCL,
  RT_SCOPE_LINK,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  RTA_DST,
  RTA_GATEWAY,
  RTA_OIF,
  RTA_PREFSRC,
  RTA_PRIORITY,
  RTA_TABLE,
  RTM_GETROUTE,
  RTM_NEWROUTE,
  RTMSG_LEN,
  RTN_UNICAST,
  RTPROT_BOOT,
} from './constants.js';
import { invalidArgument } from './errors.js';
import { formatIpv4, parseIpv4, parseIpv4Prefix } from './ipv4.js';
import { type LinkRef, linkLabel, resolveIndex } from './link.js';
import { attr, attrNumber, attrU32, decodeAttributes, type NetlinkMessage } from './message.js';
import type { NetlinkSocket } from './socket.js';

export interface RouteSpec {
  /** The destination prefix (`10.1.0.0/24`), or `default` (0.0.0.0/0, also when left out). */
  dst?: string;
  /** The next hop; without it the destination is on `link` (a link-scope route). */
  gateway?: string;
  /** The outgoing link; the kernel picks it from the gateway when left out. */
  link?: LinkRef;
  /** The route's metric (priority): lower wins. */
  metric?: number;
  /** The source address to prefer for traffic on this route. */
  source?: string;
}

export interface RouteInfo {
  /** `10.1.0.0/24`, or `default`. */
  dst: string;
  gateway: string | undefined;
  /** Index of the outgoing link. */
  oif: number | undefined;
  table: number;
  /** RTPROT_*: 2 kernel (a prefix route of an address), 3 boot, 4 static… */
  protocol: number;
  /** RT_SCOPE_*: 0 universe, 253 link, 254 host. */
  scope: number;
  /** RTN_*: 1 unicast, 2 local, 3 broadcast… */
  type: number;
  metric: number | undefined;
  source: string | undefined;
}

function rtmsg(dstLength: number, table: number, protocol: number, scope: number, type: number): Buffer {
  const out = Buffer.alloc(RTMSG_LEN);
  out.writeUInt8(AF_INET, 0);
  out.writeUInt8(dstLength, 1);
  out.writeUInt8(table > 255 ? 0 : table, 4);
  out.writeUInt8(protocol, 5);
  out.writeUInt8(scope, 6);
  out.writeUInt8(type, 7);
  return out;
}

function describeRoute(route: RouteSpec): string {
  const via = route.gateway === undefined ? '' : ` via ${route.gateway}`;
  const dev = route.link === undefined ? '' : ` dev ${linkLabel(route.link)}`;
  return `add route ${route.dst ?? 'default'}${via}${dev}`;
}

/**
 * Adds an IPv4 route to the main table, as `ip route add` does (protocol boot). EEXIST when
 * the table already has a route to that destination with that metric.
 */
export function addRoute(socket: NetlinkSocket, route: RouteSpec): void {
  const operation = describeRoute(route);
  if (route.gateway === undefined && route.link === undefined)
    throw invalidArgument(operation, 'a route needs a gateway or a link');
  const dst =
    route.dst === undefined || route.dst === 'default'
      ? { address: Buffer.alloc(4), prefixLength: 0 }
      : parseIpv4Prefix(route.dst, operation);
  const scope = route.gateway === undefined ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  const parts = [rtmsg(dst.prefixLength, RT_TABLE_MAIN, RTPROT_BOOT, scope, RTN_UNICAST)];
  if (dst.prefixLength > 0) parts.push(attr(RTA_DST, dst.address));
  if (route.gateway !== undefined) parts.push(attr(RTA_GATEWAY, parseIpv4(route.gateway, operation)));
  if (route.source !== undefined) parts.push(attr(RTA_PREFSRC, parseIpv4(route.source, operation)));
  if (route.metric !== undefined) {
    if (!Number.isInteger(route.metric) || route.metric < 0 || route.metric > 0xffffffff)
      throw invalidArgument(operation, `not a metric: ${route.metric}`);
    parts.push(attrU32(RTA_PRIORITY, route.metric));
  }
  if (route.link !== undefined) parts.push(attrU32(RTA_OIF, resolveIndex(socket, route.link, operation)));
  socket.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, parts, operation);
}

export interface ListRoutesOptions {
  /** The routing table to list: a number, `main` (the default) or `all`. */
  table?: number | 'main' | 'all';
}

/** The IPv4 routes of the main table (or of another table, or of all). */
export function listRoutes(socket: NetlinkSocket, options: ListRoutesOptions = {}): RouteInfo[] {
  const table = options.table ?? 'main';
  const wanted = table === 'main' ? RT_TABLE_MAIN : table;
  const messages = socket.dump(RTM_GETROUTE, [rtmsg(0, 0, 0, 0, 0)], 'list routes');
  return messages
    .filter((message) => message.type === RTM_NEWROUTE)
    .map(decodeRoute)
    .filter((route): route is RouteInfo => route !== undefined)
    .filter((route) => wanted === 'all' || route.table === wanted);
}

function decodeRoute(message: NetlinkMessage): RouteInfo | undefined {
  const { payload } = message;
  if (payload.readUInt8(0) !== AF_INET) return undefined;
  const dstLength = payload.readUInt8(1);
  const attrs = decodeAttributes(payload, RTMSG_LEN);
  const dst = attrs.get(RTA_DST);
  const gateway = attrs.get(RTA_GATEWAY);
  const source = attrs.get(RTA_PREFSRC);
  return {
    dst: dstLength === 0 ? 'default' : `${formatIpv4(dst ?? Buffer.alloc(4))}/${dstLength}`,
    gateway: gateway?.length === 4 ? formatIpv4(gateway) : undefined,
    oif: attrNumber(attrs.get(RTA_OIF)),
    table: attrNumber(attrs.get(RTA_TABLE)) ?? payload.readUInt8(4),
    protocol: payload.readUInt8(5),
    scope: payload.readUInt8(6),
    type: payload.readUInt8(7),
    metric: attrNumber(attrs.get(RTA_PRIORITY)),
    source: source?.length === 4 ? formatIpv4(source) : undefined,
  };
}
