/**
 * rtnetlink against the real kernel (root): links, addresses and routes here and inside
 * network namespaces this file makes, each checked with iproute2.
 */
import { closeSync, openSync, readlinkSync } from 'node:fs';
import { AF_NETLINK, NETLINK_ROUTE, SOCK_RAW, socket } from '@box/sys';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  addNamedNetns,
  cleanUp,
  freeSubnet,
  ip,
  ipJson,
  ownNetns,
  removeLinkLater,
  runTag,
  startNetns,
  uniqueName,
} from '../test/kernel.js';
import { isNetlinkError, type NetlinkError } from './errors.js';
import { adoptRtnetlink, openRtnetlink, type Rtnetlink } from './rtnetlink.js';
import { NetlinkSocket } from './socket.js';

let host: Rtnetlink;
let hostNetns: string;

beforeAll(() => {
  expect(process.getuid?.(), 'these tests change network interfaces: run them as root').toBe(0);
  hostNetns = ownNetns();
  host = openRtnetlink();
});

afterEach(async () => {
  await cleanUp();
  expect(ownNetns(), 'the thread is back in its own network namespace').toBe(hostNetns);
});

afterAll(() => {
  host?.close();
  // Nothing of this run is left, here or as a named namespace.
  expect(ipJson(['link', 'show']).filter((link) => String(link.ifname).startsWith(runTag))).toEqual([]);
  expect(ip(['netns', 'list'])).not.toContain(runTag);
});

/** How many links a socket lists (a dump through the low-level socket). */
function dumpedLinks(socket: NetlinkSocket): number {
  return socket.dump(18, [Buffer.alloc(16)], 'list links').filter((message) => message.type === 16).length;
}

/** The error `run` throws, which must be a NetlinkError. */
function netlinkError(run: () => unknown): NetlinkError {
  try {
    run();
  } catch (error) {
    expect(isNetlinkError(error), String(error)).toBe(true);
    return error as NetlinkError;
  }
  throw new Error('expected a NetlinkError, nothing was thrown');
}

describe('bridges and addresses in this namespace', () => {
  it('creates a bridge, up; a second create is EEXIST; delete, then ENODEV', () => {
    const bridge = removeLinkLater(uniqueName('b'));
    host.createBridge(bridge, { up: true });

    const [seen] = ipJson(['-d', 'link', 'show', 'dev', bridge]);
    expect(seen?.linkinfo?.info_kind).toBe('bridge');
    expect(seen?.flags).toContain('UP');
    expect(host.linkIndex(bridge)).toBe(seen?.ifindex);
    expect(host.getLink(bridge)).toMatchObject({
      name: bridge,
      kind: 'bridge',
      up: true,
      mac: seen?.address,
    });
    expect(host.listLinks().find((link) => link.name === bridge)?.index).toBe(seen?.ifindex);

    const exists = netlinkError(() => host.createBridge(bridge));
    expect(exists.code).toBe('EEXIST');
    expect(exists.message).toBe(`add bridge ${bridge}: EEXIST (file exists)`);

    host.deleteLink(bridge);
    expect(ipJson(['link', 'show']).some((link) => link.ifname === bridge)).toBe(false);
    const gone = netlinkError(() => host.deleteLink(bridge));
    expect(gone.code).toBe('ENODEV');
    expect(gone.message).toBe(`delete link ${bridge}: ENODEV (no such device)`);
  });

  it('adds an address with its broadcast; the prefix route shows in listRoutes; a second add is EEXIST', () => {
    const bridge = removeLinkLater(uniqueName('b'));
    const subnet = freeSubnet();
    host.createBridge(bridge, { mtu: 1400 });
    host.addAddress(bridge, `${subnet}.1/24`);
    host.setLinkUp(bridge);

    const [seen] = ipJson(['-4', 'addr', 'show', 'dev', bridge]);
    expect(seen?.mtu).toBe(1400);
    expect(seen?.addr_info).toEqual([
      expect.objectContaining({
        local: `${subnet}.1`,
        prefixlen: 24,
        broadcast: `${subnet}.255`,
        label: bridge,
      }),
    ]);
    expect(host.listAddresses(bridge)).toEqual([
      {
        index: host.linkIndex(bridge),
        address: `${subnet}.1`,
        prefixLength: 24,
        cidr: `${subnet}.1/24`,
        broadcast: `${subnet}.255`,
        label: bridge,
        scope: 0,
      },
    ]);
    // The route the kernel adds for the prefix: what a check for overlapping subnets reads.
    expect(host.listRoutes()).toContainEqual(
      expect.objectContaining({
        dst: `${subnet}.0/24`,
        oif: host.linkIndex(bridge),
        protocol: 2,
        scope: 253,
      }),
    );
    expect(host.listRoutes({ table: 'all' }).some((route) => route.table === 255)).toBe(true); // local table

    const again = netlinkError(() => host.addAddress(bridge, `${subnet}.1/24`));
    expect(again.code).toBe('EEXIST');
    // Linux 6.x adds its own words: `: ipv4: Address already assigned`.
    expect(again.message.startsWith(`add address ${subnet}.1/24 to ${bridge}: EEXIST (file exists)`)).toBe(
      true,
    );
  });
});

describe('a container side: veth peer eth0 inside a network namespace', () => {
  it('sets up eth0 in a process namespace, attached to a bridge; the container pings the gateway', async () => {
    const netns = await startNetns();
    const bridge = removeLinkLater(uniqueName('b'));
    const veth = removeLinkLater(uniqueName('v'));
    const subnet = freeSubnet();
    const hostEth0 = ipJson(['link', 'show']).find((link) => link.ifname === 'eth0');

    host.createBridge(bridge, { up: true });
    host.addAddress(bridge, `${subnet}.1/24`);
    host.createVethPair(veth, 'eth0', { peerNetns: { pid: netns.pid }, master: bridge, up: true, mtu: 1450 });

    const [hostEnd] = ipJson(['-d', 'link', 'show', 'dev', veth]);
    expect(hostEnd).toMatchObject({ master: bridge, mtu: 1450, linkinfo: { info_kind: 'veth' } });
    expect(hostEnd?.flags).toContain('UP');
    // The host's own eth0, if it has one, is untouched: the peer was born in the other namespace.
    expect(ipJson(['link', 'show']).find((link) => link.ifname === 'eth0')).toEqual(hostEth0);

    const inner = openRtnetlink({ netns: { pid: netns.pid } });
    try {
      expect(ownNetns()).toBe(hostNetns);
      inner.setLinkUp('lo');
      inner.setLinkUp('eth0');
      inner.addAddress('eth0', `${subnet}.2/24`);
      inner.addRoute({ gateway: `${subnet}.1` });

      const links = netns.ipJson(['-d', 'link', 'show']);
      expect(links.map((link) => link.ifname).sort()).toEqual(['eth0', 'lo']);
      const eth0 = links.find((link) => link.ifname === 'eth0');
      expect(eth0).toMatchObject({ mtu: 1450, operstate: 'UP', linkinfo: { info_kind: 'veth' } });
      expect(links.find((link) => link.ifname === 'lo')?.flags).toContain('UP');
      expect(netns.ipJson(['-4', 'addr', 'show', 'dev', 'eth0'])[0]?.addr_info).toEqual([
        expect.objectContaining({ local: `${subnet}.2`, prefixlen: 24, broadcast: `${subnet}.255` }),
      ]);
      expect(netns.ipJson(['-4', 'route', 'show'])).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ dst: 'default', gateway: `${subnet}.1`, dev: 'eth0' }),
          expect.objectContaining({ dst: `${subnet}.0/24`, dev: 'eth0', prefsrc: `${subnet}.2` }),
        ]),
      );

      // The same, as this package reads it from inside.
      expect(inner.getLink('eth0')).toMatchObject({ kind: 'veth', up: true, lowerUp: true, mtu: 1450 });
      expect(inner.getLink('eth0').peerIndex).toBe(hostEnd?.ifindex);
      expect(inner.listRoutes()).toContainEqual(
        expect.objectContaining({ dst: 'default', gateway: `${subnet}.1`, oif: inner.linkIndex('eth0') }),
      );
      expect(inner.listAddresses('eth0').map((address) => address.cidr)).toEqual([`${subnet}.2/24`]);

      // Traffic stays on this machine: the namespace's eth0 → the veth → the bridge's address.
      expect(netns.run(['busybox', 'ping', '-c', '1', '-W', '2', `${subnet}.1`])).toContain(
        '1 packets received',
      );
      // Taken off again: the link stays, without the address (and its route); twice is an error.
      inner.deleteAddress('eth0', `${subnet}.2/24`);
      expect(inner.listAddresses('eth0')).toEqual([]);
      expect(netlinkError(() => inner.deleteAddress('eth0', `${subnet}.2/24`)).code).toBe('EADDRNOTAVAIL');
    } finally {
      inner.close();
    }
  });

  it('takes the peer namespace as an open fd, and as a path (ip netns add)', () => {
    const named = addNamedNetns();
    const viaPath = removeLinkLater(uniqueName('v'));
    host.createVethPair(viaPath, 'eth0', { peerNetns: { path: named.path } });
    expect(ipJson(['-n', named.name, 'link', 'show', 'dev', 'eth0'])).toHaveLength(1);

    const viaFd = removeLinkLater(uniqueName('v'));
    const fd = openSync(named.path, 'r');
    try {
      host.createVethPair(viaFd, 'eth1', { peerNetns: { fd } });
      const inner = openRtnetlink({ netns: { fd } });
      try {
        inner.setLinkUp('eth1');
      } finally {
        inner.close();
      }
    } finally {
      closeSync(fd);
    }
    const eth1 = ipJson(['-n', named.name, 'link', 'show', 'dev', 'eth1'])[0];
    expect(eth1?.flags).toContain('UP');

    const inner = openRtnetlink({ netns: { path: named.path } });
    try {
      expect(
        inner
          .listLinks()
          .map((link) => link.name)
          .sort(),
      ).toEqual(['eth0', 'eth1', 'lo']);
    } finally {
      inner.close();
    }
  });

  it('refuses a peer name taken in the namespace (EEXIST) and leaves no half pair', async () => {
    const netns = await startNetns();
    const first = removeLinkLater(uniqueName('v'));
    const second = removeLinkLater(uniqueName('v'));
    host.createVethPair(first, 'eth0', { peerNetns: { pid: netns.pid } });

    const taken = netlinkError(() => host.createVethPair(second, 'eth0', { peerNetns: { pid: netns.pid } }));
    expect(taken.code).toBe('EEXIST');
    expect(taken.message).toMatch(
      new RegExp(`^add veth ${second} with peer eth0 in netns of pid ${netns.pid}: EEXIST \\(file exists\\)`),
    );
    expect(ipJson(['link', 'show']).some((link) => link.ifname === second)).toBe(false);

    const hostTaken = netlinkError(() =>
      host.createVethPair(first, 'eth1', { peerNetns: { pid: netns.pid } }),
    );
    expect(hostTaken.code).toBe('EEXIST');
    expect(netns.ipJson(['link', 'show']).map((link) => link.ifname)).not.toContain('eth1');
  });

  it('refuses a master that does not exist (ENODEV, named) before creating anything', async () => {
    const netns = await startNetns();
    const veth = removeLinkLater(uniqueName('v'));
    const missing = uniqueName('b');
    const error = netlinkError(() =>
      host.createVethPair(veth, 'eth0', { peerNetns: { pid: netns.pid }, master: missing }),
    );
    expect(error.code).toBe('ENODEV');
    expect(error.message).toBe(
      `add veth ${veth} with peer eth0 in netns of pid ${netns.pid}: ENODEV (no such device): no link named ${missing}`,
    );
    expect(ipJson(['link', 'show']).some((link) => link.ifname === veth)).toBe(false);
    expect(netns.ipJson(['link', 'show']).map((link) => link.ifname)).toEqual(['lo']);
  });

  it('names the namespace in errors from inside it (ENODEV, ENETUNREACH with the kernel’s words)', async () => {
    const netns = await startNetns();
    const inner = openRtnetlink({ netns: { pid: netns.pid } });
    try {
      const noLink = netlinkError(() => inner.setLinkUp('eth0'));
      expect(noLink.code).toBe('ENODEV');
      expect(noLink.message).toBe(`set link eth0 up in netns of pid ${netns.pid}: ENODEV (no such device)`);

      const noAddressLink = netlinkError(() => inner.addAddress('eth0', '198.18.0.2/24'));
      expect(noAddressLink.message).toBe(
        `add address 198.18.0.2/24 to eth0 in netns of pid ${netns.pid}: ENODEV (no such device): no link named eth0`,
      );

      inner.setLinkUp('lo');
      const unreachable = netlinkError(() => inner.addRoute({ gateway: '198.18.0.1' }));
      expect(unreachable.code).toBe('ENETUNREACH');
      expect(unreachable.message).toMatch(
        new RegExp(`^add route default via 198\\.18\\.0\\.1 in netns of pid ${netns.pid}: ENETUNREACH`),
      );
      expect(unreachable.detail).toBeTruthy(); // the kernel's extended acknowledgement
    } finally {
      inner.close();
    }
  });
});

describe('links within this namespace', () => {
  it('attaches and detaches a master, sets MAC, MTU, up and down', () => {
    const bridge = removeLinkLater(uniqueName('b'));
    const a = removeLinkLater(uniqueName('v'));
    const b = uniqueName('v');
    host.createBridge(bridge);
    host.createVethPair(a, b);
    expect(host.getLink(a).peerIndex).toBe(host.linkIndex(b));

    host.setMaster(a, bridge);
    expect(ipJson(['link', 'show', 'dev', a])[0]?.master).toBe(bridge);
    expect(host.getLink(a).master).toBe(host.linkIndex(bridge));
    host.setMaster(host.linkIndex(a), null);
    expect(ipJson(['link', 'show', 'dev', a])[0]?.master).toBeUndefined();

    host.setMac(a, '02:42:c6:12:00:02');
    host.setMtu(a, 1300);
    host.setLinkUp(host.linkIndex(a));
    host.setLinkUp(b);
    expect(ipJson(['link', 'show', 'dev', a])[0]).toMatchObject({ address: '02:42:c6:12:00:02', mtu: 1300 });
    expect(host.getLink(a)).toMatchObject({ up: true, lowerUp: true, operState: 'up' });
    host.setLinkDown(b);
    expect(host.getLink(a)).toMatchObject({ up: true, lowerUp: false });

    host.deleteLink(a); // and with it b
    expect(ipJson(['link', 'show']).some((link) => link.ifname === b)).toBe(false);
  });

  it('refuses bad arguments with EINVAL before sending anything', () => {
    const tooLong = `${runTag}0123456789`;
    expect(netlinkError(() => host.createBridge(tooLong)).message).toMatch(
      new RegExp(`^add bridge ${tooLong}: EINVAL \\(invalid argument\\): not an interface name`),
    );
    expect(netlinkError(() => host.addAddress('lo', '10.0.0.1')).message).toMatch(
      /^add address 10\.0\.0\.1 to lo: EINVAL \(invalid argument\): not an IPv4 address with a prefix length/,
    );
    expect(netlinkError(() => host.addAddress('lo', '10.0.0.300/8')).code).toBe('EINVAL');
    expect(netlinkError(() => host.addAddress('lo', '10.0.0.1/33')).code).toBe('EINVAL');
    expect(netlinkError(() => host.setMac('lo', '02:42')).message).toMatch(/not a MAC address/);
    expect(netlinkError(() => host.setMtu('lo', 20)).message).toMatch(/not an MTU/);
    expect(netlinkError(() => host.addRoute({ dst: '10.0.0.0/8' })).message).toBe(
      'add route 10.0.0.0/8: EINVAL (invalid argument): a route needs a gateway or a link',
    );
    expect(netlinkError(() => host.setLinkUp(0)).code).toBe('EINVAL');
    const missing = uniqueName('x');
    expect(netlinkError(() => host.linkIndex(missing)).message).toBe(
      `get link ${missing}: ENODEV (no such device)`,
    );
  });
});

describe('sockets in other namespaces', () => {
  it('leaves the thread in its own namespace when the target cannot be entered', () => {
    const noProcess = netlinkError(() => openRtnetlink({ netns: { pid: 0x3ffffff } }));
    expect(noProcess.code).toBe('ENOENT');
    expect(noProcess.message).toMatch(/^open netlink socket in netns of pid 67108863: ENOENT/);
    expect(ownNetns()).toBe(hostNetns);

    const notANamespace = openSync('/proc/self/stat', 'r');
    try {
      const error = netlinkError(() => openRtnetlink({ netns: { fd: notANamespace } }));
      expect(error.code).toBe('EINVAL');
    } finally {
      closeSync(notANamespace);
    }
    expect(netlinkError(() => openRtnetlink({ netns: { pid: 0 } })).code).toBe('EINVAL');
    expect(ownNetns()).toBe(hostNetns);
  });

  it('returns the thread to its own namespace when the socket fails inside the target', async () => {
    const netns = await startNetns();
    const error = netlinkError(() => NetlinkSocket.open({ protocol: 999, netns: { pid: netns.pid } }));
    expect(error.code).toBe('EPROTONOSUPPORT');
    expect(ownNetns()).toBe(hostNetns);
    expect(readlinkSync(`/proc/${process.pid}/task/${process.pid}/ns/net`)).toBe(hostNetns);
  });

  it('keeps each socket in its namespace, whichever is used first', async () => {
    const netns = await startNetns();
    const inner = openRtnetlink({ netns: { pid: netns.pid } });
    const again = openRtnetlink();
    try {
      expect(inner.listLinks().map((link) => link.name)).toEqual(['lo']);
      expect(again.listLinks().map((link) => link.index)).toEqual(host.listLinks().map((link) => link.index));
    } finally {
      inner.close();
      again.close();
    }
  });

  it('gives up on an answer that never comes (ETIMEDOUT after timeoutMs)', () => {
    const socket = NetlinkSocket.open({ timeoutMs: 50 });
    try {
      // A control message without NLM_F_ACK: the kernel takes it and answers nothing.
      const start = performance.now();
      const error = netlinkError(() => socket.get(1, [], 'send a no-op'));
      expect(error.code).toBe('ETIMEDOUT');
      expect(error.message).toBe(
        'send a no-op: ETIMEDOUT (connection timed out): no answer from the kernel within 50 ms',
      );
      expect(performance.now() - start).toBeGreaterThanOrEqual(40);
      // The socket still works, and the late answers of abandoned requests are skipped by sequence number.
      expect(dumpedLinks(socket)).toBeGreaterThan(0);
    } finally {
      socket.close();
    }
  });

  it('adopts a socket made elsewhere, and refuses to use one that is closed', () => {
    const fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    const adopted = adoptRtnetlink(fd, { where: 'in the adopted socket' });
    expect(adopted.getLink('lo').index).toBe(1);
    adopted.close();
    adopted.close();
    const closed = netlinkError(() => adopted.getLink('lo'));
    expect(closed.message).toBe(
      'get link lo in the adopted socket: EBADF (bad file descriptor): the socket is closed',
    );
  });
});
