/**
 * box's firewall: NAT and filtering for bridge networks and published ports, in nftables
 * tables of box's own (rules.ts tells the layout). Each change is one `nft -f -` batch, which
 * the kernel applies whole or not at all; nothing outside box's table is touched.
 */
import { isFirewallError } from './errors.js';
import { applyBatch, listJson, type NftRunner } from './nft.js';
import { ipChainExists } from './probe.js';
import {
  type ContainerRules,
  checkName,
  checkTable,
  containerBatch,
  containerChain,
  DEFAULT_TABLE,
  type FirewallListing,
  type ListedContainer,
  type NetworkRules,
  networkBatch,
  networkChains,
  parseContainerChain,
  parseListing,
  portAllocated,
  portOfElementLine,
  removeContainerBatch,
  removeNetworkBatch,
  restrictForwardingBatch,
  skeletonBatch,
} from './rules.js';
import { enableRouteLocalnet } from './sysctl.js';

export interface FirewallOptions extends NftRunner {
  /** The name of box's table (`table ip box`). */
  table?: string;
}

export class Firewall {
  readonly table: string;
  readonly #runner: NftRunner;

  constructor(options: FirewallOptions = {}) {
    this.table = checkTable(options.table ?? DEFAULT_TABLE);
    this.#runner = { nft: options.nft, netns: options.netns, timeoutMs: options.timeoutMs };
  }

  /** Creates box's table, maps and dispatching chains, or puts them back as they should be. */
  async ensureTable(): Promise<void> {
    await applyBatch(this.#runner, skeletonBatch(this.table));
  }

  /**
   * Sets up (or replaces) a network's rules. For a network with outside access, also turns
   * on `route_localnet` on its bridge (which must exist), for published ports through
   * 127.0.0.1. `ip_forward` is the caller's to turn on (enableIpForward).
   */
  async addNetwork(rules: NetworkRules): Promise<void> {
    const lines = [...skeletonBatch(this.table), ...networkBatch(this.table, rules)];
    // The guard chain first, then route_localnet: never the one without the other.
    await applyBatch(this.#runner, lines);
    if (!rules.internal) await enableRouteLocalnet(rules.bridge, { netns: this.#runner.netns });
  }

  /**
   * Limits forwarding to box's bridges (see restrictForwardingBatch): for a host where box
   * turned `ip_forward` on.
   */
  async restrictForwarding(): Promise<void> {
    await applyBatch(this.#runner, [...skeletonBatch(this.table), ...restrictForwardingBatch(this.table)]);
  }

  /**
   * Whether the network's rules are in the kernel (its forward chain is): false after a
   * `nft flush ruleset` or the table's removal. Asked over nfnetlink, without an nft process.
   */
  hasNetwork(network: string): boolean {
    return ipChainExists(this.table, networkChains(network)[0]!, { netns: this.#runner.netns });
  }

  /** Deletes a network's rules (and its bridge from box's set, when given); no error when it has none. */
  async removeNetwork(network: string, bridge?: string): Promise<void> {
    await applyBatch(this.#runner, [
      `add table ip ${this.table}`,
      ...removeNetworkBatch(this.table, network, bridge),
    ]);
  }

  /**
   * Publishes a container's ports (replacing what it published before). A host port another
   * container publishes is refused with `EPORTALLOCATED`, and then nothing changes.
   *
   * The usual case, a container publishing for the first time, is one batch that only adds
   * (8 ms, little more than starting nft): a batch that deletes a chain or updates a base chain
   * costs the kernel about 12 ms more (see the README), so the table is not rewritten here,
   * and a chain left from before is found by `create chain` failing.
   */
  async addContainer(rules: ContainerRules): Promise<void> {
    const create = containerBatch(this.table, rules, 'create');
    if (create.length === 0) return this.removeContainer(rules.containerId);
    for (let attempt = 0; ; attempt++) {
      try {
        await applyBatch(this.#runner, create);
        return;
      } catch (error) {
        if (!isFirewallError(error, 'ENFT')) throw error;
        if (error.command?.startsWith('create chain ') && /File exists/.test(error.message)) break;
        if (attempt === 0 && /No such file or directory/.test(error.message)) {
          await this.ensureTable(); // no table (or map) yet
          continue;
        }
        throw portError(error);
      }
    }
    // It published ports before: delete their elements and refill its chain, in one batch.
    const replace = async (old: ListedContainer | undefined) => {
      try {
        await applyBatch(this.#runner, [
          ...removeContainerBatch(this.table, old && { ...old, chain: false }),
          ...containerBatch(this.table, rules, 'replace'),
        ]);
      } catch (error) {
        throw portError(error);
      }
    };
    try {
      await replace(await this.#fromChain(rules.containerId));
    } catch (error) {
      if (!isGone(error)) throw error;
      await replace(await this.#fromTable(rules.containerId));
    }
  }

  /** Deletes exactly a container's rules: its map elements and its chain; no error when it has none. */
  async removeContainer(containerId: string): Promise<void> {
    checkName(containerId, 'container id');
    const lines = removeContainerBatch(this.table, await this.#fromChain(containerId));
    if (lines.length === 0) return;
    try {
      await applyBatch(this.#runner, lines);
    } catch (error) {
      // The chain and the maps disagree (changed by hand, or removed meanwhile): look at the maps.
      if (!isGone(error)) throw error;
      const again = removeContainerBatch(this.table, await this.#fromTable(containerId));
      if (again.length > 0) await applyBatch(this.#runner, again);
    }
  }

  /** The container's chain and the ports its rules publish. */
  async #fromChain(containerId: string): Promise<ListedContainer | undefined> {
    const chain = containerChain(containerId);
    return parseContainerChain(
      this.table,
      containerId,
      await listJson(this.#runner, ['chain', 'ip', this.table, chain]),
    );
  }

  /** The container as the whole table shows it (every map element pointing at its chain). */
  async #fromTable(containerId: string): Promise<ListedContainer | undefined> {
    return (await this.list()).containers.find((entry) => entry.containerId === containerId);
  }

  /** What box's table holds: chains, networks, containers and the ports they publish. */
  async list(): Promise<FirewallListing> {
    return parseListing(this.table, await listJson(this.#runner, ['table', 'ip', this.table]));
  }

  /** Deletes box's whole table (every network's and container's rules); no error when absent. */
  async deleteTable(): Promise<void> {
    await applyBatch(this.#runner, [`add table ip ${this.table}`, `delete table ip ${this.table}`]);
  }
}

/** Opens box's firewall (nothing is changed until a method is called). */
export function createFirewall(options: FirewallOptions = {}): Firewall {
  return new Firewall(options);
}

/** An element the chain names is gone (ENOENT), or one it does not name still uses it (EBUSY). */
function isGone(error: unknown): boolean {
  return (
    isFirewallError(error, 'ENFT') && /No such file or directory|Device or resource busy/.test(error.message)
  );
}

/** A refused map element (EEXIST) means another container publishes that port. */
function portError(error: unknown): unknown {
  if (!isFirewallError(error, 'ENFT') || !error.command || !/File exists/.test(error.message)) return error;
  const port = portOfElementLine(error.command);
  return port ? portAllocated(port.hostIp, port.hostPort) : error;
}
