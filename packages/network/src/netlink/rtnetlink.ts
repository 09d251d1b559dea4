/**
 * The rtnetlink client: one NETLINK_ROUTE socket, in this thread's network namespace or in
 * another one (see netns.ts), and the operations box needs on it. Every call is synchronous
 * (see socket.ts) and throws a NetlinkError naming what it was doing.
 */
import { type AddressInfo, addAddress, deleteAddress, listAddresses } from './address.js';
import {
  type BridgeOptions,
  createBridge,
  createVethPair,
  deleteLink,
  getLink,
  type LinkInfo,
  type LinkRef,
  listLinks,
  setLinkUp,
  setMac,
  setMaster,
  setMtu,
  type VethOptions,
} from './link.js';
import type { NetnsRef } from './netns.js';
import { addRoute, type ListRoutesOptions, listRoutes, type RouteInfo, type RouteSpec } from './route.js';
import { NetlinkSocket } from './socket.js';

export interface RtnetlinkOptions {
  /**
   * The network namespace to work in (a container's: `{ pid }`); the calling thread's when
   * left out. The socket is made there once; the thread itself never stays there.
   */
  netns?: NetnsRef;
  /** How long one receive may wait for the kernel, in ms (10 000 by default). */
  timeoutMs?: number;
}

export class Rtnetlink {
  /** The socket's fd (close-on-exec). */
  readonly fd: number;
  readonly #socket: NetlinkSocket;

  /** @internal use openRtnetlink or adoptRtnetlink */
  constructor(socket: NetlinkSocket) {
    this.#socket = socket;
    this.fd = socket.fd;
  }

  /** Creates a bridge; EEXIST when a link of that name exists (of any kind). */
  createBridge(name: string, options?: BridgeOptions): void {
    createBridge(this.#socket, name, options);
  }

  /**
   * Creates a veth pair: `hostName` here, `peerName` in `options.peerNetns` (created there
   * directly, so it may be called `eth0`). EEXIST when either name is taken where it goes.
   */
  createVethPair(hostName: string, peerName: string, options?: VethOptions): void {
    createVethPair(this.#socket, hostName, peerName, options);
  }

  /** Deletes a link (both ends, for a veth); ENODEV when there is none. */
  deleteLink(link: LinkRef): void {
    deleteLink(this.#socket, link);
  }

  setLinkUp(link: LinkRef): void {
    setLinkUp(this.#socket, link, true);
  }

  setLinkDown(link: LinkRef): void {
    setLinkUp(this.#socket, link, false);
  }

  /** Attaches a link to a bridge; `null` detaches it. */
  setMaster(link: LinkRef, bridge: LinkRef | null): void {
    setMaster(this.#socket, link, bridge);
  }

  setMac(link: LinkRef, mac: string): void {
    setMac(this.#socket, link, mac);
  }

  setMtu(link: LinkRef, mtu: number): void {
    setMtu(this.#socket, link, mtu);
  }

  /** A link's index; ENODEV when there is no link of that name. */
  linkIndex(name: string): number {
    return getLink(this.#socket, name).index;
  }

  /** One link; ENODEV when there is none. */
  getLink(link: LinkRef): LinkInfo {
    return getLink(this.#socket, link);
  }

  listLinks(): LinkInfo[] {
    return listLinks(this.#socket);
  }

  /** Adds an IPv4 address (`10.1.0.2/24`) to a link; EEXIST when it has it already. */
  addAddress(link: LinkRef, cidr: string): void {
    addAddress(this.#socket, link, cidr);
  }

  /** Removes an IPv4 address (`10.1.0.2/24`) from a link; EADDRNOTAVAIL when it does not have it. */
  deleteAddress(link: LinkRef, cidr: string): void {
    deleteAddress(this.#socket, link, cidr);
  }

  /** IPv4 addresses, of every link or of one. */
  listAddresses(link?: LinkRef): AddressInfo[] {
    return listAddresses(this.#socket, link);
  }

  /** Adds an IPv4 route to the main table; EEXIST when it is there. */
  addRoute(route: RouteSpec): void {
    addRoute(this.#socket, route);
  }

  /** IPv4 routes of the main table (`{ table: 'all' }` for every table). */
  listRoutes(options?: ListRoutesOptions): RouteInfo[] {
    return listRoutes(this.#socket, options);
  }

  /** Closes the socket (once; later calls do nothing). */
  close(): void {
    this.#socket.close();
  }
}

/** Opens an rtnetlink socket in this thread's network namespace, or in `options.netns`. */
export function openRtnetlink(options: RtnetlinkOptions = {}): Rtnetlink {
  return new Rtnetlink(NetlinkSocket.open({ netns: options.netns, timeoutMs: options.timeoutMs }));
}

/**
 * Takes over a NETLINK_ROUTE socket opened elsewhere (by a container's start-up program, and
 * passed over SCM_RIGHTS, say); `close()` closes it. `where` (`in netns of pid 4242`) is
 * added to operations in error messages.
 */
export function adoptRtnetlink(fd: number, options: { where?: string; timeoutMs?: number } = {}): Rtnetlink {
  return new Rtnetlink(NetlinkSocket.adopt(fd, options.where ? ` ${options.where}` : '', options.timeoutMs));
}
