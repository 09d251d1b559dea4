/**
 * What box's networks leave on the host, for the tests' clean-up and leftover checks: the
 * bridges of a state root's networks (recorded in ROOT/networks/*.json), their chains in box's
 * nftables table, addresses still held in its pools, container chains of containers gone, and
 * the host's ip_forward, which box turns on as docker does.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

interface NetworkRecord {
  name: string;
  bridge: string;
}

function records(root: string): NetworkRecord[] {
  const dir = join(root, 'networks');
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as NetworkRecord);
  } catch {
    return [];
  }
}

/** The chains of box's table (`ip box`), or [] when there is none. */
export function boxChains(): string[] {
  const r = spawnSync('nft', ['-j', 'list', 'chains', 'ip'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  const objects = (JSON.parse(r.stdout) as { nftables: { chain?: { table: string; name: string } }[] })
    .nftables;
  return objects.flatMap((o) => (o.chain && o.chain.table === 'box' ? [o.chain.name] : []));
}

/** Addresses a root's pools still hand to containers. */
export function heldAddresses(root: string): string[] {
  const dir = join(root, 'networks', 'ipam');
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.ipam.json'));
  } catch {
    return [];
  }
  return files.flatMap((f) => {
    const pool = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { allocations: Record<string, string> };
    return Object.entries(pool.allocations).map(
      ([id, ip]) => `address ${ip} held by ${id.slice(0, 12)} in ${f}`,
    );
  });
}

/** Chains of containers (ctr-<id>) of which no box state root on this machine has a record. */
export function orphanContainerChains(liveIds: ReadonlySet<string>): string[] {
  return boxChains()
    .filter((c) => c.startsWith('ctr-') && !liveIds.has(c.slice(4)))
    .map((c) => `nft chain ${c}`);
}

const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';
/** The host's ip_forward before this test file's roots: box turns it on for its networks. */
const ipForwardBefore = readFileSync(IP_FORWARD, 'utf8').trim();

/**
 * Removes a root's networks from the host: their bridges and chains; box's table too once it
 * holds no network's or container's chain (another root's networks keep it).
 */
export function removeRootNetworks(root: string): void {
  for (const network of records(root)) {
    spawnSync('ip', ['link', 'delete', network.bridge], { stdio: 'ignore' });
    for (const kind of ['forward', 'postrouting', 'guard'])
      spawnSync('nft', ['delete', 'chain', 'ip', 'box', `net-${network.bridge}-${kind}`], {
        stdio: 'ignore',
      });
  }
  if (!boxChains().some((c) => c.startsWith('net-') || c.startsWith('ctr-'))) {
    spawnSync('nft', ['delete', 'table', 'ip', 'box'], { stdio: 'ignore' });
    // No box network is left on the host: ip_forward as it was before the tests.
    writeFileSync(IP_FORWARD, ipForwardBefore);
  }
}

/**
 * slirp4netns processes of a state root's containers (--network slirp4netns), as "pid: command
 * line": those whose log (their stdout) is in a container directory under `root`. A zombie has
 * no fds and is left to its parent (the host's init after its box was killed).
 */
export function slirpProcesses(root: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'slirp4netns') continue;
      if (!readlinkSync(`/proc/${entry}/fd/1`).startsWith(`${root}/`)) continue;
      found.push(`${entry}: ${readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').trim()}`);
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

/** An HTTP GET over TCP from this process (to a published port); resolves with the body. */
export function httpGet(host: string, port: number, path = '/hostname'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port }, () => socket.end(`GET ${path} HTTP/1.0\r\n\r\n`));
    let data = '';
    socket.setTimeout(3000, () => socket.destroy(new Error(`no answer from ${host}:${port}`)));
    socket.on('data', (d) => {
      data += d;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(data.slice(data.indexOf('\r\n\r\n') + 4)));
  });
}
