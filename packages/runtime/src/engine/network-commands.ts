/**
 * The engine's `network` commands (docker's network create/ls/inspect/rm/prune): records in
 * networks.ts, their firewall chains (firewall.ts), and which containers are on them.
 */
import { EngineError } from '../errors.js';
import type { EngineContext } from './context.js';
import { ensureNetworkRules, removeNetworkRules, removeTableIfUnused } from './firewall.js';
import { macOf, releaseNetwork } from './network-attach.js';
import { type CreateNetworkOptions, DEFAULT_NETWORK, type NetworkInfo, Networks } from './networks.js';
import { processAlive } from './status.js';

export async function createNetwork(
  ctx: EngineContext,
  name: string,
  options: CreateNetworkOptions,
): Promise<NetworkInfo> {
  const networks = new Networks(ctx.layout);
  const record = networks.create(name, options);
  try {
    await ensureNetworkRules(record, networks.dir);
  } catch (error) {
    networks.remove(record.name);
    throw error;
  }
  return { ...record, containers: {} };
}

/** A network's addresses in use; none when its pool is missing (a removal cut short). */
function inUse(networks: Networks, name: string): Map<string, string> {
  try {
    return networks.ipam.inUse(name);
  } catch {
    return new Map();
  }
}

function describe(ctx: EngineContext, networks: Networks, name: string): NetworkInfo {
  const record = networks.get(name);
  const containers: NetworkInfo['containers'] = {};
  const prefix = record.subnet.split('/')[1];
  for (const [id, address] of inUse(networks, record.name)) {
    let containerName = '';
    try {
      containerName = ctx.store.read(id).name;
    } catch {
      // being removed
    }
    containers[id] = { name: containerName, ipv4Address: `${address}/${prefix}`, macAddress: macOf(address) };
  }
  return { ...record, containers };
}

/** Every network; the default one is made if it is not there yet, as docker's always is. */
export function listNetworks(ctx: EngineContext): NetworkInfo[] {
  const networks = new Networks(ctx.layout);
  networks.ensureDefault();
  return networks.list().map((n) => describe(ctx, networks, n.name));
}

export function inspectNetwork(ctx: EngineContext, ref: string): NetworkInfo {
  const networks = new Networks(ctx.layout);
  if (ref === DEFAULT_NETWORK) networks.ensureDefault();
  return describe(ctx, networks, networks.get(ref).name);
}

export async function removeNetwork(
  ctx: EngineContext,
  ref: string,
  options: { predefined?: boolean } = {},
): Promise<string> {
  const networks = new Networks(ctx.layout);
  const record = networks.get(ref);
  // What containers that no longer run (their owner died) hold does not keep it: given back
  // whole, their published ports' rules too.
  for (const id of inUse(networks, record.name).keys()) {
    let container: ReturnType<EngineContext['store']['read']> | undefined;
    try {
      container = ctx.store.read(id);
    } catch {
      container = undefined;
    }
    if (!container || !processAlive(container))
      await releaseNetwork(ctx, id, {
        networks,
        published: container ? (container.ports?.length ?? 0) > 0 : true,
      });
  }
  const removed = networks.remove(record.name, options);
  await removeNetworkRules(removed, networks.dir);
  return removed.name;
}

/** Removes every user-defined network no container uses; returns their names. */
export async function pruneNetworks(ctx: EngineContext): Promise<string[]> {
  const networks = new Networks(ctx.layout);
  const removed: string[] = [];
  for (const network of networks.list()) {
    if (network.name === DEFAULT_NETWORK) continue;
    try {
      removed.push(await removeNetwork(ctx, network.name));
    } catch (error) {
      if (!(error instanceof EngineError && error.code === 'ENETWORKINUSE')) throw error;
    }
  }
  return removed;
}

/**
 * Removes every network of the state root, the default one included, from the host (bridges,
 * firewall chains) and the root: for an embedder done with a root (tests' temporary ones).
 * Refused while a container runs on one.
 */
export async function removeAllNetworks(ctx: EngineContext): Promise<void> {
  for (const network of new Networks(ctx.layout).list())
    await removeNetwork(ctx, network.name, { predefined: true });
  await removeTableIfUnused();
}
