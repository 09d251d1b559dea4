/** `box network create/ls/inspect/rm/prune`, with docker's output. */

import type { NetworkInfo } from '@box/runtime';
import { confirm } from '../confirm.js';
import { eachReference } from '../each.js';
import { openEngine } from '../engine.js';
import { CliError } from '../errors.js';
import { formatEach, formatList } from '../output/index.js';

function labelsOf(values: readonly string[] = []): Record<string, string> {
  return Object.fromEntries(
    values.map((l) => {
      const eq = l.indexOf('=');
      return eq === -1 ? [l, ''] : [l.slice(0, eq), l.slice(eq + 1)];
    }),
  );
}

export async function networkCreate(
  name: string,
  flags: { subnet?: string; gateway?: string; internal?: boolean; driver?: string; label?: string[] },
): Promise<number> {
  if (flags.driver !== undefined && flags.driver !== 'bridge')
    throw new CliError(`plugin "${flags.driver}" not found: box has the bridge driver only`);
  if (flags.gateway !== undefined && flags.subnet === undefined)
    throw new CliError('--gateway needs --subnet');
  const info = await openEngine().createNetwork(name, {
    subnet: flags.subnet,
    gateway: flags.gateway,
    internal: flags.internal,
    labels: labelsOf(flags.label),
  });
  process.stdout.write(`${info.id}\n`);
  return 0;
}

/** docker's NetworkResource for what box has. */
function dockerShape(n: NetworkInfo) {
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created,
    Scope: 'local',
    Driver: n.driver,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: {}, Config: [{ Subnet: n.subnet, Gateway: n.gateway }] },
    Internal: n.internal,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: Object.fromEntries(
      Object.entries(n.containers).map(([id, c]) => [
        id,
        { Name: c.name, MacAddress: c.macAddress, IPv4Address: c.ipv4Address, IPv6Address: '' },
      ]),
    ),
    Options: { 'com.docker.network.bridge.name': n.bridge },
    Labels: n.labels ?? {},
  };
}

const NETWORK_HEADERS = { ID: 'NETWORK ID', Name: 'NAME', Driver: 'DRIVER', Scope: 'SCOPE' };

export async function networkLs(flags: {
  quiet?: boolean;
  format?: string;
  noTrunc?: boolean;
}): Promise<number> {
  const networks = await openEngine().listNetworks();
  // As docker lists them: box's networks, and the two modes that are not networks.
  const rows = [
    ...networks.map((n) => ({
      ID: flags.noTrunc ? n.id : n.id.slice(0, 12),
      Name: n.name,
      Driver: 'bridge',
      Scope: 'local',
    })),
    { ID: '', Name: 'host', Driver: 'host', Scope: 'local' },
    { ID: '', Name: 'none', Driver: 'null', Scope: 'local' },
  ];
  if (flags.quiet) {
    process.stdout.write(networks.map((n) => `${flags.noTrunc ? n.id : n.id.slice(0, 12)}\n`).join(''));
    return 0;
  }
  process.stdout.write(
    formatList(rows, {
      format: flags.format,
      headers: NETWORK_HEADERS,
      defaultColumns: ['ID', 'Name', 'Driver', 'Scope'],
      typeName: '*formatter.networkContext',
    }),
  );
  return 0;
}

export async function networkInspect(refs: string[]): Promise<number> {
  const engine = openEngine();
  const found: ReturnType<typeof dockerShape>[] = [];
  const code = await eachReference(refs, async (ref) => {
    found.push(dockerShape(await engine.inspectNetwork(ref)));
    return undefined;
  });
  process.stdout.write(formatEach(found));
  return code;
}

export async function networkRm(refs: string[]): Promise<number> {
  const engine = openEngine();
  return eachReference(refs, async (ref) => {
    await engine.removeNetwork(ref);
    return ref;
  });
}

export async function networkPrune(flags: { force?: boolean } = {}): Promise<number> {
  if (
    !(await confirm('This will remove all custom networks not used by at least one container.', flags.force))
  )
    return 0;
  const removed = await openEngine().pruneNetworks();
  if (removed.length) process.stdout.write(`Deleted Networks:\n${removed.map((n) => `${n}\n`).join('')}`);
  return 0;
}

export async function networkConnect(
  network: string,
  container: string,
  flags: { ip?: string },
): Promise<number> {
  await openEngine().connectNetwork(network, container, { ip: flags.ip });
  return 0;
}

export async function networkDisconnect(network: string, container: string): Promise<number> {
  await openEngine().disconnectNetwork(network, container);
  return 0;
}
