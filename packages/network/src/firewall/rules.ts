/**
 * box's nftables rules, as nft batch lines (text: nft names the failing line of a text batch,
 * not of a JSON one). Everything lives in one table of box's own (`table ip box`); no other
 * table is ever read or written.
 *
 * The table (written by ensureTable and by every addNetwork; a container's change that finds
 * no table makes it first):
 *   map published-addr  { ipv4_addr . inet_proto . inet_service : verdict }  hostIP.proto.port → jump ctr-<id>
 *   map published-any   { inet_proto . inet_service : verdict }              proto.port → jump ctr-<id>
 *   chain prerouting    nat, hook prerouting, dstnat:  to a local address: look the port up in both maps
 *   chain output        nat, hook output, -100:        the same for connections made on the host
 * Per container, `chain ctr-<id>`: its DNAT rules. The maps send a packet there by its port,
 * so however many containers publish ports, a new connection costs two map lookups, and the
 * kernel refuses a second container on a port already in a map (EEXIST): the port is taken.
 * Removing a container deletes its map elements (found in a listing) and its chain.
 *
 * Per network, three base chains of its own (a network has no map element to find, so its
 * removal needs no listing: one batch, idempotent):
 *   net-<name>-forward     filter, hook forward: what may cross the bridge (see networkBatch)
 *   net-<name>-postrouting nat, hook postrouting: masquerade (outbound, hairpin, localhost)
 *   net-<name>-guard       filter, hook prerouting, raw: drops 127.0.0.0/8 arriving on the bridge
 * Each base chain is a hook entry; the kernel allows 1024 per hook and network namespace,
 * shared with every other table, which bounds the number of networks (not of containers).
 */
import { tryParseIPv4 } from '../ipam/cidr.js';
import { FirewallError } from './errors.js';

export const DEFAULT_TABLE = 'box';

/** Network names and container ids: as nft identifiers after a `net-`/`ctr-` prefix. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** Interface names (IFNAMSIZ: 15 characters). */
const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const TABLE = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

export type Protocol = 'tcp' | 'udp';

export interface NetworkRules {
  /** The network's name (its chains are `net-<network>-…`). */
  network: string;
  /** Its bridge interface. */
  bridge: string;
  /** Its subnet (CIDR). */
  subnet: string;
  /** docker's `--internal`: no masquerade, and nothing crosses the bridge either way. */
  internal?: boolean;
}

export interface PublishedPort {
  /** The host address to publish on; any local address when absent or 0.0.0.0. */
  hostIp?: string;
  hostPort: number;
  containerPort: number;
  /** `tcp` when absent. */
  protocol?: Protocol;
}

export interface ContainerRules {
  containerId: string;
  /** The container's address on the network its ports are published from. */
  address: string;
  ports: readonly PublishedPort[];
}

interface Port {
  hostIp: string | null;
  hostPort: number;
  containerPort: number;
  protocol: Protocol;
}

export function checkTable(table: string): string {
  if (!TABLE.test(table)) throw invalid(`invalid table name ${JSON.stringify(table)}`);
  return table;
}

export function networkChains(network: string): string[] {
  return ['forward', 'postrouting', 'guard'].map((kind) => `net-${network}-${kind}`);
}

export function containerChain(containerId: string): string {
  return `ctr-${containerId}`;
}

/** The table, its two maps and its two dispatching base chains. Idempotent. */
export function skeletonBatch(table: string): string[] {
  const t = `ip ${checkTable(table)}`;
  const dispatch = (chain: string) => [
    `flush chain ${t} ${chain}`,
    `add rule ${t} ${chain} fib daddr type local ip daddr . meta l4proto . th dport vmap @published-addr`,
    `add rule ${t} ${chain} fib daddr type local meta l4proto . th dport vmap @published-any`,
  ];
  return [
    `add table ${t}`,
    `add map ${t} published-addr { type ipv4_addr . inet_proto . inet_service : verdict; }`,
    `add map ${t} published-any { type inet_proto . inet_service : verdict; }`,
    `add set ${t} bridges { type ifname; }`,
    // Before any DNAT: a packet to 127.0.0.0/8 that did not come from the host itself (lo) is
    // one no real sender makes; left alone, prerouting would DNAT it to a container published
    // on 127.0.0.1 before the kernel's martian check ever saw it (from the LAN, say).
    `add chain ${t} loopback-guard { type filter hook prerouting priority raw; policy accept; }`,
    `flush chain ${t} loopback-guard`,
    `add rule ${t} loopback-guard iifname != "lo" ip daddr 127.0.0.0/8 drop`,
    `add chain ${t} prerouting { type nat hook prerouting priority dstnat; policy accept; }`,
    ...dispatch('prerouting'),
    `add chain ${t} output { type nat hook output priority -100; policy accept; }`,
    ...dispatch('output'),
  ];
}

/**
 * Forwarding limited to box's bridges, for a host where box turned `ip_forward` on (it was
 * off): the host then routes containers' traffic, and nothing else, between its interfaces,
 * as docker's FORWARD policy DROP does. Each network's own forward chain filters further.
 */
export function restrictForwardingBatch(table: string): string[] {
  const t = `ip ${checkTable(table)}`;
  return [
    `add chain ${t} forward { type filter hook forward priority filter - 10; policy drop; }`,
    `flush chain ${t} forward`,
    `add rule ${t} forward ct state established,related accept`,
    `add rule ${t} forward iifname @bridges accept`,
    `add rule ${t} forward oifname @bridges accept`,
  ];
}

/**
 * A network's chains, replacing any it had. Not internal (docker's rules):
 * - forward: into the bridge only replies (established/related), traffic between its own
 *   containers and published ports (DNATed); anything else from outside is dropped, which
 *   also keeps other networks' containers out. Out of the bridge: everything.
 * - postrouting: the subnet's traffic leaving through any other interface is masqueraded
 *   (the host's address on that interface); DNATed traffic from the subnet back into the
 *   bridge is masqueraded too (hairpin: a container reaching a published port through the
 *   host's address must get the answer from that address, not straight from the peer);
 *   and so is traffic from 127.0.0.0/8 (the host reaching a published port through
 *   127.0.0.1: the container cannot answer a loopback address, and the kernel routes a
 *   loopback source onto the bridge only with `route_localnet`, see sysctl.ts).
 * - guard: with `route_localnet` on, the bridge would also accept packets to or from
 *   127.0.0.0/8 from containers (reaching the host's loopback-only services): dropped here,
 *   before connection tracking, as no legitimate packet carries them on the bridge.
 * Internal: the bridge's containers reach each other and the host, nothing else either way.
 */
export function networkBatch(table: string, rules: NetworkRules): string[] {
  const network = checkName(rules.network, 'network name');
  const bridge = checkIfname(rules.bridge);
  const subnet = checkSubnet(rules.subnet);
  const t = `ip ${checkTable(table)}`;
  const [forward, postrouting, guard] = networkChains(network) as [string, string, string];
  const b = `"${bridge}"`;
  const lines = [
    `add element ${t} bridges { ${b} }`,
    `add chain ${t} ${forward} { type filter hook forward priority filter; policy accept; }`,
    `flush chain ${t} ${forward}`,
  ];
  if (rules.internal) {
    lines.push(
      `add rule ${t} ${forward} iifname ${b} oifname ${b} accept`,
      `add rule ${t} ${forward} iifname ${b} drop`,
      `add rule ${t} ${forward} oifname ${b} drop`,
    );
  } else {
    lines.push(
      `add rule ${t} ${forward} oifname ${b} ct state established,related accept`,
      `add rule ${t} ${forward} oifname ${b} iifname ${b} accept`,
      `add rule ${t} ${forward} oifname ${b} ct status dnat accept`,
      `add rule ${t} ${forward} oifname ${b} drop`,
      `add rule ${t} ${forward} iifname ${b} accept`,
    );
  }
  lines.push(
    `add chain ${t} ${postrouting} { type nat hook postrouting priority srcnat; policy accept; }`,
    `flush chain ${t} ${postrouting}`,
  );
  if (!rules.internal) {
    lines.push(
      `add rule ${t} ${postrouting} ip saddr ${subnet} oifname != ${b} masquerade`,
      `add rule ${t} ${postrouting} oifname ${b} ip saddr ${subnet} ct status dnat masquerade`,
      `add rule ${t} ${postrouting} oifname ${b} ip saddr 127.0.0.0/8 masquerade`,
    );
  }
  lines.push(
    `add chain ${t} ${guard} { type filter hook prerouting priority raw; policy accept; }`,
    `flush chain ${t} ${guard}`,
    `add rule ${t} ${guard} iifname ${b} ip daddr 127.0.0.0/8 drop`,
    `add rule ${t} ${guard} iifname ${b} ip saddr 127.0.0.0/8 drop`,
  );
  return lines;
}

/** Deletes a network's chains; nothing to delete is no error (each is added before its delete). */
export function removeNetworkBatch(table: string, network: string, bridge?: string): string[] {
  const t = `ip ${checkTable(table)}`;
  checkName(network, 'network name');
  const element = bridge === undefined ? [] : [`"${checkIfname(bridge)}"`];
  return [
    ...element.flatMap((b) => [
      `add set ${t} bridges { type ifname; }`,
      `add element ${t} bridges { ${b} }`,
      `delete element ${t} bridges { ${b} }`,
    ]),
    ...networkChains(network).flatMap((chain) => [`add chain ${t} ${chain}`, `delete chain ${t} ${chain}`]),
  ];
}

/**
 * A container's chain and map elements. `create`: the chain must not exist yet (`create
 * chain` fails with EEXIST if the container published ports before, and the whole batch with
 * it: the caller then replaces them). `replace`: the chain is emptied and filled again (the
 * caller deletes the old map elements in the same batch).
 */
export function containerBatch(table: string, rules: ContainerRules, mode: 'create' | 'replace'): string[] {
  const containerId = checkName(rules.containerId, 'container id');
  const address = checkAddress(rules.address, 'container address');
  const ports = checkPorts(rules.ports);
  const t = `ip ${checkTable(table)}`;
  const chain = containerChain(containerId);
  if (ports.length === 0) return [];
  const lines =
    mode === 'create'
      ? [`create chain ${t} ${chain}`]
      : [`add chain ${t} ${chain}`, `flush chain ${t} ${chain}`];
  for (const port of ports) {
    const match = port.hostIp ? `ip daddr ${port.hostIp} ` : '';
    lines.push(
      `add rule ${t} ${chain} ${match}${port.protocol} dport ${port.hostPort} dnat to ${address}:${port.containerPort}`,
    );
  }
  for (const port of ports) lines.push(`add element ${t} ${elementText(port)} : jump ${chain} }`);
  return lines;
}

/** `published-any { tcp . 80` or `published-addr { 10.0.0.5 . tcp . 80` (the caller closes it). */
function elementText(port: { hostIp: string | null; protocol: Protocol; hostPort: number }): string {
  return port.hostIp
    ? `published-addr { ${port.hostIp} . ${port.protocol} . ${port.hostPort}`
    : `published-any { ${port.protocol} . ${port.hostPort}`;
}

/** docker's words for a host port in use; `hostIp` null means any address. */
export function portAllocated(hostIp: string | null, hostPort: number): FirewallError {
  return new FirewallError(
    'EPORTALLOCATED',
    `Bind for ${hostIp ?? '0.0.0.0'}:${hostPort} failed: port is already allocated`,
  );
}

/** The port an `add element` line of containerBatch publishes, for an error about it. */
export function portOfElementLine(line: string): { hostIp: string | null; hostPort: number } | null {
  const match = /^add element ip \S+ published-(addr|any) \{ (?:(\S+) \. )?(tcp|udp) \. (\d+) :/.exec(line);
  if (!match) return null;
  return { hostIp: match[1] === 'addr' ? match[2]! : null, hostPort: Number(match[4]) };
}

export interface ListedPort {
  /** null: any local address. */
  hostIp: string | null;
  protocol: Protocol;
  hostPort: number;
}

export interface ListedContainer {
  containerId: string;
  /** Whether its chain exists. */
  chain: boolean;
  /** The ports the maps send to it. */
  ports: ListedPort[];
}

/** What box's table holds. */
export interface FirewallListing {
  /** Whether the table exists at all. */
  exists: boolean;
  /** Every chain, with its hook (base chains) and number of rules. */
  chains: Array<{ name: string; hook: string | null; rules: number }>;
  /** Networks with at least one chain. */
  networks: string[];
  /** Containers with a chain or a map element. */
  containers: ListedContainer[];
}

/** Reads `nft -j list table ip TABLE` (null: no table). Unknown objects are ignored. */
export function parseListing(table: string, objects: readonly unknown[] | null): FirewallListing {
  const listing: FirewallListing = { exists: objects !== null, chains: [], networks: [], containers: [] };
  if (!objects) return listing;
  const containers = new Map<string, ListedContainer>();
  const container = (id: string) => {
    let entry = containers.get(id);
    if (!entry) {
      entry = { containerId: id, chain: false, ports: [] };
      containers.set(id, entry);
    }
    return entry;
  };
  const rules = new Map<string, number>();
  const networks = new Set<string>();
  for (const object of objects) {
    const rule = field(object, 'rule');
    if (rule && rule.table === table && typeof rule.chain === 'string') {
      rules.set(rule.chain, (rules.get(rule.chain) ?? 0) + 1);
    }
  }
  for (const object of objects) {
    const chain = field(object, 'chain');
    if (chain && chain.table === table && typeof chain.name === 'string') {
      const name = chain.name;
      listing.chains.push({
        name,
        hook: typeof chain.hook === 'string' ? chain.hook : null,
        rules: rules.get(name) ?? 0,
      });
      const net = /^net-(.+)-(forward|postrouting|guard)$/.exec(name);
      if (net && NAME.test(net[1]!)) networks.add(net[1]!);
      const ctr = /^ctr-(.+)$/.exec(name);
      if (ctr && NAME.test(ctr[1]!)) container(ctr[1]!).chain = true;
    }
    const map = field(object, 'map');
    if (map && map.table === table && (map.name === 'published-addr' || map.name === 'published-any')) {
      for (const element of Array.isArray(map.elem) ? map.elem : []) {
        const entry = parseElement(map.name, element);
        if (entry) container(entry.containerId).ports.push(entry.port);
      }
    }
  }
  listing.networks = [...networks].sort();
  listing.containers = [...containers.values()].sort((a, b) => (a.containerId < b.containerId ? -1 : 1));
  return listing;
}

/** Deletes what a listing shows of a container: its map elements, then its chain. */
export function removeContainerBatch(table: string, entry: ListedContainer | undefined): string[] {
  const t = `ip ${checkTable(table)}`;
  if (!entry) return [];
  const chain = containerChain(checkName(entry.containerId, 'container id'));
  const lines = entry.ports.map((port) => `delete element ${t} ${elementText(port)} }`);
  if (entry.chain) lines.push(`flush chain ${t} ${chain}`, `delete chain ${t} ${chain}`);
  return lines;
}

/**
 * Reads `nft -j list chain ip TABLE ctr-<id>` (null: no chain): the container and its ports,
 * from its DNAT rules. They were added in the same batch as its map elements, so they name
 * the same ports; listing one chain costs the same however many containers there are (the
 * whole table grows with them: 66 ms against 13 ms with 200 containers, see the bench).
 */
export function parseContainerChain(
  table: string,
  containerId: string,
  objects: readonly unknown[] | null,
): ListedContainer | undefined {
  if (!objects) return undefined;
  const chain = containerChain(containerId);
  const entry: ListedContainer = { containerId, chain: false, ports: [] };
  for (const object of objects) {
    const found = field(object, 'chain');
    if (found && found.table === table && found.name === chain) entry.chain = true;
    const rule = field(object, 'rule');
    if (!rule || rule.table !== table || rule.chain !== chain || !Array.isArray(rule.expr)) continue;
    let hostIp: string | null = null;
    let port: ListedPort | null = null;
    for (const expr of rule.expr as unknown[]) {
      const match = field(expr, 'match');
      const payload = field(match?.left, 'payload');
      if (match?.op !== '==' || !payload) continue;
      if (payload.protocol === 'ip' && payload.field === 'daddr' && typeof match.right === 'string') {
        hostIp = match.right;
      } else if ((payload.protocol === 'tcp' || payload.protocol === 'udp') && payload.field === 'dport') {
        if (isPort(match.right)) port = { hostIp: null, protocol: payload.protocol, hostPort: match.right };
      }
    }
    if (port && (hostIp === null || tryParseIPv4(hostIp) !== null)) entry.ports.push({ ...port, hostIp });
  }
  return entry.chain ? entry : undefined;
}

function parseElement(map: string, element: unknown): { containerId: string; port: ListedPort } | null {
  if (!Array.isArray(element) || element.length !== 2) return null;
  const [key, value] = element as [unknown, unknown];
  const target = field(value, 'jump')?.target;
  const id = typeof target === 'string' ? /^ctr-(.+)$/.exec(target)?.[1] : undefined;
  const parts = field(key, 'concat');
  if (!id || !NAME.test(id) || !Array.isArray(parts)) return null;
  const [hostIp, protocol, hostPort] = (map === 'published-addr' ? parts : [null, ...parts]) as unknown[];
  const proto =
    protocol === 'tcp' || protocol === 6 ? 'tcp' : protocol === 'udp' || protocol === 17 ? 'udp' : null;
  if (!proto || !isPort(hostPort)) return null;
  if (hostIp !== null && (typeof hostIp !== 'string' || tryParseIPv4(hostIp) === null)) return null;
  return { containerId: id, port: { hostIp, protocol: proto, hostPort } };
}

/** `value[key]` when both are objects (or arrays). */
function field(value: unknown, key: string): Record<string, unknown> | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const inner = (value as Record<string, unknown>)[key];
  return typeof inner === 'object' && inner !== null ? (inner as Record<string, unknown>) : undefined;
}

export function checkName(value: unknown, what: string): string {
  if (typeof value !== 'string' || !NAME.test(value)) {
    throw invalid(
      `invalid ${what} ${JSON.stringify(value)}: use 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit`,
    );
  }
  return value;
}

export function checkIfname(value: unknown): string {
  if (typeof value !== 'string' || !IFNAME.test(value)) {
    throw invalid(
      `invalid interface name ${JSON.stringify(value)}: use 1-15 letters, digits, '_', '.' or '-'`,
    );
  }
  return value;
}

function checkAddress(value: unknown, what: string): string {
  if (typeof value !== 'string' || tryParseIPv4(value) === null) {
    throw invalid(`invalid ${what} ${JSON.stringify(value)}: expected an IPv4 address`);
  }
  return value;
}

function checkSubnet(value: unknown): string {
  const match = typeof value === 'string' ? /^([0-9.]+)\/([0-9]{1,2})$/.exec(value) : null;
  if (!match || tryParseIPv4(match[1]!) === null || Number(match[2]) > 32) {
    throw invalid(`invalid subnet ${JSON.stringify(value)}: expected an IPv4 CIDR block`);
  }
  return value as string;
}

function isPort(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535;
}

function checkPorts(ports: readonly PublishedPort[]): Port[] {
  if (!Array.isArray(ports)) throw invalid('ports must be a list');
  const result: Port[] = [];
  for (const given of ports) {
    const protocol = given.protocol ?? 'tcp';
    if (protocol !== 'tcp' && protocol !== 'udp') {
      throw invalid(`invalid protocol ${JSON.stringify(protocol)}: expected tcp or udp`);
    }
    for (const [what, value] of [
      ['host port', given.hostPort],
      ['container port', given.containerPort],
    ] as const) {
      if (!isPort(value)) throw invalid(`invalid ${what} ${JSON.stringify(value)}: expected 1 to 65535`);
    }
    const hostIp =
      given.hostIp === undefined || given.hostIp === '' || given.hostIp === '0.0.0.0' ? null : given.hostIp;
    if (hostIp !== null) checkAddress(hostIp, 'host address');
    // One container publishing a host port twice, or on any address and on one address too.
    const clash = result.find(
      (other) =>
        other.protocol === protocol &&
        other.hostPort === given.hostPort &&
        (other.hostIp === null || hostIp === null || other.hostIp === hostIp),
    );
    if (clash) throw portAllocated(hostIp ?? clash.hostIp, given.hostPort);
    result.push({ hostIp, hostPort: given.hostPort, containerPort: given.containerPort, protocol });
  }
  return result;
}

function invalid(message: string): FirewallError {
  return new FirewallError('EFIREWALLINVAL', message);
}
