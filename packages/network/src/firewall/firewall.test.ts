/**
 * The firewall on the real kernel, in network namespaces each test makes and deletes
 * (netns-fixture.ts): traffic flows only between them, and the machine's own ruleset is never
 * read or changed. Needs root, nft and iproute2: without them every test fails, saying why.
 */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createFirewall, type Firewall } from './firewall.js';
import {
  connect,
  inNetns,
  leftoverNamespaces,
  makeTopology,
  namespacePrefix,
  removeTopology,
  startServer,
  stopServers,
  type Topology,
} from './netns-fixture.js';
import { applyBatch, locateNft } from './nft.js';
import { enableIpForward } from './sysctl.js';

let t: Topology;
let fw: Firewall;
const servers: ChildProcess[] = [];

const WEB = { containerId: 'web', address: '10.77.0.2' };
const NETWORK = { network: 'test-net', bridge: 'bx0', subnet: '10.77.0.0/24' };

beforeAll(() => {
  if (process.getuid?.() !== 0)
    throw new Error('the firewall tests need root (network namespaces, nftables)');
  locateNft(); // ENFTMISSING names the package to install
  execFileSync('ip', ['netns', 'list']);
});

beforeEach(async () => {
  t = makeTopology();
  fw = createFirewall({ netns: t.host });
  // A new namespace may start with the host's value (net.core.devconf_inherit_init_net), which
  // box itself turns on: off first, so that turning it on is seen.
  inNetns(t.host, 'sh', '-c', 'echo 0 > /proc/sys/net/ipv4/ip_forward');
  expect(await enableIpForward({ netns: t.host })).toBe(true);
  expect(await enableIpForward({ netns: t.host })).toBe(false);
  await startServer(t.c, 'tcp', '0.0.0.0', 80, servers);
  await startServer(t.outside, 'tcp', '0.0.0.0', 9000, servers);
});

afterEach(async () => {
  await stopServers(servers);
  removeTopology(t);
  expect(leftoverNamespaces(namespacePrefix())).toEqual([]);
});

/** `nft -j list table ip box` in the host namespace, without handles (they change on every rewrite). */
function table(name = 'box'): unknown[] {
  const json = JSON.parse(inNetns(t.host, 'nft', '-j', 'list', 'table', 'ip', name)) as {
    nftables: unknown[];
  };
  return JSON.parse(
    JSON.stringify(json.nftables.slice(1), (key, value) => (key === 'handle' ? undefined : value)),
  );
}

const owns = (id: string) => (object: unknown) => JSON.stringify(object).includes(`"ctr-${id}"`);

describe('published ports', () => {
  it('reach the container from another machine, from the host by its own address and by 127.0.0.1', async () => {
    await startServer(t.c, 'udp', '0.0.0.0', 53, servers);
    await fw.addNetwork(NETWORK);
    await fw.addContainer({
      ...WEB,
      ports: [
        { hostPort: 8080, containerPort: 80 },
        { hostPort: 5353, containerPort: 53, protocol: 'udp' },
      ],
    });
    // Another machine's address is kept, as with docker.
    expect(await connect(t.outside, 'tcp', '192.0.2.1', 8080)).toBe('192.0.2.2');
    expect(await connect(t.outside, 'udp', '192.0.2.1', 5353)).toBe('192.0.2.2');
    expect(await connect(t.host, 'tcp', '192.0.2.1', 8080)).toBe('192.0.2.1');
    // Through 127.0.0.1: route_localnet on the bridge, the source masqueraded to the bridge's address.
    expect(inNetns(t.host, 'cat', '/proc/sys/net/ipv4/conf/bx0/route_localnet').trim()).toBe('1');
    expect(await connect(t.host, 'tcp', '127.0.0.1', 8080)).toBe('10.77.0.1');
    // A port nobody published stays closed.
    expect(await connect(t.outside, 'tcp', '192.0.2.1', 8081)).toBe('ERR ECONNREFUSED');
  });

  it('on one host address only', async () => {
    await fw.addNetwork(NETWORK);
    await fw.addContainer({ ...WEB, ports: [{ hostIp: '10.77.0.1', hostPort: 8080, containerPort: 80 }] });
    expect(await connect(t.host, 'tcp', '10.77.0.1', 8080)).toBe('10.77.0.1');
    expect(await connect(t.host, 'tcp', '192.0.2.1', 8080)).toBe('ERR ECONNREFUSED');
    expect(await connect(t.host, 'tcp', '127.0.0.1', 8080)).toBe('ERR ECONNREFUSED');
  });

  it('reach the container from itself and from its neighbour through the host (hairpin)', async () => {
    await fw.addNetwork(NETWORK);
    await fw.addContainer({ ...WEB, ports: [{ hostPort: 8080, containerPort: 80 }] });
    expect(await connect(t.c, 'tcp', '192.0.2.1', 8080)).toBe('10.77.0.1');
    expect(await connect(t.d, 'tcp', '192.0.2.1', 8080)).toBe('10.77.0.1');
    expect(await connect(t.d, 'tcp', '10.77.0.1', 8080)).toBe('10.77.0.1');
  });

  it('a port another container publishes is refused, and nothing changes', async () => {
    await fw.addNetwork(NETWORK);
    await fw.addContainer({ ...WEB, ports: [{ hostPort: 8080, containerPort: 80 }] });
    const before = table();
    await expect(
      fw.addContainer({
        containerId: 'other',
        address: '10.77.0.3',
        ports: [
          { hostPort: 9090, containerPort: 90 },
          { hostPort: 8080, containerPort: 80 },
        ],
      }),
    ).rejects.toMatchObject({
      code: 'EPORTALLOCATED',
      message: 'Bind for 0.0.0.0:8080 failed: port is already allocated',
    });
    expect(table()).toEqual(before);
  });

  it('publishing again replaces what the container published', async () => {
    await fw.addNetwork(NETWORK);
    await fw.addContainer({ ...WEB, ports: [{ hostPort: 8080, containerPort: 80 }] });
    await fw.addContainer({ ...WEB, ports: [{ hostPort: 8081, containerPort: 80 }] });
    expect((await fw.list()).containers).toEqual([
      { containerId: 'web', chain: true, ports: [{ hostIp: null, protocol: 'tcp', hostPort: 8081 }] },
    ]);
    expect(await connect(t.outside, 'tcp', '192.0.2.1', 8081)).toBe('192.0.2.2');
    expect(await connect(t.outside, 'tcp', '192.0.2.1', 8080)).toBe('ERR ECONNREFUSED');
    // The port it gave up is free for another container.
    await fw.addContainer({
      containerId: 'next',
      address: '10.77.0.3',
      ports: [{ hostPort: 8080, containerPort: 80 }],
    });
  });
});

describe('network rules', () => {
  it('masquerade what leaves through another interface, and only with them does it get answers', async () => {
    expect(await connect(t.c, 'tcp', '192.0.2.2', 9000, 800)).toBe('TIMEOUT'); // outside has no route back
    await fw.addNetwork(NETWORK);
    expect(await connect(t.c, 'tcp', '192.0.2.2', 9000)).toBe('192.0.2.1');
  });

  it('let nothing in from outside that was not published or asked for', async () => {
    inNetns(t.outside, 'ip', 'route', 'add', '10.77.0.0/24', 'via', '192.0.2.1');
    expect(await connect(t.outside, 'tcp', '10.77.0.2', 80)).toBe('192.0.2.2'); // routed straight in
    await fw.addNetwork(NETWORK);
    expect(await connect(t.outside, 'tcp', '10.77.0.2', 80, 800)).toBe('TIMEOUT');
    expect(await connect(t.c, 'tcp', '192.0.2.2', 9000)).toBe('192.0.2.1'); // replies still come back
  });

  it('internal: nothing leaves the bridge and nothing comes in, containers still reach each other', async () => {
    await startServer(t.d, 'tcp', '0.0.0.0', 80, servers);
    inNetns(t.outside, 'ip', 'route', 'add', '10.77.0.0/24', 'via', '192.0.2.1');
    await fw.addNetwork({ ...NETWORK, internal: true });
    expect(await connect(t.c, 'tcp', '192.0.2.2', 9000, 800)).toBe('TIMEOUT');
    expect(await connect(t.outside, 'tcp', '10.77.0.2', 80, 800)).toBe('TIMEOUT');
    expect(await connect(t.c, 'tcp', '10.77.0.3', 80)).toBe('10.77.0.2');
    expect((await fw.list()).chains.map((chain) => chain.name)).toEqual(
      expect.arrayContaining(['test-net-forward', 'test-net-guard'].map((name) => `net-${name}`)),
    );
    expect(inNetns(t.host, 'cat', '/proc/sys/net/ipv4/conf/bx0/route_localnet').trim()).toBe('0');
  });

  it('the guard drops loopback addresses a container sends to the bridge (route_localnet is on there)', async () => {
    await startServer(t.host, 'tcp', '127.0.0.1', 7000, servers);
    // The container routes 127.0.0.1 to the host, as a hostile one could in its own namespace.
    inNetns(t.c, 'sysctl', '-qw', 'net.ipv4.conf.eth0.route_localnet=1');
    inNetns(t.c, 'ip', 'route', 'add', '127.0.0.1/32', 'via', '10.77.0.1', 'dev', 'eth0', 'table', '100');
    inNetns(t.c, 'ip', 'rule', 'add', 'to', '127.0.0.1', 'lookup', '100', 'pref', '10');
    inNetns(t.c, 'ip', 'rule', 'add', 'lookup', 'local', 'pref', '20');
    inNetns(t.c, 'ip', 'rule', 'del', 'pref', '0');
    // Without the guard, route_localnet on the bridge lets it reach a loopback-only service.
    inNetns(t.host, 'sysctl', '-qw', 'net.ipv4.conf.bx0.route_localnet=1');
    expect(await connect(t.c, 'tcp', '127.0.0.1', 7000)).toBe('10.77.0.2');
    await fw.addNetwork(NETWORK);
    expect(await connect(t.c, 'tcp', '127.0.0.1', 7000, 800)).toBe('TIMEOUT');
  });
});

describe('removal and listing', () => {
  it('removing a container deletes exactly its rules, and again is no error', async () => {
    await fw.addNetwork(NETWORK);
    await fw.addContainer({ ...WEB, ports: [{ hostPort: 8080, containerPort: 80 }] });
    const withoutWeb = table();
    await fw.addContainer({
      containerId: 'db',
      address: '10.77.0.3',
      ports: [
        { hostIp: '192.0.2.1', hostPort: 5432, containerPort: 5432 },
        { hostPort: 5433, containerPort: 5432, protocol: 'udp' },
      ],
    });
    const withDb = table();
    expect(withDb.filter(owns('db')).length).toBeGreaterThan(0);
    await fw.removeContainer('db');
    expect(table()).toEqual(withoutWeb);
    expect(table().filter(owns('db'))).toEqual([]);
    await fw.removeContainer('db');
    await fw.removeContainer('never-there');
    expect(await connect(t.outside, 'tcp', '192.0.2.1', 8080)).toBe('192.0.2.2');

    const listing = await fw.list();
    expect(listing.networks).toEqual(['test-net']);
    expect(listing.containers).toEqual([
      { containerId: 'web', chain: true, ports: [{ hostIp: null, protocol: 'tcp', hostPort: 8080 }] },
    ]);
  });

  it("a container's ports make box's table when there is none yet", async () => {
    expect(await fw.list()).toMatchObject({ exists: false });
    await fw.addContainer({ ...WEB, ports: [{ hostPort: 8080, containerPort: 80 }] });
    expect((await fw.list()).chains.map((chain) => chain.name)).toEqual([
      'loopback-guard',
      'prerouting',
      'output',
      'ctr-web',
    ]);
    expect(await connect(t.host, 'tcp', '192.0.2.1', 8080)).toBe('192.0.2.1');
    await fw.addContainer({ ...WEB, ports: [] }); // nothing to publish: its rules go
    expect((await fw.list()).containers).toEqual([]);
  });

  it('removing a container whose rules were changed by hand still removes all of them', async () => {
    await fw.addNetwork(NETWORK);
    const empty = table();
    const ports = [
      { hostPort: 8080, containerPort: 80 },
      { hostPort: 8081, containerPort: 81 },
    ];
    await fw.addContainer({ ...WEB, ports });
    inNetns(t.host, 'nft', 'delete element ip box published-any { tcp . 8080 }');
    await fw.removeContainer('web');
    expect(table()).toEqual(empty);
    await fw.addContainer({ ...WEB, ports });
    inNetns(t.host, 'nft', 'flush chain ip box ctr-web');
    await fw.removeContainer('web');
    expect(table()).toEqual(empty);
  });

  it('removing a network deletes its chains only, idempotently; the table can go whole', async () => {
    await fw.ensureTable();
    const empty = table();
    await fw.ensureTable();
    expect(table()).toEqual(empty);
    await fw.addNetwork(NETWORK);
    await fw.addNetwork({ ...NETWORK, network: 'other', bridge: 'vo', subnet: '192.0.2.0/24' });
    await fw.addContainer({ ...WEB, ports: [{ hostPort: 8080, containerPort: 80 }] });
    expect((await fw.list()).networks).toEqual(['other', 'test-net']);
    expect(fw.hasNetwork('other')).toBe(true);
    await fw.removeNetwork('other');
    await fw.removeNetwork('other');
    expect([fw.hasNetwork('other'), fw.hasNetwork('test-net')]).toEqual([false, true]);
    const listing = await fw.list();
    expect(listing.networks).toEqual(['test-net']);
    expect(listing.chains.map((chain) => [chain.name, chain.hook, chain.rules])).toEqual([
      ['loopback-guard', 'prerouting', 1],
      ['prerouting', 'prerouting', 2],
      ['output', 'output', 2],
      ['net-test-net-forward', 'forward', 5],
      ['net-test-net-postrouting', 'postrouting', 3],
      ['net-test-net-guard', 'prerouting', 2],
      ['ctr-web', null, 1],
    ]);
    await fw.deleteTable();
    await fw.deleteTable();
    expect(await fw.list()).toEqual({ exists: false, chains: [], networks: [], containers: [] });
    expect(fw.hasNetwork('test-net')).toBe(false); // no table at all: the same answer
    await fw.removeContainer('web');
  });

  it("reports nft's refusal with the batch line it names, having changed nothing", async () => {
    const lines = ['add table ip box', 'add chain ip box x', 'add rule ip box x jump nowhere'];
    const error = await applyBatch({ netns: t.host }, lines).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ENFT', command: lines[2] });
    expect((error as Error).message).toBe(
      'nft: Could not process rule: No such file or directory (in: add rule ip box x jump nowhere)',
    );
    expect(await fw.list()).toMatchObject({ exists: false });
  });

  it('takes many changes at once (each nft run is its own transaction)', async () => {
    await fw.ensureTable();
    const ids = Array.from({ length: 12 }, (_, n) => `par${n}`);
    const results = await Promise.allSettled([
      ...ids.map((id, n) =>
        fw.addContainer({
          containerId: id,
          address: `10.77.0.${n + 10}`,
          ports: [{ hostPort: 9000 + n, containerPort: 80 }],
        }),
      ),
      // Two containers racing for one port: exactly one gets it.
      fw.addContainer({
        containerId: 'race-a',
        address: '10.77.0.40',
        ports: [{ hostPort: 7777, containerPort: 80 }],
      }),
      fw.addContainer({
        containerId: 'race-b',
        address: '10.77.0.41',
        ports: [{ hostPort: 7777, containerPort: 80 }],
      }),
    ]);
    expect(results.slice(0, ids.length).every((result) => result.status === 'fulfilled')).toBe(true);
    const race = results.slice(ids.length);
    expect(race.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    expect(race.find((result) => result.status === 'rejected')).toMatchObject({
      reason: { code: 'EPORTALLOCATED', message: 'Bind for 0.0.0.0:7777 failed: port is already allocated' },
    });
    const listed = (await fw.list()).containers.map((entry) => entry.containerId);
    expect(listed.filter((id) => id.startsWith('par')).sort()).toEqual([...ids].sort());
    await Promise.all([...ids, 'race-a', 'race-b'].map((id) => fw.removeContainer(id)));
    expect((await fw.list()).containers).toEqual([]);
  });

  it('never touches another table', async () => {
    inNetns(
      t.host,
      'nft',
      'add table ip other; add chain ip other c { type filter hook forward priority 0; }',
    );
    inNetns(t.host, 'nft', 'add rule ip other c counter accept');
    const other = table('other');
    await fw.addNetwork(NETWORK);
    await fw.addContainer({ ...WEB, ports: [{ hostPort: 8080, containerPort: 80 }] });
    await fw.removeContainer('web');
    await fw.removeNetwork('test-net');
    await fw.deleteTable();
    expect(JSON.stringify(table('other')).replace(/"packets":\d+,"bytes":\d+/g, '')).toBe(
      JSON.stringify(other).replace(/"packets":\d+,"bytes":\d+/g, ''),
    );
  });
});
