/**
 * IPv4 address management for box's bridge networks: one pool per network, persisted in a
 * directory (see store.ts), safe for many processes at once. Every method is synchronous: a
 * change is one short read-modify-write of one small file under a lock.
 */
import {
  cidrContains,
  cidrsOverlap,
  formatCidr,
  formatIPv4,
  hostRange,
  parseIPv4,
  parseSubnet,
} from './cidr.js';
import { IpamError } from './errors.js';
import {
  checkName,
  ensureDir,
  isHost,
  listPoolNetworks,
  type PoolRecord,
  readPool,
  removePoolFile,
  withPoolLock,
  writePool,
} from './store.js';
import { type AddressPool, DEFAULT_ADDRESS_POOLS, pickSubnet, poolSubnets } from './subnets.js';

export interface IpamOptions {
  /** How long to wait for another process's change before failing with `EIPAMLOCKED` (10 s). */
  lockTimeoutMs?: number;
  /**
   * Whether handing out and giving back addresses waits for the disk (fsync), as creating and
   * removing pools always does. An engine whose containers all die with the machine may say
   * false: after a power loss no address is in use, so a lost change frees one nobody holds or
   * holds one until its owner's clean-up gives it back; the rename keeps the file whole.
   */
  durableAllocations?: boolean;
}

export interface CreatePoolOptions {
  /** The network's subnet (/8 to /30). Without it, the first free default subnet is taken. */
  subnet?: string;
  /** The gateway (the bridge's address); the subnet's first host address by default. */
  gateway?: string;
  /** The host's routes (CIDR), which a chosen subnet must not overlap. Only used without `subnet`. */
  hostRoutes?: readonly string[];
  /** Where a subnet is chosen from (docker's default address pools by default). */
  defaultPools?: readonly AddressPool[];
}

export interface PoolInfo {
  network: string;
  subnet: string;
  gateway: string;
  /** How many addresses containers can get (the host addresses less the gateway). */
  size: number;
  /** How many of them are handed out. */
  inUse: number;
}

export interface Allocation {
  network: string;
  containerId: string;
  address: string;
}

export interface AllocateOptions {
  /** This address, rather than the next free one. */
  ip?: string;
}

export class Ipam {
  readonly dir: string;
  readonly #lockTimeoutMs: number;
  readonly #durable: boolean;

  constructor(dir: string, options: IpamOptions = {}) {
    this.dir = dir;
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 10_000;
    this.#durable = options.durableAllocations ?? true;
  }

  /**
   * Creates the pool of `network`. A given subnet must overlap no other pool's; without one,
   * the first default subnet that overlaps no pool and none of `hostRoutes` is taken (picked
   * under the lock, so two networks created at once never get the same one).
   */
  createPool(network: string, options: CreatePoolOptions = {}): PoolInfo {
    checkName(network, 'network name');
    const given = options.subnet === undefined ? null : parseSubnet(options.subnet);
    return this.#locked(() => {
      if (readPool(this.dir, network)) {
        throw new IpamError('EIPAMEXISTS', `network ${network} already has an address pool`, { network });
      }
      const others = listPoolNetworks(this.dir)
        .map((name) => readPool(this.dir, name))
        .filter((pool): pool is PoolRecord => pool !== null);
      let subnet = given;
      if (subnet) {
        const clash = others.find((pool) => cidrsOverlap(pool.subnet, subnet!));
        if (clash) {
          throw new IpamError(
            'EIPAMOVERLAP',
            `Pool overlaps with other one on this address space: ${formatCidr(subnet)} overlaps ${formatCidr(clash.subnet)} of network ${clash.network}`,
            { network, address: formatCidr(subnet) },
          );
        }
      } else {
        const picked = pickSubnet(
          poolSubnets(options.defaultPools ?? DEFAULT_ADDRESS_POOLS),
          options.hostRoutes ?? [],
          others.map((pool) => formatCidr(pool.subnet)),
        );
        if (picked === null) {
          throw new IpamError(
            'EIPAMNOSUBNET',
            'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network',
            { network },
          );
        }
        subnet = parseSubnet(picked);
      }
      let gateway = hostRange(subnet).first;
      if (options.gateway !== undefined) {
        gateway = parseIPv4(options.gateway);
        if (!isHost(subnet, gateway)) {
          throw new IpamError(
            'EIPAMINVAL',
            `invalid gateway ${options.gateway}: it is not a host address of ${formatCidr(subnet)}`,
            { network, address: options.gateway },
          );
        }
      }
      const record: PoolRecord = { network, subnet, gateway, last: null, allocations: new Map() };
      writePool(this.dir, record);
      return info(record);
    });
  }

  /**
   * Removes the pool of `network`. Refused (`EIPAMBUSY`) while containers hold addresses in
   * it, unless `force`. Returns false when there was no pool. `beforeRemove` runs under the
   * pools' lock once the pool is known to be free, right before it goes: what must go with it
   * (the network's own record) goes there, so no allocate can slip in between.
   */
  removePool(network: string, options: { force?: boolean; beforeRemove?: () => void } = {}): boolean {
    checkName(network, 'network name');
    return this.#locked(() => {
      const record = readPool(this.dir, network);
      if (!record) return false;
      if (record.allocations.size > 0 && !options.force) {
        throw new IpamError(
          'EIPAMBUSY',
          `network ${network} has active endpoints (${[...record.allocations.keys()].join(', ')})`,
          { network },
        );
      }
      options.beforeRemove?.();
      removePoolFile(this.dir, network);
      return true;
    });
  }

  /** The pool of `network`, or null. */
  pool(network: string): PoolInfo | null {
    checkName(network, 'network name');
    const record = readPool(this.dir, network);
    return record ? info(record) : null;
  }

  /** Every pool, by network name. */
  pools(): PoolInfo[] {
    return listPoolNetworks(this.dir)
      .map((network) => readPool(this.dir, network))
      .filter((record): record is PoolRecord => record !== null)
      .map(info);
  }

  /**
   * Hands `containerId` an address on `network`: `options.ip`, or the next free one after
   * the last handed out (wrapping around at the end of the subnet), so an address just
   * released is not reused at once. A container that already holds an address there gets
   * it again (asking for another one is `EIPAMCONFLICT`).
   */
  allocate(network: string, containerId: string, options: AllocateOptions = {}): string {
    checkName(network, 'network name');
    checkName(containerId, 'container id');
    const wanted = options.ip === undefined ? null : parseIPv4(options.ip);
    return this.#locked(() => {
      const record = this.#mustRead(network);
      const held = record.allocations.get(containerId);
      if (held !== undefined) {
        if (wanted === null || wanted === held) return formatIPv4(held);
        throw new IpamError(
          'EIPAMCONFLICT',
          `container ${containerId} already has address ${formatIPv4(held)} on network ${network}`,
          { network, address: formatIPv4(held) },
        );
      }
      const address = wanted === null ? nextFree(record) : checkWanted(record, wanted);
      record.allocations.set(containerId, address);
      if (wanted === null) record.last = address;
      writePool(this.dir, record, this.#durable);
      return formatIPv4(address);
    });
  }

  /** Gives back the address `containerId` holds on `network`: returns it, or null if it held none. */
  release(network: string, containerId: string): string | null {
    checkName(network, 'network name');
    checkName(containerId, 'container id');
    return this.#locked(() => {
      const record = readPool(this.dir, network);
      const address = record?.allocations.get(containerId);
      if (!record || address === undefined) return null;
      record.allocations.delete(containerId);
      writePool(this.dir, record, this.#durable);
      return formatIPv4(address);
    });
  }

  /** Gives back every address `containerId` holds, on every network; returns them. */
  releaseAll(containerId: string): Allocation[] {
    checkName(containerId, 'container id');
    return this.#locked(() => {
      const released: Allocation[] = [];
      for (const network of listPoolNetworks(this.dir)) {
        const record = readPool(this.dir, network);
        const address = record?.allocations.get(containerId);
        if (!record || address === undefined) continue;
        record.allocations.delete(containerId);
        writePool(this.dir, record, this.#durable);
        released.push({ network, containerId, address: formatIPv4(address) });
      }
      return released;
    });
  }

  /** The addresses handed out on `network`: container id → address, in address order. */
  inUse(network: string): Map<string, string> {
    checkName(network, 'network name');
    const record = this.#mustRead(network);
    return new Map(
      [...record.allocations].sort((a, b) => a[1] - b[1]).map(([id, address]) => [id, formatIPv4(address)]),
    );
  }

  #mustRead(network: string): PoolRecord {
    const record = readPool(this.dir, network);
    if (!record) throw new IpamError('EIPAMNOPOOL', `network ${network} has no address pool`, { network });
    return record;
  }

  #locked<T>(fn: () => T): T {
    ensureDir(this.dir);
    return withPoolLock(this.dir, this.#lockTimeoutMs, fn);
  }
}

/** Opens the address pools kept in `dir` (created 0700 on the first change). */
export function openIpam(dir: string, options: IpamOptions = {}): Ipam {
  return new Ipam(dir, options);
}

function info(record: PoolRecord): PoolInfo {
  return {
    network: record.network,
    subnet: formatCidr(record.subnet),
    gateway: formatIPv4(record.gateway),
    size: hostRange(record.subnet).count - 1,
    inUse: record.allocations.size,
  };
}

function nextFree(record: PoolRecord): number {
  const { first, last, count } = hostRange(record.subnet);
  if (record.allocations.size >= count - 1) {
    throw new IpamError(
      'EIPAMFULL',
      `no available addresses on this pool (network ${record.network}, ${formatCidr(record.subnet)}: all ${count - 1} in use)`,
      { network: record.network },
    );
  }
  const taken = new Set(record.allocations.values());
  let candidate = record.last === null ? first : record.last + 1;
  // At least one address is free, so this ends within one turn of the subnet.
  for (;;) {
    if (candidate > last) candidate = first;
    if (candidate !== record.gateway && !taken.has(candidate)) return candidate;
    candidate++;
  }
}

function checkWanted(record: PoolRecord, wanted: number): number {
  const text = formatIPv4(wanted);
  const details = { network: record.network, address: text };
  if (!cidrContains(record.subnet, wanted)) {
    throw new IpamError(
      'EIPAMRANGE',
      `no configured subnet or ip-range contain the IP address ${text}`,
      details,
    );
  }
  if (!isHost(record.subnet, wanted)) {
    const what = wanted === record.subnet.base ? 'network address' : 'broadcast address';
    throw new IpamError(
      'EIPAMINUSE',
      `Address already in use (${text} is the ${what} of network ${record.network})`,
      details,
    );
  }
  if (wanted === record.gateway) {
    throw new IpamError(
      'EIPAMINUSE',
      `Address already in use (${text} is the gateway of network ${record.network})`,
      details,
    );
  }
  for (const [owner, address] of record.allocations) {
    if (address === wanted) {
      throw new IpamError(
        'EIPAMINUSE',
        `Address already in use (${text} is held by container ${owner})`,
        details,
      );
    }
  }
  return wanted;
}
