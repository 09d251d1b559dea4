/**
 * Choosing the subnet of a network created without one, as docker does: the first of its
 * default address pools that overlaps neither another network nor a route of the host (a
 * subnet behind a host route would make that destination unreachable from the host).
 */
import { type Cidr, cidrsOverlap, formatCidr, parseCidr } from './cidr.js';

/** A block split into subnets of `size` bits (docker's `default-address-pools` entries). */
export interface AddressPool {
  readonly base: string;
  readonly size: number;
}

/**
 * docker's default local address pools: 172.17.0.0/16 to 172.31.0.0/16, then
 * 192.168.0.0/20, 192.168.16.0/20 … 192.168.240.0/20 (31 subnets).
 */
export const DEFAULT_ADDRESS_POOLS: readonly AddressPool[] = [
  { base: '172.17.0.0/16', size: 16 },
  { base: '172.18.0.0/16', size: 16 },
  { base: '172.19.0.0/16', size: 16 },
  { base: '172.20.0.0/14', size: 16 },
  { base: '172.24.0.0/14', size: 16 },
  { base: '172.28.0.0/14', size: 16 },
  { base: '192.168.0.0/16', size: 20 },
];

/** The subnets of `pools`, in order (each pool's block split into /size subnets). */
export function* poolSubnets(pools: readonly AddressPool[] = DEFAULT_ADDRESS_POOLS): Generator<string> {
  for (const pool of pools) {
    const block = parseCidr(pool.base);
    if (!Number.isInteger(pool.size) || pool.size < block.prefix || pool.size > 32) {
      throw new RangeError(`address pool ${pool.base}: size /${pool.size} does not split it`);
    }
    const step = 2 ** (32 - pool.size);
    const count = 2 ** (pool.size - block.prefix);
    for (let i = 0; i < count; i++) yield formatCidr({ base: block.base + i * step, prefix: pool.size });
  }
}

/**
 * The first of `candidates` (CIDR text, e.g. from `poolSubnets()`) that overlaps none of
 * `hostRoutes` and none of `networks` (the subnets of existing networks), or null. A default
 * route (`0.0.0.0/0`) is no reason to avoid anything and is ignored, as docker does.
 */
export function pickSubnet(
  candidates: Iterable<string>,
  hostRoutes: readonly string[],
  networks: readonly string[] = [],
): string | null {
  const taken: Cidr[] = [
    ...hostRoutes.map((route) => parseCidr(route)).filter((route) => route.prefix > 0),
    ...networks.map((subnet) => parseCidr(subnet)),
  ];
  for (const text of candidates) {
    const candidate = parseCidr(text);
    if (!taken.some((other) => cidrsOverlap(candidate, other))) return formatCidr(candidate);
  }
  return null;
}
