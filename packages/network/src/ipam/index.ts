export {
  type Cidr,
  cidrContains,
  cidrsOverlap,
  formatCidr,
  formatIPv4,
  MAX_SUBNET_PREFIX,
  MIN_SUBNET_PREFIX,
  parseCidr,
  parseIPv4,
  parseSubnet,
} from './cidr.js';
export { IpamError, type IpamErrorCode, type IpamErrorDetails, isIpamError } from './errors.js';
export {
  type AllocateOptions,
  type Allocation,
  type CreatePoolOptions,
  Ipam,
  type IpamOptions,
  openIpam,
  type PoolInfo,
} from './ipam.js';
export { type AddressPool, DEFAULT_ADDRESS_POOLS, pickSubnet, poolSubnets } from './subnets.js';
