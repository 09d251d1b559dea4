/**
 * `run`/`create` network flags → the engine's create options, with docker's syntax and
 * messages: `--network`, `-p/--publish`, `-P/--publish-all`, `--ip`, `--dns`, `--dns-search`,
 * `--dns-option`, `--add-host`.
 */
import { isIPv4 } from 'node:net';
import type { CreateOptions, PortBinding } from '@box/runtime';
import { CliError } from './errors.js';

export interface NetworkFlags {
  network?: string;
  publish?: string[];
  publishAll?: boolean;
  ip?: string;
  dns?: string[];
  dnsSearch?: string[];
  dnsOption?: string[];
  addHost?: string[];
}

/** A port or a range `A-B` of them, each 1-65535. */
function portRange(value: string, spec: string): [number, number] {
  const match = /^(\d+)(?:-(\d+))?$/.exec(value);
  const first = Number(match?.[1]);
  const last = match?.[2] === undefined ? first : Number(match[2]);
  if (!match || first < 1 || last > 65535 || last < first)
    throw new CliError(`invalid port ${value} in "${spec}"`);
  return [first, last];
}

/**
 * docker's `-p`: `[IP:][HOSTPORT:]CONTAINERPORT[/PROTO]`, ports or ranges (`8000-8001:80-81`);
 * an empty or missing host port is chosen at start.
 */
export function parsePublish(spec: string): PortBinding[] {
  const slash = spec.lastIndexOf('/');
  const protocol = slash === -1 ? 'tcp' : spec.slice(slash + 1).toLowerCase();
  if (protocol !== 'tcp' && protocol !== 'udp')
    throw new CliError(`invalid proto: ${spec.slice(slash + 1)} in "${spec}" (tcp or udp)`);
  const ports = slash === -1 ? spec : spec.slice(0, slash);
  const parts = ports.split(':');
  if (parts.length > 3)
    throw new CliError(`invalid port spec "${spec}": IPv6 host addresses are not supported`);
  const [hostIp, hostPart, containerPart] =
    parts.length === 3 ? parts : parts.length === 2 ? ['', parts[0]!, parts[1]!] : ['', '', parts[0]!];
  if (hostIp && !isIPv4(hostIp!)) throw new CliError(`invalid IP address ${hostIp} in "${spec}"`);
  const [cFirst, cLast] = portRange(containerPart!, spec);
  const host = hostPart ? portRange(hostPart, spec) : undefined;
  if (host && host[1] - host[0] !== cLast - cFirst && host[0] !== host[1])
    throw new CliError(`invalid ranges in "${spec}": the host and container ranges differ in size`);
  const out: PortBinding[] = [];
  for (let port = cFirst; port <= cLast; port++) {
    const hostPort =
      host === undefined ? undefined : host[0] === host[1] ? host[0] : host[0] + (port - cFirst);
    out.push({
      ...(hostIp ? { hostIp } : {}),
      ...(hostPort === undefined ? {} : { hostPort }),
      containerPort: port,
      protocol,
    });
  }
  return out;
}

/** docker's `--add-host NAME:IP` (also NAME=IP). */
export function parseAddHost(value: string): { name: string; ip: string } {
  const match = /^([^:=\s]+)[:=](.+)$/.exec(value);
  if (!match || !isIPv4(match[2]!))
    throw new CliError(`invalid argument "${value}" for "--add-host" flag: expected NAME:IPv4`);
  return { name: match[1]!, ip: match[2]! };
}

/** Every network flag checked, as the engine's create options (absent when not given). */
export function parseNetworkFlags(flags: NetworkFlags): Partial<CreateOptions> {
  const out: Partial<CreateOptions> = {};
  if (flags.network !== undefined) {
    if (flags.network === '') throw new CliError('invalid --network: an empty name');
    out.network = flags.network;
  }
  if (flags.ip !== undefined) {
    if (!isIPv4(flags.ip)) throw new CliError(`invalid IPv4 address: ${flags.ip}`);
    out.ip = flags.ip;
  }
  const publish = (flags.publish ?? []).flatMap(parsePublish);
  if (publish.length) out.publish = publish;
  if (flags.publishAll) out.publishAll = true;
  for (const server of flags.dns ?? [])
    if (!isIPv4(server)) throw new CliError(`${server} is not an ip address`);
  if (flags.dns?.length) out.dns = flags.dns;
  if (flags.dnsSearch?.length) out.dnsSearch = flags.dnsSearch;
  if (flags.dnsOption?.length) out.dnsOptions = flags.dnsOption;
  const hosts = (flags.addHost ?? []).map(parseAddHost);
  if (hosts.length) out.extraHosts = hosts;
  return out;
}
