/**
 * The container's /etc/hosts, /etc/resolv.conf and /etc/hostname, as docker writes them: files
 * in the container's directory, bind-mounted over the image's. Rewritten in place (never
 * replaced by a rename), because a bind mount holds the inode: a new file would not be seen.
 */
import { isIPv4 } from 'node:net';

/** docker's fallback when the host lists only loopback resolvers, which a container cannot reach. */
export const FALLBACK_NAMESERVERS = ['8.8.8.8', '8.8.4.4'];

export interface HostsOptions {
  hostname: string;
  /** The container's own addresses (one per network), first is the main one. */
  addresses: readonly string[];
  /** --add-host entries, before the container's own line as in docker. */
  extraHosts?: readonly { name: string; ip: string }[];
  /** Other containers on its user-defined networks: name (and aliases) by address. */
  peers?: readonly { ip: string; names: readonly string[] }[];
}

export function hostsFile(options: HostsOptions): string {
  const lines = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
  ];
  for (const host of options.extraHosts ?? []) lines.push(`${host.ip}\t${host.name}`);
  for (const address of options.addresses) lines.push(`${address}\t${options.hostname}`);
  for (const peer of options.peers ?? [])
    if (peer.names.length) lines.push(`${peer.ip}\t${peer.names.join(' ')}`);
  return `${lines.join('\n')}\n`;
}

export interface ResolvOptions {
  /** --dns: replaces the host's nameservers. */
  dns?: readonly string[];
  /** --dns-search: replaces the host's search domains. */
  dnsSearch?: readonly string[];
  /** --dns-option: replaces the host's options. */
  dnsOptions?: readonly string[];
}

const isLoopback = (address: string) =>
  (isIPv4(address) && address.startsWith('127.')) || address === '::1' || address === '0:0:0:0:0:0:0:1';

/**
 * The host's resolv.conf with docker's changes: loopback nameservers (a local caching resolver
 * of the host, unreachable from another network namespace) dropped, docker's public fallback
 * when none is left; --dns, --dns-search and --dns-option replace their kind of line.
 */
export function resolvConf(hostText: string, options: ResolvOptions = {}): string {
  let nameservers: string[] = [];
  let search: string[] = [];
  let opts: string[] = [];
  for (const raw of hostText.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const [key, ...values] = line.split(/\s+/);
    if (key === 'nameserver' && values[0] && !isLoopback(values[0])) nameservers.push(values[0]);
    else if (key === 'search' || key === 'domain') search = values;
    else if (key === 'options') opts.push(...values);
  }
  if (options.dns?.length) nameservers = [...options.dns];
  if (options.dnsSearch?.length) search = options.dnsSearch.filter((d) => d !== '.');
  if (options.dnsOptions?.length) opts = [...options.dnsOptions];
  if (nameservers.length === 0) nameservers = FALLBACK_NAMESERVERS;
  const lines = nameservers.map((server) => `nameserver ${server}`);
  if (search.length) lines.push(`search ${search.join(' ')}`);
  if (opts.length) lines.push(`options ${opts.join(' ')}`);
  return `${lines.join('\n')}\n`;
}
