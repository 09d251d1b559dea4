/**
 * box's firewall rules for its networks and containers, through @box/network's Firewall (its
 * own nftables table; nothing else is touched). Each change costs an `nft` process, so a
 * network's rules are put in place once per boot (its `.rules` mark holds the boot id: after a
 * reboot the rules are gone, and the mark says so) or again when they were flushed (a netlink
 * question, no process), and a container without published ports costs nothing.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createFirewall, enableIpForward, type Firewall } from '@box/network';
import type { PublishedPort } from './network-attach.js';
import type { NetworkRecord } from './networks.js';

let firewall: Firewall | undefined;
const fw = (): Firewall => (firewall ??= createFirewall());

function bootId(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
}

const markOf = (dir: string, network: NetworkRecord) => join(dir, `${network.name}.rules`);

/**
 * The network's masquerade and forwarding rules, and ip_forward for a network with outside
 * access (as docker, which turns it on for the host too: the host then routes between its
 * interfaces).
 */
export async function ensureNetworkRules(network: NetworkRecord, dir: string): Promise<void> {
  const mark = markOf(dir, network);
  const boot = bootId();
  try {
    // The mark, and the kernel's word that the rules are still there: a `nft flush ruleset` (a
    // firewall manager's reload) takes them without a reboot, and the next start puts them back.
    if (readFileSync(mark, 'utf8') === `${network.id} ${boot}` && fw().hasNetwork(network.bridge)) return;
  } catch {
    // not yet this boot
  }
  // Chains are named by the bridge: unique on the host, where names are only unique per root.
  await fw().addNetwork({
    network: network.bridge,
    bridge: network.bridge,
    subnet: network.subnet,
    internal: network.internal,
  });
  // Turned on here, it makes the host a router: for box's bridges only (docker's FORWARD DROP).
  // Where it was on already, the host's routing is its administrator's, and left alone.
  if (!network.internal && (await enableIpForward())) await fw().restrictForwarding();
  writeFileSync(mark, `${network.id} ${boot}`, { mode: 0o600 });
}

export async function removeNetworkRules(network: NetworkRecord, dir: string): Promise<void> {
  await fw().removeNetwork(network.bridge, network.bridge);
  rmSync(markOf(dir, network), { force: true });
}

/** DNAT of the container's published ports to its address. */
export async function addContainerRules(
  id: string,
  address: string,
  ports: readonly PublishedPort[],
): Promise<void> {
  if (ports.length === 0) return;
  await fw().addContainer({
    containerId: id,
    address,
    ports: ports.map((p) => ({
      ...(p.hostIp ? { hostIp: p.hostIp } : {}),
      hostPort: p.hostPort,
      containerPort: p.containerPort,
      protocol: p.protocol,
    })),
  });
}

/** Removes exactly the container's rules; nothing to do when there are none. */
export async function removeContainerRules(id: string): Promise<void> {
  await fw().removeContainer(id);
}

/**
 * Deletes box's table once it holds no network's and no container's rules (the last state root
 * on this host went). Another root's networks keep it.
 */
export async function removeTableIfUnused(): Promise<void> {
  const listing = await fw().list();
  // Its forwarding restriction stays while ip_forward, which box turned on, stays on.
  const restricts = listing.chains.some((c) => c.name === 'forward');
  if (listing.exists && !restricts && listing.networks.length === 0 && listing.containers.length === 0)
    await fw().deleteTable();
}
