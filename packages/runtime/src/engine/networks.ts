/**
 * box's networks (docker's `network create/ls/rm/inspect`): a record per network in
 * networks/NAME.json, its address pool in networks/ipam/ (@box/network's Ipam, which also makes
 * a name unique: the pool is claimed first, under its lock, then the record is written), a
 * Linux bridge holding the gateway address, and box's firewall rules for it.
 *
 * The default network `bridge` (bridge `box0`, see defaultBridge) is made on first use, on the first of docker's
 * default subnets that overlaps none of the host's routes, as docker's `docker0`. A subnet given
 * by the user that overlaps a host route is refused: the host would lose that route's traffic
 * to the bridge, or the containers would never reach it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  cidrsOverlap,
  type Ipam,
  isIpamError,
  isNetlinkError,
  openIpam,
  openRtnetlink,
  parseCidr,
  type Rtnetlink,
} from '@box/network';
import { writeFileAtomic } from '@box/sys';
import { EngineError } from '../errors.js';
import type { Layout } from './layout.js';

export const DEFAULT_NETWORK = 'bridge';
/** The default network's bridge for box's own root; another root (a test's, say) gets its own. */
const DEFAULT_ROOT = '/var/lib/box';
/** docker's rule for network names. */
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
/** Loopback, "this network", link-local, multicast and reserved: no place for containers. */
const SPECIAL = ['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/3'];
/** Modes of --network that are not networks. */
const RESERVED = new Set(['none', 'host', 'default', 'slirp4netns']);

export interface NetworkRecord {
  /** 64 hex digits, as docker's. */
  id: string;
  name: string;
  driver: 'bridge';
  /** The Linux bridge: box0 for the default network, br-<12 hex of the id> for others. */
  bridge: string;
  subnet: string;
  gateway: string;
  /** No route out: no masquerade, no forwarding beyond the bridge (docker's --internal). */
  internal: boolean;
  created: string;
  labels?: Record<string, string>;
}

export interface CreateNetworkOptions {
  subnet?: string;
  gateway?: string;
  internal?: boolean;
  labels?: Record<string, string>;
}

export class Networks {
  readonly dir: string;
  private ipamHandle: Ipam | undefined;

  /** box0 for /var/lib/box, box<8 hex of the root's hash> for any other root. */
  readonly defaultBridge: string;

  constructor(layout: Layout) {
    this.dir = join(layout.root, 'networks');
    this.defaultBridge =
      layout.root === DEFAULT_ROOT
        ? 'box0'
        : `box${createHash('sha256').update(layout.root).digest('hex').slice(0, 8)}`;
  }

  get ipam(): Ipam {
    if (!this.ipamHandle) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      // No container outlives the machine: addresses need not wait for the disk (see Ipam).
      this.ipamHandle = openIpam(join(this.dir, 'ipam'), { durableAllocations: false });
    }
    return this.ipamHandle;
  }

  private path(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  /** Every network, by name. */
  list(): NetworkRecord[] {
    let entries: string[];
    try {
      entries = readdirSync(this.dir);
    } catch {
      return [];
    }
    const out: NetworkRecord[] = [];
    for (const entry of entries.sort()) {
      if (!entry.endsWith('.json')) continue;
      const record = this.read(entry.slice(0, -5));
      if (record) out.push(record);
    }
    return out;
  }

  private read(name: string): NetworkRecord | undefined {
    let text: string;
    try {
      text = readFileSync(this.path(name), 'utf8');
    } catch {
      return undefined;
    }
    try {
      return JSON.parse(text) as NetworkRecord;
    } catch {
      throw new EngineError('EINVAL', `network record ${this.path(name)} is damaged`);
    }
  }

  /** A network by name, full id or a unique id prefix; ENONETWORK when there is none. */
  get(ref: string): NetworkRecord {
    if (NAME.test(ref)) {
      const byName = this.read(ref);
      if (byName) return byName;
    }
    const byId = this.list().filter((n) => n.id.startsWith(ref));
    if (ref.length > 0 && byId.length === 1) return byId[0]!;
    throw new EngineError('ENONETWORK', `network ${ref} not found`);
  }

  /** The default network, made on first use (also by two processes at once). */
  ensureDefault(): NetworkRecord {
    const existing = this.read(DEFAULT_NETWORK);
    if (existing) return existing;
    try {
      return this.create(DEFAULT_NETWORK, {}, this.defaultBridge);
    } catch (error) {
      // Made meanwhile by another process: create waited for its record (see orphanPool).
      const made =
        error instanceof EngineError && error.code === 'ENETWORKEXISTS' && this.read(DEFAULT_NETWORK);
      if (made) return made;
      throw error;
    }
  }

  create(name: string, options: CreateNetworkOptions = {}, bridgeName?: string): NetworkRecord {
    if (!NAME.test(name))
      throw new EngineError(
        'EINVAL',
        `invalid network name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`,
      );
    if (RESERVED.has(name) || (name === DEFAULT_NETWORK && bridgeName === undefined))
      throw new EngineError('EINVAL', `network name ${name} is reserved`);
    const nl = openRtnetlink();
    try {
      const routes = hostRoutes(
        nl,
        this.list().map((n) => n.bridge),
      );
      if (options.subnet !== undefined) {
        const subnet = parseCidr(options.subnet);
        const special = SPECIAL.find((r) => cidrsOverlap(parseCidr(r), subnet));
        if (special)
          throw new EngineError(
            'EINVAL',
            `subnet ${options.subnet} overlaps ${special}, which the kernel gives a meaning of its own`,
          );
        const clash = routes.find((r) => cidrsOverlap(parseCidr(r.dst), subnet));
        if (clash)
          throw new EngineError(
            'EINVAL',
            `subnet ${options.subnet} overlaps the host's route ${clash.dst}${clash.dev ? ` on ${clash.dev}` : ''}`,
          );
      }
      let pool: ReturnType<Ipam['createPool']>;
      try {
        pool = this.ipam.createPool(name, {
          subnet: options.subnet,
          gateway: options.gateway,
          hostRoutes: routes.map((r) => r.dst),
        });
      } catch (error) {
        if (isIpamError(error, 'EIPAMEXISTS') && this.orphanPool(name))
          return this.create(name, options, bridgeName);
        if (isIpamError(error, 'EIPAMEXISTS'))
          throw new EngineError('ENETWORKEXISTS', `network with name ${name} already exists`);
        if (isIpamError(error)) throw new EngineError('EINVAL', error.message);
        throw error;
      }
      const id = randomBytes(32).toString('hex');
      const record: NetworkRecord = {
        id,
        name,
        driver: 'bridge',
        bridge: bridgeName ?? `br-${id.slice(0, 12)}`,
        subnet: pool.subnet,
        gateway: pool.gateway,
        internal: options.internal ?? false,
        created: new Date().toISOString(),
        ...(options.labels && Object.keys(options.labels).length ? { labels: options.labels } : {}),
      };
      try {
        ensureBridge(nl, record);
        writeFileAtomic(this.path(name), `${JSON.stringify(record, null, 2)}\n`);
      } catch (error) {
        removeBridge(nl, record.bridge);
        this.ipam.removePool(name, { force: true });
        throw error;
      }
      return record;
    } finally {
      nl.close();
    }
  }

  /**
   * Removes a network no container uses (ENETWORKINUSE otherwise): its bridge, pool and record.
   * The default network only with `predefined` (when the whole state root goes).
   */
  remove(ref: string, options: { predefined?: boolean } = {}): NetworkRecord {
    const record = this.get(ref);
    if (record.name === DEFAULT_NETWORK && !options.predefined)
      throw new EngineError('EINVAL', `${DEFAULT_NETWORK} is a pre-defined network and cannot be removed`);
    // The record goes under the pools' lock, once the pool is seen free and before it goes: a
    // container attaching now either got its address first (then the network is in use) or
    // finds no pool. A removal cut short leaves a pool without a record, which the next create
    // of that name takes over (see create), never a record without its pool.
    const removeRecord = () => rmSync(this.path(record.name), { force: true });
    try {
      if (!this.ipam.removePool(record.name, { beforeRemove: removeRecord })) removeRecord();
    } catch (error) {
      if (!isIpamError(error, 'EIPAMBUSY')) throw error;
      throw new EngineError(
        'ENETWORKINUSE',
        `error while removing network: network ${record.name} id ${record.id} has active endpoints`,
      );
    }
    const nl = openRtnetlink();
    try {
      removeBridge(nl, record.bridge);
    } finally {
      nl.close();
    }
    return record;
  }

  /**
   * A pool with no record and no address handed out, still so after a while: what a create or
   * remove cut short (SIGKILL) left. Removed, so that its name can be made again.
   */
  private orphanPool(name: string): boolean {
    // Its maker writes the record right after the pool: a second for it to do so.
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (let i = 0; i < 100; i++) {
      if (this.read(name)) return false;
      Atomics.wait(pause, 0, 0, 10);
    }
    if (this.read(name) || this.ipam.inUse(name).size > 0) return false;
    this.ipam.removePool(name, { force: true });
    return true;
  }

  /** Whether a record exists for `name` (the pool alone may be a half-made network). */
  has(name: string): boolean {
    return existsSync(this.path(name));
  }
}

/** The host's IPv4 routes but those of box's own bridges: what a new subnet must not overlap. */
function hostRoutes(nl: Rtnetlink, bridges: readonly string[]): { dst: string; dev?: string }[] {
  const names = new Map(nl.listLinks().map((l) => [l.index, l.name]));
  const own = new Set(bridges);
  return nl
    .listRoutes()
    .filter((r) => r.dst !== 'default')
    .map((r) => ({ dst: r.dst, dev: r.oif === undefined ? undefined : names.get(r.oif) }))
    .filter((r) => !(r.dev && own.has(r.dev)));
}

/** The network's bridge, up, with the gateway address (made when missing: after a reboot, say). */
export function ensureBridge(nl: Rtnetlink, network: NetworkRecord): void {
  try {
    nl.createBridge(network.bridge, { up: true });
  } catch (error) {
    if (!isNetlinkError(error, 'EEXIST')) throw error;
  }
  const prefix = network.subnet.split('/')[1];
  try {
    nl.addAddress(network.bridge, `${network.gateway}/${prefix}`);
  } catch (error) {
    if (!isNetlinkError(error, 'EEXIST')) throw error;
  }
  nl.setLinkUp(network.bridge);
}

function removeBridge(nl: Rtnetlink, name: string): void {
  try {
    nl.deleteLink(name);
  } catch (error) {
    if (!isNetlinkError(error, 'ENODEV')) throw error;
  }
}

/** A network as `network inspect` shows it: its record and the containers on it now. */
export interface NetworkInfo extends NetworkRecord {
  containers: Record<string, { name: string; ipv4Address: string; macAddress: string }>;
}
