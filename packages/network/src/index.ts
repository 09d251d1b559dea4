export * from './firewall/index.js';
export * from './ipam/index.js';
export type { AddressInfo } from './netlink/address.js';
export { isNetlinkError, NetlinkError, type NetlinkErrorDetails } from './netlink/errors.js';
export type { BridgeOptions, LinkInfo, LinkRef, VethOptions } from './netlink/link.js';
export type { NetnsRef } from './netlink/netns.js';
export type { ListRoutesOptions, RouteInfo, RouteSpec } from './netlink/route.js';
export { adoptRtnetlink, openRtnetlink, Rtnetlink, type RtnetlinkOptions } from './netlink/rtnetlink.js';
