/**
 * Networking as a docker user meets it, seen from inside the containers: the default bridge
 * network, user-defined networks with names, published ports from other hosts' side and
 * through 127.0.0.1, --network none/host/container:, /etc/hosts and /etc/resolv.conf, the
 * firewall rules and addresses gone with the container (also after its box was SIGKILLed), and
 * bad input refused with nothing made. Traffic stays on this machine: containers, the host's
 * own addresses and loopback.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { box, boxAsync, boxOk, useBoxRoot, waitFor } from '../helpers/box.js';
import { boxChains, heldAddresses } from '../helpers/network.js';

const env = useBoxRoot({ removeContainers: true });

/** An HTTP GET over a plain TCP connection from this process; resolves with the body. */
async function get(host: string, port: number, path = '/hostname'): Promise<string> {
  const { connect } = await import('node:net');
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port }, () => socket.end(`GET ${path} HTTP/1.0\r\n\r\n`));
    let data = '';
    socket.setTimeout(3000, () => socket.destroy(new Error(`no answer from ${host}:${port}`)));
    socket.on('data', (d) => (data += d));
    socket.on('error', reject);
    socket.on('close', () => resolve(data.slice(data.indexOf('\r\n\r\n') + 4)));
  });
}

/** This host's first global IPv4 address (on its own interface, not a bridge of box's). */
function hostAddress(): string {
  const r = spawnSync('ip', ['-j', '-4', 'addr', 'show', 'scope', 'global'], { encoding: 'utf8' });
  const links = JSON.parse(r.stdout) as { ifname: string; addr_info: { local: string }[] }[];
  const own = links.find((l) => !/^(box|br-|vb)/.test(l.ifname) && l.addr_info.length > 0);
  if (!own) throw new Error('this host has no global IPv4 address to test published ports with');
  return own.addr_info[0]!.local;
}

function inspect(ref: string) {
  return JSON.parse(boxOk(env.root, ['inspect', ref]))[0];
}

/** A detached busybox httpd serving /etc on port 80, with `flags` (-p, -P); its id. */
const httpd = (flags: string[], image = 'busybox') =>
  boxOk(env.root, ['run', '-d', ...flags, image, 'httpd', '-f', '-p', '80', '-h', '/etc']);

const defaultNetwork = () => JSON.parse(boxOk(env.root, ['network', 'inspect', 'bridge']))[0];

describe('the default bridge network', () => {
  it('gives eth0 an address, a default route through the gateway, /etc/hosts and resolv.conf', () => {
    const out = boxOk(env.root, [
      'run',
      '--rm',
      '--hostname',
      'web1',
      '--add-host',
      'db.local:10.9.8.7',
      'busybox',
      'sh',
      '-c',
      'ip -4 -o addr show eth0; ip route; cat /etc/hosts; echo ---; cat /etc/resolv.conf; ping -c1 -W2 $(ip route | awk "/default/ {print \\$3}") >/dev/null && echo gateway-answers',
    ]);
    const network = defaultNetwork();
    const { Subnet, Gateway } = network.IPAM.Config[0];
    const address = /inet (\d+\.\d+\.\d+\.\d+)\/(\d+)/.exec(out);
    expect(address).not.toBeNull();
    expect(`${address![2]}`).toBe(Subnet.split('/')[1]);
    expect(out).toContain(`default via ${Gateway} dev eth0`);
    expect(out).toMatch(new RegExp(`${address![1]!.replaceAll('.', '\\.')}\\tweb1`));
    expect(out).toContain('10.9.8.7\tdb.local');
    expect(out).toContain('127.0.0.1\tlocalhost');
    const resolv = out.split('---\n')[1]!;
    // The host's resolvers but loopback ones, which another network namespace cannot reach.
    expect(resolv).not.toMatch(/nameserver 127\./);
    expect(resolv).toMatch(/^nameserver /m);
    expect(out).toContain('gateway-answers');
  });

  it('shows the address in inspect while it runs, and gives it back when it ends', async () => {
    const id = boxOk(env.root, ['run', '-d', 'busybox', 'sleep', '100']);
    const settings = inspect(id).NetworkSettings;
    expect(settings.IPAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(settings.Networks.bridge.IPAddress).toBe(settings.IPAddress);
    const seen = boxOk(env.root, ['exec', id, 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
    expect(seen).toContain(`inet ${settings.IPAddress}/`);
    expect(heldAddresses(env.root)).toHaveLength(1);
    boxOk(env.root, ['stop', '-t', '1', id]);
    expect(inspect(id).NetworkSettings.IPAddress).toBe('');
    expect(heldAddresses(env.root)).toEqual([]);
    boxOk(env.root, ['rm', id]);
  });
});

describe('published ports', () => {
  it('-p reaches the container from the host address and 127.0.0.1; a taken port is refused', async () => {
    const id = httpd(['-p', '18081:80']);
    const hostname = inspect(id).Config.Hostname;
    await waitFor(() => spawnSync('ss', ['-ltn']).stdout.includes(':18081'), 5000);
    expect((await get('127.0.0.1', 18081)).trim()).toBe(hostname);
    expect((await get(hostAddress(), 18081)).trim()).toBe(hostname);
    expect(boxOk(env.root, ['port', id])).toBe('80/tcp -> 0.0.0.0:18081');
    expect(boxOk(env.root, ['ps'])).toContain('0.0.0.0:18081->80/tcp');
    // From the container itself, through the host's address (hairpin), and from another one.
    const fetch = `printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${hostAddress()} 18081 | tail -1`;
    expect(boxOk(env.root, ['exec', id, 'sh', '-c', fetch])).toBe(hostname);
    expect(boxOk(env.root, ['run', '--rm', 'busybox', 'sh', '-c', fetch])).toBe(hostname);

    const again = box(env.root, ['run', '--rm', '--name', 'second', '-p', '18081:80', 'busybox', 'true']);
    expect(again.code).toBe(125);
    expect(again.stderr.trim()).toBe('box: Bind for 0.0.0.0:18081 failed: port is already allocated');
    expect(box(env.root, ['inspect', 'second']).code).toBe(1);
    boxOk(env.root, ['rm', '-f', id]);
    expect(boxChains().filter((c) => c.startsWith('ctr-'))).toEqual([]);
    // The port is free again.
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(18081, '0.0.0.0', resolve));
    await new Promise((resolve) => server.close(resolve));
  });

  it('a port a host process holds is refused before the container exists; -p PORT picks a free one', async () => {
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(18082, '0.0.0.0', resolve));
    try {
      const r = box(env.root, ['run', '--rm', '-p', '18082:80', 'busybox', 'true']);
      expect([r.code, r.stderr.trim()]).toEqual([
        125,
        'box: Bind for 0.0.0.0:18082 failed: port is already allocated',
      ]);
      expect(box(env.root, ['ps', '-aq']).stdout).toBe('');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    const id = httpd(['-p', '127.0.0.1::80']);
    const mapped = boxOk(env.root, ['port', id, '80']);
    expect(mapped).toMatch(/^127\.0\.0\.1:\d+$/);
    const port = Number(mapped.split(':')[1]);
    expect(port).toBeGreaterThan(1023);
    await waitFor(() => spawnSync('ss', ['-ltn']).stdout.includes(`:${port}`), 5000);
    expect((await get('127.0.0.1', port)).trim()).toBe(inspect(id).Config.Hostname);
    // Its IPv6 twin [::1]:PORT only holds the port (no rule forwards it): a connection there is
    // closed at once, not kept open in the box service, one of its fds each for as long as any
    // local user likes.
    expect(spawnSync('ss', ['-ltn'], { encoding: 'utf8' }).stdout).toContain(`[::1]:${port} `);
    const twin = await new Promise<string>((resolve) => {
      const socket = connect({ host: '::1', port });
      const timer = setTimeout(() => {
        socket.destroy();
        resolve('kept open');
      }, 3000);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve('closed');
      });
    });
    expect(twin).toBe('closed');
    boxOk(env.root, ['rm', '-f', id]);
  });

  it('-P publishes each port the image exposes on a free host port', async () => {
    const base = boxOk(env.root, ['create', 'busybox', 'true']);
    boxOk(env.root, ['commit', '-c', 'EXPOSE 80', base, 'e2e-exposing']);
    boxOk(env.root, ['rm', base]);
    try {
      const id = httpd(['-P'], 'e2e-exposing');
      const mapped = boxOk(env.root, ['port', id]);
      expect(mapped).toMatch(/^80\/tcp -> 0\.0\.0\.0:\d+$/);
      const port = Number(mapped.split(':')[1]);
      await waitFor(() => spawnSync('ss', ['-ltn']).stdout.includes(`:${port}`), 5000);
      expect((await get('127.0.0.1', port)).trim()).toBe(inspect(id).Config.Hostname);
      boxOk(env.root, ['rm', '-f', id]);
    } finally {
      box(env.root, ['rmi', 'e2e-exposing']);
    }
  });

  it("a SIGKILLed box's container leaves no rule and no address once box runs again", async () => {
    const run = boxAsync(env.root, ['run', '--rm', '-p', '18083:80', 'busybox', 'sleep', '100']);
    await waitFor(() => boxChains().some((c) => c.startsWith('ctr-')), 10_000);
    run.child.kill('SIGKILL');
    await run.done;
    // Any command recovers what the dead one left.
    await waitFor(() => {
      box(env.root, ['ps']);
      return !boxChains().some((c) => c.startsWith('ctr-')) && heldAddresses(env.root).length === 0;
    }, 10_000);
    expect(boxChains().filter((c) => c.startsWith('ctr-'))).toEqual([]);
  });
});

describe('user-defined networks', () => {
  it('containers reach each other by name, also one started later; --ip; rm refused while used', () => {
    boxOk(env.root, ['network', 'create', '--subnet', '10.213.7.0/24', 'e2e-net']);
    try {
      const first = boxOk(env.root, [
        'run',
        '-d',
        '--network',
        'e2e-net',
        '--name',
        'first',
        'busybox',
        'sleep',
        '100',
      ]);
      boxOk(env.root, [
        'run',
        '-d',
        '--network',
        'e2e-net',
        '--ip',
        '10.213.7.50',
        '--name',
        'second',
        'busybox',
        'sleep',
        '100',
      ]);
      expect(inspect('second').NetworkSettings.Networks['e2e-net'].IPAddress).toBe('10.213.7.50');
      // `first` was running before `second` existed: its /etc/hosts learned the name.
      expect(boxOk(env.root, ['exec', first, 'ping', '-c1', '-W2', 'second'])).toContain('10.213.7.50');
      expect(boxOk(env.root, ['exec', 'second', 'ping', '-c1', '-W2', 'first'])).toContain('10.213.7.');
      const taken = box(env.root, [
        'run',
        '--rm',
        '--network',
        'e2e-net',
        '--ip',
        '10.213.7.50',
        'busybox',
        'true',
      ]);
      expect(taken.code).toBe(125);
      expect(taken.stderr).toMatch(/10\.213\.7\.50/);
      const inspected = JSON.parse(boxOk(env.root, ['network', 'inspect', 'e2e-net']))[0];
      expect(
        Object.values(inspected.Containers)
          .map((c) => (c as { Name: string }).Name)
          .sort(),
      ).toEqual(['first', 'second']);
      const busy = box(env.root, ['network', 'rm', 'e2e-net']);
      expect(busy.code).toBe(1);
      expect(busy.stderr).toMatch(/has active endpoints/);
      boxOk(env.root, ['rm', '-f', 'first', 'second']);
    } finally {
      box(env.root, ['rm', '-f', 'first', 'second']);
      box(env.root, ['network', 'rm', 'e2e-net']);
    }
    expect(boxOk(env.root, ['network', 'ls', '--format', '{{.Name}}']).split('\n')).toEqual([
      'bridge',
      'host',
      'none',
    ]);
    expect(boxChains().filter((c) => c.includes('br-'))).toEqual([]);
  });

  it('connect gives a running container eth1 on another network at once; disconnect takes it away', () => {
    boxOk(env.root, ['network', 'create', '--subnet', '10.213.8.0/24', 'e2e-side']);
    try {
      const id = boxOk(env.root, ['run', '-d', '--name', 'joiner', 'busybox', 'sleep', '100']);
      boxOk(env.root, ['network', 'connect', '--ip', '10.213.8.9', 'e2e-side', 'joiner']);
      expect(boxOk(env.root, ['exec', id, 'ip', '-4', '-o', 'addr', 'show', 'eth1'])).toContain(
        'inet 10.213.8.9/24',
      );
      // Its default route stays on its first network.
      expect(boxOk(env.root, ['exec', id, 'ip', 'route'])).toMatch(/^default via \S+ dev eth0/m);
      boxOk(env.root, ['run', '-d', '--network', 'e2e-side', '--name', 'peer', 'busybox', 'sleep', '100']);
      expect(boxOk(env.root, ['exec', 'peer', 'ping', '-c1', '-W2', 'joiner'])).toContain('10.213.8.9');
      expect(Object.keys(inspect(id).NetworkSettings.Networks).sort()).toEqual(['bridge', 'e2e-side']);
      const twice = box(env.root, ['network', 'connect', 'e2e-side', 'joiner']);
      expect([twice.code, twice.stderr.trim()]).toEqual([
        125,
        'box: endpoint with name joiner already exists in network e2e-side',
      ]);
      boxOk(env.root, ['network', 'disconnect', 'e2e-side', 'joiner']);
      expect(boxOk(env.root, ['exec', id, 'ls', '/sys/class/net']).split('\n').sort()).toEqual([
        'eth0',
        'lo',
      ]);
      expect(boxOk(env.root, ['exec', 'peer', 'cat', '/etc/hosts'])).not.toContain('joiner');
      expect(Object.keys(inspect(id).NetworkSettings.Networks)).toEqual(['bridge']);
      boxOk(env.root, ['rm', '-f', 'joiner', 'peer']);
    } finally {
      box(env.root, ['rm', '-f', 'joiner', 'peer']);
      box(env.root, ['network', 'rm', 'e2e-side']);
    }
  });

  it('two connects of one container at once: each gets its own interface, both are recorded', async () => {
    boxOk(env.root, ['network', 'create', '--subnet', '10.213.9.0/24', 'e2e-one']);
    boxOk(env.root, ['network', 'create', '--subnet', '10.213.10.0/24', 'e2e-two']);
    try {
      const id = boxOk(env.root, ['run', '-d', '--name', 'twice', 'busybox', 'sleep', '100']);
      const results = await Promise.all(
        ['e2e-one', 'e2e-two'].map((n) => boxAsync(env.root, ['network', 'connect', n, 'twice']).done),
      );
      for (const r of results) expect(r.code, r.stderr).toBe(0);
      const addresses = boxOk(env.root, ['exec', id, 'ip', '-4', '-o', 'addr']);
      expect(addresses).toMatch(/eth1\s+inet 10\.213\.(9|10)\./);
      expect(addresses).toMatch(/eth2\s+inet 10\.213\.(9|10)\./);
      expect(Object.keys(inspect(id).NetworkSettings.Networks).sort()).toEqual([
        'bridge',
        'e2e-one',
        'e2e-two',
      ]);
      boxOk(env.root, ['rm', '-f', id]);
    } finally {
      box(env.root, ['rm', '-f', 'twice']);
      box(env.root, ['network', 'rm', 'e2e-one', 'e2e-two']);
    }
  });

  it("rules removed behind box's back (a flush) are put back by the next start", () => {
    boxOk(env.root, ['network', 'create', '--subnet', '10.213.11.0/24', 'e2e-flushed']);
    try {
      boxOk(env.root, ['run', '--rm', '--network', 'e2e-flushed', 'busybox', 'true']);
      const bridge = JSON.parse(boxOk(env.root, ['network', 'inspect', 'e2e-flushed']))[0].Options[
        'com.docker.network.bridge.name'
      ];
      const chains = ['forward', 'postrouting', 'guard'].map((k) => `net-${bridge}-${k}`);
      expect(boxChains()).toEqual(expect.arrayContaining(chains));
      for (const chain of chains) {
        const r = spawnSync('nft', [`flush chain ip box ${chain}; delete chain ip box ${chain}`], {
          encoding: 'utf8',
        });
        expect(r.status, r.stderr).toBe(0);
      }
      expect(boxChains()).not.toEqual(expect.arrayContaining([chains[0]]));
      boxOk(env.root, ['run', '--rm', '--network', 'e2e-flushed', 'busybox', 'true']);
      expect(boxChains()).toEqual(expect.arrayContaining(chains));
    } finally {
      box(env.root, ['network', 'rm', 'e2e-flushed']);
    }
  });

  it('an internal network has no route out', () => {
    boxOk(env.root, ['network', 'create', '--internal', 'e2e-internal']);
    try {
      const routes = boxOk(env.root, ['run', '--rm', '--network', 'e2e-internal', 'busybox', 'ip', 'route']);
      expect(routes).not.toContain('default');
      expect(routes).toMatch(/dev eth0/);
    } finally {
      box(env.root, ['network', 'rm', 'e2e-internal']);
    }
  });
});

describe('network modes', () => {
  it("none: only lo; host: the host's interfaces; container:NAME: the same eth0", () => {
    expect(boxOk(env.root, ['run', '--rm', '--network', 'none', 'busybox', 'ls', '/sys/class/net'])).toBe(
      'lo',
    );
    // Less the host ends of containers' veth pairs, which the kernel deletes a moment after
    // their containers have gone.
    const links = (text: string) =>
      text
        .trim()
        .split('\n')
        .filter((l) => !l.startsWith('vb'));
    const hostLinks = links(spawnSync('ls', ['/sys/class/net'], { encoding: 'utf8' }).stdout);
    expect(
      links(boxOk(env.root, ['run', '--rm', '--network', 'host', 'busybox', 'ls', '/sys/class/net'])),
    ).toEqual(hostLinks);
    const id = boxOk(env.root, ['run', '-d', '--name', 'owner', 'busybox', 'sleep', '100']);
    const ip = inspect(id).NetworkSettings.IPAddress;
    const shared = boxOk(env.root, [
      'run',
      '--rm',
      '--network',
      'container:owner',
      'busybox',
      'ip',
      '-4',
      '-o',
      'addr',
      'show',
      'eth0',
    ]);
    expect(shared).toContain(`inet ${ip}/`);
    boxOk(env.root, ['rm', '-f', id]);
  });
});

describe('bad input: one line, exit 125, nothing made', () => {
  it.each([
    [['run', '--rm', '--network', 'nosuch', 'busybox', 'true'], /network nosuch not found/],
    [['run', '--rm', '-p', '70000:80', 'busybox', 'true'], /invalid port 70000/],
    [
      ['run', '--rm', '--ip', '172.17.0.99', 'busybox', 'true'],
      /user specified IP address is supported on user defined networks only/,
    ],
    [
      ['run', '--rm', '--network', 'none', '-p', '80', 'busybox', 'true'],
      /conflicting options: port publishing/,
    ],
    [['run', '--rm', '--dns', 'resolver', 'busybox', 'true'], /resolver is not an ip address/],
    [['network', 'create', '--subnet', '10.0.0.0/31', 'e2e-bad'], /10\.0\.0\.0\/31/],
    [['network', 'create', 'bridge'], /network name bridge is reserved/],
  ])('box %j', (args, message) => {
    const r = box(env.root, args as string[]);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(message as RegExp);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(box(env.root, ['ps', '-aq']).stdout).toBe('');
    expect(boxOk(env.root, ['network', 'ls', '--format', '{{.Name}}'])).not.toContain('e2e-bad');
  });

  it("a subnet overlapping one of the host's routes", () => {
    const route = spawnSync('ip', ['-j', '-4', 'route'], { encoding: 'utf8' });
    const onLink = (JSON.parse(route.stdout) as { dst: string; dev: string }[]).find(
      (r) => r.dst !== 'default' && r.dst.includes('/') && !/^(box|br-)/.test(r.dev),
    );
    expect(onLink, 'this host has no on-link route to test against').toBeDefined();
    const r = box(env.root, ['network', 'create', '--subnet', onLink!.dst, 'e2e-clash']);
    expect(r.code).toBe(125);
    expect(r.stderr.trim()).toBe(
      `box: subnet ${onLink!.dst} overlaps the host's route ${onLink!.dst} on ${onLink!.dev}`,
    );
    expect(JSON.stringify(readNetworks())).not.toContain('e2e-clash');
  });
});

function readNetworks(): string[] {
  try {
    return readdirSync(join(env.root, 'networks'));
  } catch {
    return [];
  }
}
