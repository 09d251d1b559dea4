export {
  FirewallError,
  type FirewallErrorCode,
  type FirewallErrorDetails,
  isFirewallError,
} from './errors.js';
export { createFirewall, Firewall, type FirewallOptions } from './firewall.js';
export { locateNft, type NftRunner } from './nft.js';
export { checkPortFree } from './ports.js';
export {
  type ContainerRules,
  DEFAULT_TABLE,
  type FirewallListing,
  type ListedContainer,
  type ListedPort,
  type NetworkRules,
  type Protocol,
  type PublishedPort,
} from './rules.js';
export { enableIpForward, enableRouteLocalnet, type SysctlOptions } from './sysctl.js';
