/**
 * A container's network, from its start to its end (docker's endpoint): what `launch` does
 * around the container's process.
 *
 *   before the process   the network (the default one made on first use), an address from its
 *                        pool, the host ports of -p held (bound by this process, the
 *                        container's owner: a port taken by anything else is refused before
 *                        the container exists, and no two containers get one), the container's
 *                        /etc/hosts and /etc/resolv.conf written
 *   at its sync point    a veth pair: the host end on the network's bridge, `eth0` made inside
 *                        the container's new network namespace with its address and the
 *                        default route through the gateway (rtnetlink, see @box/network);
 *                        firewall rules for its published ports; peers' /etc/hosts
 *   when it ends         the address back to the pool, its firewall rules removed, the ports'
 *                        sockets closed, peers' /etc/hosts rewritten. The veth pair goes with
 *                        the container's network namespace, by the kernel.
 *
 * Every step of the end is idempotent and also run by recovery and removal, so a container
 * whose owner was SIGKILLed leaves no address held and no rule behind (see releaseNetwork).
 *
 * With `--network slirp4netns` (../network/slirp4netns.ts) there is no bridge, pool or rule: the
 * host ports of -p are checked (and free ones picked) before the process, and at its sync point
 * slirp4netns makes tap0 in its network namespace and publishes the ports through its API
 * socket. It ends with the container's first process by itself; release, removal and recovery
 * end it too (stopSlirp4netnsIn).
 */

import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import {
  closeSync,
  constants,
  ftruncateSync,
  openSync,
  readFileSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { hostname as hostHostname } from 'node:os';
import { join } from 'node:path';
import { isIpamError, type NetnsRef, openRtnetlink } from '@box/network';
import { EngineError } from '../errors.js';
import {
  isSlirpMode,
  parseSlirpMode,
  type SlirpOptions,
  type SlirpProcess,
  slirpAddresses,
  startSlirp4netns,
  stopSlirp4netnsIn,
} from '../network/slirp4netns.js';
import type { Spec } from '../spec.js';
import type { EngineContext } from './context.js';
import { hostsFile, resolvConf } from './etc-files.js';
import { addContainerRules, ensureNetworkRules, removeContainerRules } from './firewall.js';
import { ensureBridge, type NetworkRecord, Networks } from './networks.js';
import { processStartTime } from './process-info.js';
import { ROOTLESS_DEFAULT_NETWORK } from './rootless.js';
import type { ContainerRecord, PortBinding } from './types.js';

/** The container's place on one network while it runs (docker's EndpointSettings). */
export interface NetworkEndpoint {
  networkId: string;
  ipAddress: string;
  prefixLength: number;
  gateway: string;
  macAddress: string;
  /** Its interface inside (eth0), and the host end of its veth pair. */
  interface: string;
  hostInterface: string;
}

/** A published port with the host port it got. */
export interface PublishedPort extends PortBinding {
  hostPort: number;
}

export interface NetworkSettings {
  networks: Record<string, NetworkEndpoint>;
  ports: PublishedPort[];
}

/** The /etc files a container's network gives it, in its directory. */
export const ETC_FILES = ['hosts', 'resolv.conf', 'hostname'] as const;

/** What `--network` names: a mode, or a network. */
export type NetworkMode =
  | { kind: 'none' }
  | { kind: 'host' }
  | { kind: 'container'; ref: string }
  | { kind: 'slirp4netns'; options: SlirpOptions }
  | { kind: 'network'; name: string };

/**
 * The network of a container created without --network: docker's default bridge for root. An
 * ordinary user can make no bridge, veth or firewall rule, so theirs is slirp4netns (as podman's).
 */
export function defaultNetworkMode(options: { rootless: boolean }): string {
  return options.rootless ? ROOTLESS_DEFAULT_NETWORK : 'bridge';
}

export function parseNetworkMode(value = 'bridge'): NetworkMode {
  if (value === 'none') return { kind: 'none' };
  if (value === 'host') return { kind: 'host' };
  if (isSlirpMode(value)) return { kind: 'slirp4netns', options: parseSlirpMode(value) };
  if (value.startsWith('container:')) {
    const ref = value.slice('container:'.length);
    if (!ref) throw new EngineError('EINVAL', `invalid --network "${value}": no container named`);
    return { kind: 'container', ref };
  }
  return { kind: 'network', name: value === 'default' ? 'bridge' : value };
}

/** 02:42 and the address, as docker derives a container's MAC. */
export function macOf(address: string): string {
  return ['02', '42', ...address.split('.').map((b) => Number(b).toString(16).padStart(2, '0'))].join(':');
}

/**
 * Rewrites a file in place (a bind mount holds its inode, see etc-files.ts): the new text
 * first, then the length, so that a reader (or a SIGKILL between the two) never sees it empty.
 * The file is the container's to write too: opened non-blocking and never through a link,
 * since its root may hold a lease on it (fcntl F_SETLEASE needs only ownership), which would
 * otherwise stall this process for the kernel's lease-break time; then it keeps what it has.
 */
function rewrite(path: string, text: string): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch (error) {
    if (
      (error as NodeJS.ErrnoException).code === 'EAGAIN' ||
      (error as NodeJS.ErrnoException).code === 'EWOULDBLOCK'
    )
      return;
    throw error;
  }
  try {
    const data = Buffer.from(text);
    writeSync(fd, data, 0, data.length, 0);
    ftruncateSync(fd, data.length);
  } finally {
    closeSync(fd);
  }
}

/** The container's /etc/hosts from its record and the pools: its addresses, its peers'. */
/**
 * What the /etc/hosts of a network's containers are made from, read once for all of them: a
 * start rewrites every peer's file, and reading every peer's record for each peer made a start
 * on a network of n containers read n² records.
 */
class PeerView {
  private readonly pools = new Map<string, Map<string, string> | null>();
  private readonly records = new Map<string, ContainerRecord | null>();

  constructor(
    private readonly ctx: EngineContext,
    private readonly networks: Networks,
  ) {}

  inUse(network: string): Map<string, string> | null {
    if (!this.pools.has(network)) {
      let inUse: Map<string, string> | null;
      try {
        inUse = this.networks.ipam.inUse(network);
      } catch {
        inUse = null;
      }
      this.pools.set(network, inUse);
    }
    return this.pools.get(network)!;
  }

  record(id: string): ContainerRecord | null {
    if (!this.records.has(id)) {
      let record: ContainerRecord | null;
      try {
        record = this.ctx.store.read(id);
      } catch {
        record = null; // gone meanwhile
      }
      this.records.set(id, record);
    }
    return this.records.get(id)!;
  }
}

export function writeHosts(
  ctx: EngineContext,
  networks: Networks,
  record: ContainerRecord,
  view = new PeerView(ctx, networks),
): void {
  const path = join(ctx.store.dir(record.id), 'hosts');
  const addresses: string[] = [];
  const peers: { ip: string; names: string[] }[] = [];
  const mode = parseNetworkMode(record.networkMode);
  if (mode.kind === 'slirp4netns') addresses.push(slirpAddresses(mode.options).address);
  for (const name of record.networks ?? []) {
    const inUse = view.inUse(name);
    if (!inUse) continue;
    const own = inUse.get(record.id);
    if (own) addresses.push(own);
    // docker's default bridge has no name resolution; user-defined networks do.
    if (name === 'bridge' || !own) continue;
    for (const [id, ip] of inUse) {
      if (id === record.id) continue;
      const peer = view.record(id);
      if (peer) peers.push({ ip, names: [peer.name, id.slice(0, 12)] });
    }
  }
  const spec = ctx.store.readSpec(record.id);
  try {
    rewrite(
      path,
      hostsFile({
        // No name of its own in the host's UTS namespace (--uts host): the host's.
        hostname:
          spec.hostname ??
          (spec.linux?.namespaces?.some((n) => n.type === 'uts') ? record.id.slice(0, 12) : hostHostname()),
        addresses,
        extraHosts: record.networkOptions?.extraHosts,
        peers,
      }),
    );
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** Rewrites /etc/hosts of every other running container on the user-defined `networks`. */
function refreshPeers(
  ctx: EngineContext,
  networks: Networks,
  names: readonly string[],
  except: string,
): void {
  const seen = new Set<string>([except]);
  const view = new PeerView(ctx, networks);
  for (const name of names) {
    if (name === 'bridge') continue;
    const inUse = view.inUse(name);
    if (!inUse) continue;
    for (const id of inUse.keys()) {
      if (seen.has(id)) continue;
      seen.add(id);
      const peer = view.record(id);
      if (!peer) continue;
      try {
        writeHosts(ctx, networks, peer, view);
      } catch {
        // removed meanwhile
      }
    }
  }
}

interface HeldPort {
  binding: PublishedPort;
  close(): void;
}

/**
 * Binds a published port on the host and keeps it bound while the container runs: it is the
 * port's claim (EADDRINUSE for anything else, another container included), and goes when this
 * process does. Traffic to it never reaches the socket: box's DNAT rules send it to the
 * container before the host's socket lookup.
 */
async function holdPort(binding: PortBinding): Promise<HeldPort> {
  const host = binding.hostIp ?? '0.0.0.0';
  const held = await bindPort(host, binding.hostPort ?? 0, binding.protocol);
  const port = held.port;
  // The port's IPv6 twin too (:: for every address, ::1 for 127.0.0.1): clients of
  // `localhost:PORT` try ::1 first, where another local user could otherwise listen.
  const twin = host === '0.0.0.0' ? '::' : host === '127.0.0.1' ? '::1' : undefined;
  let six: { close(): void } | undefined;
  if (twin) {
    try {
      six = await bindPort(twin, port, binding.protocol);
    } catch (error) {
      // A host without IPv6 has no such twin to take.
      if (
        !['EAFNOSUPPORT', 'EADDRNOTAVAIL'].includes(
          ((error as EngineError).cause as NodeJS.ErrnoException)?.code ?? '',
        )
      ) {
        held.close();
        throw error;
      }
    }
  }
  return {
    binding: { ...binding, hostPort: port },
    close: () => {
      held.close();
      six?.close();
    },
  };
}

/** The first port an ordinary user may bind here (Linux's default 1024). */
function unprivilegedPortStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim());
  } catch {
    return 1024;
  }
}

/** One bound socket (listening for tcp); its errors as docker words them. */
async function bindPort(
  host: string,
  wanted: number,
  protocol: 'tcp' | 'udp',
): Promise<{ port: number; close(): void }> {
  const v6 = host.includes(':');
  const failed = (error: NodeJS.ErrnoException) =>
    new EngineError(
      error.code === 'EADDRINUSE' ? 'EPORTINUSE' : 'EINVAL',
      error.code === 'EADDRINUSE'
        ? `Bind for ${v6 ? `[${host}]` : host}:${wanted} failed: port is already allocated`
        : error.code === 'EACCES'
          ? `cannot publish ${host}:${wanted}/${protocol}: permission denied (a port below ${unprivilegedPortStart()} needs root on this host: net.ipv4.ip_unprivileged_port_start)`
          : `cannot publish ${host}:${wanted}/${protocol}: ${error.message}`,
      { cause: error },
    );
  if (protocol === 'udp') {
    const socket: UdpSocket = createSocket({ type: v6 ? 'udp6' : 'udp4', reuseAddr: false, ipv6Only: v6 });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', (error) => reject(failed(error)));
      socket.bind({ address: host, port: wanted, exclusive: true }, () => resolve());
    });
    socket.on('error', () => undefined);
    socket.unref();
    return { port: socket.address().port, close: () => socket.close() };
  }
  // A connection that reaches the socket (one to the IPv6 twin, which no rule forwards) is closed
  // at once: accepted and kept, each would hold one of this process's fds for as long as any local
  // user liked.
  const server: Server = createServer({ pauseOnConnect: true }, (socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(failed(error)));
    server.listen({ host, port: wanted, exclusive: true, ipv6Only: v6 }, () => resolve());
  });
  server.on('error', () => undefined);
  server.unref();
  return { port: (server.address() as { port: number }).port, close: () => server.close() };
}

/**
 * A host port for slirp4netns to publish, before the container exists: a given one checked free
 * (docker's words when it is not), or a free one picked for `-p PORT`. slirp4netns binds it
 * itself later, so it is not held meanwhile: another process may take it first, which the
 * publication then reports.
 */
async function probePort(binding: PortBinding): Promise<PublishedPort> {
  const probe = await bindPort(binding.hostIp ?? '0.0.0.0', binding.hostPort ?? 0, binding.protocol);
  probe.close();
  await new Promise((resolve) => setImmediate(resolve));
  return { ...binding, hostPort: probe.port };
}

/** What a starting container holds of the network until `release`. */
export class ContainerNetwork {
  private readonly held: HeldPort[] = [];
  /** Its networks in order: the first one's gateway is its default route, eth0 its interface. */
  private readonly endpoints: { network: NetworkRecord; address: string }[] = [];
  private released = false;
  /** `container:` mode: the other container's network namespace, open until the child joined it. */
  private joinedNetns: number | undefined;
  /** The container's own network namespace, held from its start to `release` (see there). */
  private ownNetns: number | undefined;
  /** --network slirp4netns: its options and ports (checked before the process), its process. */
  private slirp: { options: SlirpOptions; ports: PublishedPort[]; process?: SlirpProcess } | undefined;

  private constructor(
    private readonly ctx: EngineContext,
    private readonly networks: Networks,
    private readonly record: ContainerRecord,
  ) {}

  /**
   * Before the process: the address and ports taken, the /etc files written, and the spec's
   * network namespace set for `container:` mode. Throws with nothing kept on failure.
   */
  static async prepare(ctx: EngineContext, record: ContainerRecord, spec: Spec): Promise<ContainerNetwork> {
    const networks = new Networks(ctx.layout);
    const self = new ContainerNetwork(ctx, networks, record);
    try {
      await self.take(spec);
    } catch (error) {
      await self.release();
      throw error;
    }
    return self;
  }

  private async take(spec: Spec): Promise<void> {
    const { ctx, networks, record } = this;
    const mode = parseNetworkMode(record.networkMode);
    const dir = ctx.store.dir(record.id);
    if (mode.kind === 'container') {
      const other = ctx.store.find(mode.ref);
      const fd = openNetns(other);
      if (fd === undefined)
        throw new EngineError('ESTATE', `cannot join network of a non running container: ${mode.ref}`);
      this.joinedNetns = fd;
      // The namespace held open here, not the other container's pid: that pid could be another
      // process's by the time the new one joins. start opens the path in this process.
      const ns = spec.linux?.namespaces?.find((n) => n.type === 'network');
      if (ns) ns.path = `/proc/self/fd/${fd}`;
      return;
    }
    if (mode.kind === 'host') {
      copyHostFile('/etc/hosts', join(dir, 'hosts'));
      rewriteIfThere(join(dir, 'resolv.conf'), readHost('/etc/resolv.conf'));
      return;
    }
    if (mode.kind === 'slirp4netns') {
      const options = record.networkOptions ?? {};
      // slirp4netns's own resolver, which forwards to the host's (as podman writes it).
      const dns = options.dns?.length ? options.dns : [slirpAddresses(mode.options).dns];
      rewriteIfThere(join(dir, 'resolv.conf'), resolvConf(readHost('/etc/resolv.conf'), { ...options, dns }));
      writeHosts(ctx, networks, record);
      const ports: PublishedPort[] = [];
      for (const binding of record.ports ?? []) ports.push(await probePort(binding));
      this.slirp = { options: mode.options, ports };
      return;
    }
    rewriteIfThere(
      join(dir, 'resolv.conf'),
      resolvConf(readHost('/etc/resolv.conf'), record.networkOptions ?? {}),
    );
    if (mode.kind === 'none') {
      writeHosts(ctx, networks, record);
      return;
    }
    const names = record.networks?.length ? record.networks : [mode.name];
    for (const [i, name] of names.entries()) {
      const network = name === 'bridge' ? networks.ensureDefault() : networks.get(name);
      const ip = i === 0 ? record.networkOptions?.ip : undefined;
      this.endpoints.push({ network, address: allocate(networks, network, record.id, ip) });
    }
    for (const binding of record.ports ?? []) this.held.push(await holdPort(binding));
    writeHosts(ctx, networks, record);
  }

  /**
   * At the sync point: the container's interfaces and routes, the firewall rules. `diesWithCaller`:
   * the container is killed with this process (a foreground box), and so is its slirp4netns.
   */
  async connect(pid: number, diesWithCaller = false): Promise<void> {
    // The child has joined its namespaces by now.
    this.closeJoinedNetns();
    if (this.slirp) {
      const slirp = this.slirp;
      slirp.process = await startSlirp4netns(
        this.ctx.store.dir(this.record.id),
        pid,
        slirp.options,
        diesWithCaller ? 'caller' : 'container',
      );
      for (const port of slirp.ports) {
        const hostIp = port.hostIp ?? '0.0.0.0';
        try {
          await slirp.process.addPort({ ...port, hostIp });
        } catch (error) {
          // Taken since it was checked? Then docker's words for it, else slirp4netns's.
          await probePort(port);
          throw error;
        }
      }
      return;
    }
    if (this.endpoints.length > 0) this.ownNetns = openSync(`/proc/${pid}/ns/net`, 'r');
    for (const [index, { network, address }] of this.endpoints.entries()) {
      // Our own child, stopped at its sync point: its pid is its own.
      plugEndpoint({ pid }, this.record.id, network, address, index, { hairpin: this.held.length > 0 });
      await ensureNetworkRules(network, this.networks.dir);
    }
    const main = this.endpoints[0];
    if (main) await addContainerRules(this.record.id, main.address, this.ports());
    refreshPeers(
      this.ctx,
      this.networks,
      this.endpoints.map((e) => e.network.name),
      this.record.id,
    );
  }

  private closeJoinedNetns(): void {
    if (this.joinedNetns === undefined) return;
    closeSync(this.joinedNetns);
    this.joinedNetns = undefined;
  }

  private ports(): PublishedPort[] {
    return this.slirp ? this.slirp.ports : this.held.map((h) => h.binding);
  }

  /** What `inspect` shows while it runs (docker's NetworkSettings). */
  settings(): NetworkSettings | undefined {
    if (this.slirp) return { networks: {}, ports: this.ports() };
    if (this.endpoints.length === 0) return undefined;
    return {
      networks: Object.fromEntries(
        this.endpoints.map(({ network, address }, index) => [
          network.name,
          endpointOf(this.record.id, network, address, index),
        ]),
      ),
      ports: this.ports(),
    };
  }

  /** Gives everything back (idempotent). */
  async release(): Promise<void> {
    this.closeJoinedNetns();
    if (this.released) return;
    this.released = true;
    await this.slirp?.process?.stop();
    const published = this.held.length > 0;
    for (const port of this.held.splice(0)) port.close();
    const cleared = this.clearOwnNetns();
    // Every pool: networks connected since the start are not in the record it started with.
    await releaseNetwork(this.ctx, this.record.id, {
      published,
      networks: this.networks,
      keepInterfaces: cleared,
    });
  }

  /**
   * Takes the addresses off the interfaces in the container's network namespace, then lets go of
   * it: the kernel deletes its veth pairs with it once nobody holds it, off this path (deleting a
   * veth here costs 15-35 ms of the kernel's waiting, most of what a network costs a `run --rm`).
   * Without its addresses, a namespace something else still holds (a `container:` joiner,
   * `nsenter`) keeps no address the pools hand out again. False when it was not held (the
   * container was adopted by another service after a crash, or never attached).
   */
  private clearOwnNetns(): boolean {
    const fd = this.ownNetns;
    if (fd === undefined) return false;
    this.ownNetns = undefined;
    try {
      const inside = openRtnetlink({ netns: { fd } });
      try {
        for (const a of inside.listAddresses())
          if (a.scope !== RT_SCOPE_HOST) inside.deleteAddress(a.index, a.cidr);
      } finally {
        inside.close();
      }
      return true;
    } catch {
      return false; // the veth pairs are then deleted by name, as for an adopted container
    } finally {
      closeSync(fd);
    }
  }
}

/** An address on `network` for the container; the pool's refusal as the engine's. */
function allocate(networks: Networks, network: NetworkRecord, id: string, ip?: string): string {
  let address: string;
  try {
    address = networks.ipam.allocate(network.name, id, { ip });
  } catch (error) {
    if (isIpamError(error, 'EIPAMNOPOOL')) throw noSuchNetwork(network.name);
    throw new EngineError('EINVAL', (error as Error).message);
  }
  // Removed meanwhile (its record goes under the pools' lock before its pool: see
  // Networks.remove), or a removal cut short left the pool alone: not a network to join.
  if (!networks.has(network.name)) {
    networks.ipam.release(network.name, id);
    throw noSuchNetwork(network.name);
  }
  return address;
}

const noSuchNetwork = (name: string) => new EngineError('ENONETWORK', `network ${name} not found`);

/** rtnetlink's scope of loopback addresses (127.0.0.1 on lo), which stay. */
const RT_SCOPE_HOST = 254;

/** The host end of the container's veth pair on its index-th network. */
const hostInterfaceOf = (id: string, index: number) => `vb${id.slice(0, 12)}${index}`;

function endpointOf(id: string, network: NetworkRecord, address: string, index: number): NetworkEndpoint {
  return {
    networkId: network.id,
    ipAddress: address,
    prefixLength: Number(network.subnet.split('/')[1]),
    gateway: network.gateway,
    macAddress: macOf(address),
    interface: `eth${index}`,
    hostInterface: hostInterfaceOf(id, index),
  };
}

/**
 * The container's place on a network: a veth pair, its host end on the network's bridge, the
 * other made as eth<index> directly in the container's network namespace (so no name of the
 * host's is ever taken or seen there), up with its address; the default route through the
 * gateway on its first network (unless internal: docker's --internal leads nowhere else).
 */
function plugEndpoint(
  netns: NetnsRef,
  id: string,
  network: NetworkRecord,
  address: string,
  index: number,
  options: { hairpin?: boolean } = {},
): void {
  const prefix = Number(network.subnet.split('/')[1]);
  const hostInterface = hostInterfaceOf(id, index);
  const inner = `eth${index}`;
  const nl = openRtnetlink();
  try {
    ensureBridge(nl, network);
    nl.createVethPair(hostInterface, inner, {
      peerNetns: netns,
      master: network.bridge,
      up: true,
      peerMac: macOf(address),
    });
    // Hairpin: a container reaching its own published port through the host's address is
    // DNATed back out of the bridge port it came in by, which a bridge refuses without it.
    if (options.hairpin) writeFileSync(`/sys/class/net/${hostInterface}/brport/hairpin_mode`, '1');
  } finally {
    nl.close();
  }
  const inside = openRtnetlink({ netns });
  try {
    inside.addAddress(inner, `${address}/${prefix}`);
    inside.setLinkUp(inner);
    if (index === 0 && !network.internal) inside.addRoute({ gateway: network.gateway });
  } finally {
    inside.close();
  }
}

/** The container's running process, checked against its start time (never a pid reused since). */
function runningPid(record: ContainerRecord): number | undefined {
  if (record.status !== 'running' || !record.pid || record.pidStartTime === undefined) return undefined;
  return processStartTime(record.pid) === record.pidStartTime ? record.pid : undefined;
}

/**
 * The running container's network namespace, open (the caller closes it), or undefined when it
 * does not run. Its pid is checked again after the open: the fd holds whatever namespace that
 * pid had, and the same start time then means it was the container's, not a process's that got
 * the pid since (the host's own network, say).
 */
function openNetns(record: ContainerRecord): number | undefined {
  const pid = runningPid(record);
  if (pid === undefined) return undefined;
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/ns/net`, 'r');
  } catch {
    return undefined;
  }
  if (runningPid(record) === pid) return fd;
  closeSync(fd);
  return undefined;
}

/**
 * docker's network connect: the container joins `network` from its next start, and at once
 * when it runs (another interface, eth1 and on; its default route stays on its first network).
 */
export async function connectNetwork(
  ctx: EngineContext,
  record: ContainerRecord,
  ref: string,
  options: { ip?: string } = {},
): Promise<void> {
  const mode = parseNetworkMode(record.networkMode);
  if (mode.kind !== 'network')
    throw new EngineError(
      'EINVAL',
      `container ${record.name} is in network mode ${record.networkMode}: it cannot join a network`,
    );
  const networks = new Networks(ctx.layout);
  const network = ref === 'bridge' ? networks.ensureDefault() : networks.get(ref);
  const joined = record.networks?.length ? record.networks : [mode.name];
  if (joined.includes(network.name))
    throw new EngineError(
      'EINVAL',
      `endpoint with name ${record.name} already exists in network ${network.name}`,
    );
  if (options.ip !== undefined && network.name === 'bridge')
    throw new EngineError('EINVAL', 'user specified IP address is supported on user defined networks only');
  const netns = openNetns(record);
  const settings = record.networkSettings;
  if (netns === undefined) {
    ctx.store.update(record.id, { networks: [...joined, network.name] });
    return;
  }
  const used = new Set(Object.values(settings?.networks ?? {}).map((e) => e.interface));
  let index = 0;
  while (used.has(`eth${index}`)) index++;
  let address: string;
  try {
    address = allocate(networks, network, record.id, options.ip);
    try {
      plugEndpoint({ fd: netns }, record.id, network, address, index);
      await ensureNetworkRules(network, networks.dir);
    } catch (error) {
      unplug(record.id, index);
      networks.ipam.release(network.name, record.id);
      throw error;
    }
  } finally {
    closeSync(netns);
  }
  const updated = ctx.store.update(record.id, {
    networks: [...joined, network.name],
    networkSettings: {
      networks: { ...settings?.networks, [network.name]: endpointOf(record.id, network, address, index) },
      ports: settings?.ports ?? [],
    },
  });
  if (updated) writeHosts(ctx, networks, updated);
  refreshPeers(ctx, networks, [network.name], record.id);
}

/** docker's network disconnect: the container leaves `network` (at once when it runs). */
export async function disconnectNetwork(
  ctx: EngineContext,
  record: ContainerRecord,
  ref: string,
): Promise<void> {
  const networks = new Networks(ctx.layout);
  const network = ref === 'bridge' ? networks.ensureDefault() : networks.get(ref);
  const mode = parseNetworkMode(record.networkMode);
  const joined = record.networks?.length ? record.networks : mode.kind === 'network' ? [mode.name] : [];
  if (!joined.includes(network.name))
    throw new EngineError('EINVAL', `container ${record.name} is not connected to network ${network.name}`);
  const endpoint = record.networkSettings?.networks[network.name];
  if (endpoint && runningPid(record) !== undefined) unplug(record.id, Number(endpoint.interface.slice(3)));
  // Its published ports lead to its address there: gone with it, before the address can be
  // handed to another container.
  if (endpoint?.interface === 'eth0' && record.ports?.length) await removeContainerRules(record.id);
  networks.ipam.release(network.name, record.id);
  const { [network.name]: _gone, ...rest } = record.networkSettings?.networks ?? {};
  const updated = ctx.store.update(record.id, {
    networks: joined.filter((n) => n !== network.name),
    ...(record.networkSettings ? { networkSettings: { ...record.networkSettings, networks: rest } } : {}),
  });
  if (updated) writeHosts(ctx, networks, updated);
  refreshPeers(ctx, networks, [network.name], record.id);
}

/** Deletes the host ends of the container's veth pairs that are left (vb<12 hex of its id><n>). */
function removeHostInterfaces(id: string): void {
  const prefix = `vb${id.slice(0, 12)}`;
  const nl = openRtnetlink();
  try {
    for (const link of nl.listLinks())
      if (link.name.startsWith(prefix) && /^\d$/.test(link.name.slice(prefix.length))) {
        try {
          nl.deleteLink(link.index);
        } catch {
          // gone meanwhile
        }
      }
  } finally {
    nl.close();
  }
}

/** Deletes the host end of a veth pair (its peer in the container goes with it). */
function unplug(id: string, index: number): void {
  const nl = openRtnetlink();
  try {
    nl.deleteLink(hostInterfaceOf(id, index));
  } catch {
    // gone already
  } finally {
    nl.close();
  }
}

/**
 * Gives back what a container holds of the networks, whoever held it: its slirp4netns, its
 * firewall rules, its addresses; then its peers' /etc/hosts. Idempotent: run when it ends, by
 * recovery and by removal. Cheap when it holds nothing (recovery asks for every created
 * container): its slirp4netns pid file and the pools of its networks are read, nothing is
 * locked or spawned.
 */
export async function releaseNetwork(
  ctx: EngineContext,
  id: string,
  options: {
    published?: boolean;
    networks?: Networks;
    names?: readonly string[];
    /** The container's addresses are off its interfaces and its namespace is let go: no veth to delete. */
    keepInterfaces?: boolean;
  } = {},
): Promise<void> {
  // --network slirp4netns: its process and API socket (nothing to do without its pid file).
  await stopSlirp4netnsIn(ctx.store.dir(id));
  const networks = options.networks ?? new Networks(ctx.layout);
  let holds: boolean;
  try {
    const names = options.names ?? networks.ipam.pools().map((p) => p.network);
    holds = names.some((name) => networks.ipam.inUse(name).has(id));
  } catch {
    holds = false; // no pools yet
  }
  if (!holds) return;
  // Rules first: while an address is held, a later clean-up comes back for them.
  if (options.published ?? true) await removeContainerRules(id);
  // Its veth pairs go with its network namespace, unless a `container:` joiner keeps that
  // alive: then eth0 would keep an address the pool hands out again.
  if (!options.keepInterfaces) removeHostInterfaces(id);
  const released = networks.ipam.releaseAll(id);
  refreshPeers(
    ctx,
    networks,
    released.map((r) => r.network),
    id,
  );
}

function readHost(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function copyHostFile(from: string, to: string): void {
  rewriteIfThere(to, readHost(from));
}

function rewriteIfThere(path: string, text: string): void {
  try {
    rewrite(path, text);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** The host's name, for --network host without --hostname (as docker). */
export function hostModeHostname(): string {
  return hostHostname();
}
