import { describe, expect, it } from 'vitest';
import {
  containerBatch,
  networkBatch,
  parseContainerChain,
  parseListing,
  portOfElementLine,
  removeContainerBatch,
  removeNetworkBatch,
  restrictForwardingBatch,
  skeletonBatch,
} from './rules.js';

const NETWORK = { network: 'front', bridge: 'br-front', subnet: '172.18.0.0/16' };

describe('batches', () => {
  it('dispatch published ports from both nat hooks through the two maps', () => {
    expect(skeletonBatch('box')).toEqual([
      'add table ip box',
      'add map ip box published-addr { type ipv4_addr . inet_proto . inet_service : verdict; }',
      'add map ip box published-any { type inet_proto . inet_service : verdict; }',
      'add set ip box bridges { type ifname; }',
      'add chain ip box loopback-guard { type filter hook prerouting priority raw; policy accept; }',
      'flush chain ip box loopback-guard',
      'add rule ip box loopback-guard iifname != "lo" ip daddr 127.0.0.0/8 drop',
      'add chain ip box prerouting { type nat hook prerouting priority dstnat; policy accept; }',
      'flush chain ip box prerouting',
      'add rule ip box prerouting fib daddr type local ip daddr . meta l4proto . th dport vmap @published-addr',
      'add rule ip box prerouting fib daddr type local meta l4proto . th dport vmap @published-any',
      'add chain ip box output { type nat hook output priority -100; policy accept; }',
      'flush chain ip box output',
      'add rule ip box output fib daddr type local ip daddr . meta l4proto . th dport vmap @published-addr',
      'add rule ip box output fib daddr type local meta l4proto . th dport vmap @published-any',
    ]);
  });

  it('limit forwarding to box bridges where box turned ip_forward on', () => {
    expect(restrictForwardingBatch('box')).toEqual([
      'add chain ip box forward { type filter hook forward priority filter - 10; policy drop; }',
      'flush chain ip box forward',
      'add rule ip box forward ct state established,related accept',
      'add rule ip box forward iifname @bridges accept',
      'add rule ip box forward oifname @bridges accept',
    ]);
    expect(networkBatch('box', NETWORK)).toContain('add element ip box bridges { "br-front" }');
  });

  it("give a network docker's forwarding and masquerading, and a guard", () => {
    const lines = networkBatch('box', NETWORK);
    expect(lines).toContain(
      'add rule ip box net-front-postrouting ip saddr 172.18.0.0/16 oifname != "br-front" masquerade',
    );
    expect(lines).toContain('add rule ip box net-front-forward oifname "br-front" ct status dnat accept');
    expect(lines).toContain('add rule ip box net-front-guard iifname "br-front" ip daddr 127.0.0.0/8 drop');
    const internal = networkBatch('box', { ...NETWORK, internal: true });
    expect(internal.filter((line) => line.includes('masquerade'))).toEqual([]);
    expect(internal).toContain('add rule ip box net-front-forward iifname "br-front" drop');
    expect(internal).toContain('add rule ip box net-front-forward oifname "br-front" drop');
    expect(removeNetworkBatch('box', 'front')).toEqual([
      'add chain ip box net-front-forward',
      'delete chain ip box net-front-forward',
      'add chain ip box net-front-postrouting',
      'delete chain ip box net-front-postrouting',
      'add chain ip box net-front-guard',
      'delete chain ip box net-front-guard',
    ]);
  });

  it('give a container a chain of DNAT rules and one map element per port', () => {
    const rules = {
      containerId: 'abc123',
      address: '172.18.0.2',
      ports: [
        { hostPort: 8080, containerPort: 80 },
        { hostIp: '127.0.0.1', hostPort: 5432, containerPort: 5432 },
        { hostIp: '0.0.0.0', hostPort: 53, containerPort: 53, protocol: 'udp' as const },
      ],
    };
    expect(containerBatch('box', rules, 'replace').slice(0, 3)).toEqual([
      'add chain ip box ctr-abc123',
      'flush chain ip box ctr-abc123',
      'add rule ip box ctr-abc123 tcp dport 8080 dnat to 172.18.0.2:80',
    ]);
    expect(containerBatch('box', rules, 'create')).toEqual([
      'create chain ip box ctr-abc123',
      'add rule ip box ctr-abc123 tcp dport 8080 dnat to 172.18.0.2:80',
      'add rule ip box ctr-abc123 ip daddr 127.0.0.1 tcp dport 5432 dnat to 172.18.0.2:5432',
      'add rule ip box ctr-abc123 udp dport 53 dnat to 172.18.0.2:53',
      'add element ip box published-any { tcp . 8080 : jump ctr-abc123 }',
      'add element ip box published-addr { 127.0.0.1 . tcp . 5432 : jump ctr-abc123 }',
      'add element ip box published-any { udp . 53 : jump ctr-abc123 }',
    ]);
    expect(
      portOfElementLine('add element ip box published-addr { 127.0.0.1 . tcp . 5432 : jump ctr-abc123 }'),
    ).toEqual({ hostIp: '127.0.0.1', hostPort: 5432 });
    expect(portOfElementLine('add element ip box published-any { udp . 53 : jump ctr-abc123 }')).toEqual({
      hostIp: null,
      hostPort: 53,
    });
  });

  it('refuse what could not be a name, an address or a port, before anything runs', () => {
    const bad: Array<[() => unknown, string]> = [
      [() => networkBatch('box', { ...NETWORK, network: 'a b' }), 'invalid network name "a b"'],
      [() => networkBatch('box', { ...NETWORK, bridge: 'x"; flush ruleset' }), 'invalid interface name'],
      [() => networkBatch('box', { ...NETWORK, bridge: 'sixteen-chars-xx' }), 'invalid interface name'],
      [() => networkBatch('box', { ...NETWORK, subnet: '172.18.0.0/16; drop' }), 'invalid subnet'],
      [() => networkBatch('box; flush ruleset', NETWORK), 'invalid table name'],
      [
        () => containerBatch('box', { containerId: '-x', address: '1.2.3.4', ports: [] }, 'create'),
        'invalid container id',
      ],
      [
        () => containerBatch('box', { containerId: 'x', address: '1.2.3', ports: [] }, 'create'),
        'invalid container address',
      ],
      [
        () =>
          containerBatch(
            'box',
            { containerId: 'x', address: '1.2.3.4', ports: [{ hostPort: 0, containerPort: 1 }] },
            'create',
          ),
        'invalid host port 0: expected 1 to 65535',
      ],
      [
        () =>
          containerBatch(
            'box',
            { containerId: 'x', address: '1.2.3.4', ports: [{ hostPort: 1, containerPort: 70000 }] },
            'create',
          ),
        'invalid container port 70000',
      ],
      [
        () =>
          containerBatch(
            'box',
            {
              containerId: 'x',
              address: '1.2.3.4',
              ports: [{ hostPort: 1, containerPort: 1, protocol: 'sctp' as unknown as 'tcp' }],
            },
            'create',
          ),
        'invalid protocol "sctp"',
      ],
      [
        () =>
          containerBatch(
            'box',
            {
              containerId: 'x',
              address: '1.2.3.4',
              ports: [
                { hostIp: '127.0.0.1', hostPort: 80, containerPort: 80 },
                { hostPort: 80, containerPort: 81 },
              ],
            },
            'create',
          ),
        'Bind for 127.0.0.1:80 failed: port is already allocated',
      ],
    ];
    for (const [make, message] of bad) expect(make).toThrow(message);
  });
});

describe('listings', () => {
  // As nft 1.0.6 prints `nft -j list table ip box`.
  const objects = [
    { metainfo: { version: '1.0.6', json_schema_version: 1 } },
    { table: { family: 'ip', name: 'box', handle: 1 } },
    {
      map: {
        family: 'ip',
        name: 'published-addr',
        table: 'box',
        type: ['ipv4_addr', 'inet_proto', 'inet_service'],
        map: 'verdict',
        elem: [[{ concat: ['10.0.0.5', 'tcp', 8080] }, { jump: { target: 'ctr-a' } }]],
      },
    },
    {
      map: {
        family: 'ip',
        name: 'published-any',
        table: 'box',
        type: ['inet_proto', 'inet_service'],
        map: 'verdict',
        elem: [
          [{ concat: ['udp', 53] }, { jump: { target: 'ctr-a' } }],
          [{ concat: ['tcp', 80] }, { jump: { target: 'ctr-b' } }],
          [{ concat: ['tcp', 81] }, { goto: { target: 'elsewhere' } }],
        ],
      },
    },
    {
      chain: { family: 'ip', table: 'box', name: 'prerouting', type: 'nat', hook: 'prerouting', prio: -100 },
    },
    { chain: { family: 'ip', table: 'box', name: 'ctr-a' } },
    { chain: { family: 'ip', table: 'box', name: 'net-my-net-forward', type: 'filter', hook: 'forward' } },
    { rule: { family: 'ip', table: 'box', chain: 'ctr-a', expr: [] } },
    { rule: { family: 'ip', table: 'box', chain: 'ctr-a', expr: [] } },
  ];

  it('tell networks, containers and their ports', () => {
    const listing = parseListing('box', objects);
    expect(listing).toEqual({
      exists: true,
      chains: [
        { name: 'prerouting', hook: 'prerouting', rules: 0 },
        { name: 'ctr-a', hook: null, rules: 2 },
        { name: 'net-my-net-forward', hook: 'forward', rules: 0 },
      ],
      networks: ['my-net'],
      containers: [
        {
          containerId: 'a',
          chain: true,
          ports: [
            { hostIp: '10.0.0.5', protocol: 'tcp', hostPort: 8080 },
            { hostIp: null, protocol: 'udp', hostPort: 53 },
          ],
        },
        // An element left without its chain (by hand) is still found, so it can be removed.
        { containerId: 'b', chain: false, ports: [{ hostIp: null, protocol: 'tcp', hostPort: 80 }] },
      ],
    });
    expect(parseListing('box', null)).toEqual({ exists: false, chains: [], networks: [], containers: [] });
  });

  it('give the batch that removes one container', () => {
    const listing = parseListing('box', objects);
    const of = (id: string) => listing.containers.find((c) => c.containerId === id);
    expect(removeContainerBatch('box', of('a'))).toEqual([
      'delete element ip box published-addr { 10.0.0.5 . tcp . 8080 }',
      'delete element ip box published-any { udp . 53 }',
      'flush chain ip box ctr-a',
      'delete chain ip box ctr-a',
    ]);
    expect(removeContainerBatch('box', of('b'))).toEqual([
      'delete element ip box published-any { tcp . 80 }',
    ]);
    expect(removeContainerBatch('box', of('c'))).toEqual([]);
  });

  it("read a container's ports from its own chain", () => {
    // As nft 1.0.6 prints `nft -j list chain ip box ctr-o5`.
    const chain = [
      { metainfo: { version: '1.0.6', json_schema_version: 1 } },
      { chain: { family: 'ip', table: 'box', name: 'ctr-o5', handle: 59 } },
      {
        rule: {
          family: 'ip',
          table: 'box',
          chain: 'ctr-o5',
          expr: [
            { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 10005 } },
            { dnat: { addr: '10.0.0.7', port: 80 } },
          ],
        },
      },
      {
        rule: {
          family: 'ip',
          table: 'box',
          chain: 'ctr-o5',
          expr: [
            {
              match: { op: '==', left: { payload: { protocol: 'ip', field: 'daddr' } }, right: '127.0.0.1' },
            },
            { match: { op: '==', left: { payload: { protocol: 'udp', field: 'dport' } }, right: 20005 } },
            { dnat: { addr: '10.0.0.7', port: 1 } },
          ],
        },
      },
    ];
    const entry = parseContainerChain('box', 'o5', chain);
    expect(entry).toEqual({
      containerId: 'o5',
      chain: true,
      ports: [
        { hostIp: null, protocol: 'tcp', hostPort: 10005 },
        { hostIp: '127.0.0.1', protocol: 'udp', hostPort: 20005 },
      ],
    });
    expect(removeContainerBatch('box', entry)).toEqual([
      'delete element ip box published-any { tcp . 10005 }',
      'delete element ip box published-addr { 127.0.0.1 . udp . 20005 }',
      'flush chain ip box ctr-o5',
      'delete chain ip box ctr-o5',
    ]);
    expect(parseContainerChain('box', 'o5', null)).toBeUndefined();
  });
});
