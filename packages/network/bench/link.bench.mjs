// The link layer of one container, through @box/network's rtnetlink against iproute2, interleaved:
// a veth pair with its peer created as eth0 in the container's network namespace, the host end
// attached to a bridge and up, lo up, eth0 up with its address, and the default route via the bridge.
// Run as root after a build: `pnpm --filter @box/network build && node packages/network/bench/link.bench.mjs`.
// Prints the median (and 90th percentile) in ms per container of each way (target for the whole
// networking of one container: <= 15 ms). Each round makes its own namespace (a `unshare --net` process,
// not timed) and removes what it made; the bench's bridge is removed at the end.
import { execFileSync, spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { openRtnetlink } from '../dist/index.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);
const tag = `box-nlb${process.pid.toString(36)}`;
const bridge = `${tag}br`;
const print = (line) => process.stdout.write(`${line}\n`);
const run = (command, args, input) =>
  execFileSync(command, args, {
    encoding: 'utf8',
    input,
    stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });

function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
}

/** A /24 of 198.18.0.0/15 (RFC 2544, for benchmarks) that no route here reaches into. */
function freeSubnet() {
  const routes = JSON.parse(run('ip', ['-j', '-4', 'route', 'show', 'table', 'all'])).map((r) => r.dst);
  for (let n = process.pid % 512, i = 0; i < 512; i++, n = (n + 1) % 512) {
    const prefix = `198.${18 + (n >> 8)}.${n & 255}`;
    if (!routes.some((dst) => dst.startsWith(`${prefix}.`) || dst === '198.18.0.0/15')) return prefix;
  }
  throw new Error('no free /24 in 198.18.0.0/15');
}

/** A process in a new network namespace; resolves once the namespace exists. */
async function startNetns() {
  const child = spawn('unshare', ['--net', '--', 'sleep', '120'], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await new Promise((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  const own = readlinkSync('/proc/self/ns/net');
  for (;;) {
    try {
      if (readlinkSync(`/proc/${child.pid}/ns/net`) !== own) break;
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return {
    pid: child.pid,
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

const subnet = freeSubnet();
const gateway = `${subnet}.1`;
const host = openRtnetlink();

// The ways to set up one container; `n` numbers the container (its address).
const ways = {
  // One RTM_NEWLINK creates the pair with the host end attached and up; four requests inside.
  netlink: (pid, n, hostName) => {
    host.createVethPair(hostName, 'eth0', { peerNetns: { pid }, master: bridge, up: true });
    const inner = openRtnetlink({ netns: { pid } });
    try {
      inner.setLinkUp('lo');
      inner.setLinkUp('eth0');
      inner.addAddress('eth0', `${subnet}.${n}/24`);
      inner.addRoute({ gateway });
    } finally {
      inner.close();
    }
  },
  // The same, one request per step, as `ip` makes them.
  'netlink, one step per request': (pid, n, hostName) => {
    host.createVethPair(hostName, 'eth0', { peerNetns: { pid } });
    host.setMaster(hostName, bridge);
    host.setLinkUp(hostName);
    const inner = openRtnetlink({ netns: { pid } });
    try {
      inner.setLinkUp('lo');
      inner.setLinkUp('eth0');
      inner.addAddress('eth0', `${subnet}.${n}/24`);
      inner.addRoute({ gateway });
    } finally {
      inner.close();
    }
  },
  // One process per step, as a shell script would.
  'ip commands': (pid, n, hostName) => {
    run('ip', ['link', 'add', hostName, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(pid)]);
    run('ip', ['link', 'set', hostName, 'master', bridge, 'up']);
    const inside = ['-t', String(pid), '-n', 'ip'];
    run('nsenter', [...inside, 'link', 'set', 'lo', 'up']);
    run('nsenter', [...inside, 'link', 'set', 'eth0', 'up']);
    run('nsenter', [...inside, 'addr', 'add', `${subnet}.${n}/24`, 'dev', 'eth0']);
    run('nsenter', [...inside, 'route', 'add', 'default', 'via', gateway]);
  },
  // iproute2 at its best: one process here, one inside (`ip -batch`).
  'ip -batch': (pid, n, hostName) => {
    run(
      'ip',
      ['-batch', '-'],
      `link add ${hostName} master ${bridge} up type veth peer name eth0 netns ${pid}\n`,
    );
    run(
      'nsenter',
      ['-t', String(pid), '-n', 'ip', '-batch', '-'],
      `link set lo up\nlink set eth0 up\naddr add ${subnet}.${n}/24 dev eth0\nroute add default via ${gateway}\n`,
    );
  },
};

/** What one container must look like afterwards, checked with iproute2 (not timed). */
function check(pid, n, hostName, way) {
  const inside = (args) => JSON.parse(run('nsenter', ['-t', String(pid), '-n', 'ip', '-j', ...args]));
  const eth0 = inside(['-4', 'addr', 'show', 'dev', 'eth0'])[0];
  const lo = inside(['link', 'show', 'dev', 'lo'])[0];
  const route = inside(['-4', 'route', 'show', 'default'])[0];
  const hostEnd = JSON.parse(run('ip', ['-j', 'link', 'show', 'dev', hostName]))[0];
  const ok =
    eth0?.flags.includes('UP') &&
    eth0.addr_info[0]?.local === `${subnet}.${n}` &&
    lo?.flags.includes('UP') &&
    route?.gateway === gateway &&
    hostEnd?.master === bridge &&
    hostEnd.flags.includes('UP');
  if (!ok) throw new Error(`${way}: the container's network is not as expected`);
}

const times = Object.fromEntries(Object.keys(ways).map((way) => [way, []]));
const socketTimes = [];
let n = 2;
try {
  host.createBridge(bridge, { up: true });
  host.addAddress(bridge, `${gateway}/24`);
  print(`bridge ${bridge} ${gateway}/24; ${ROUNDS} rounds (and one not counted), ways interleaved`);
  for (let round = 0; round <= ROUNDS; round++) {
    const order = Object.keys(ways);
    if (round % 2) order.reverse();
    for (const way of order) {
      const netns = await startNetns();
      const hostName = `${tag}v${n}`;
      const address = n;
      n = n >= 250 ? 2 : n + 1;
      try {
        const start = process.hrtime.bigint();
        ways[way](netns.pid, address, hostName);
        const ms = Number(process.hrtime.bigint() - start) / 1e6;
        if (round > 0) times[way].push(ms);
        if (round <= 1) check(netns.pid, address, hostName, way);
      } finally {
        // The host end goes with its peer; removed here at once (a namespace is torn down later).
        try {
          host.deleteLink(hostName);
        } catch {}
        await netns.stop();
      }
    }
    // The namespace socket alone: setns in, socket, setns back, bind and options.
    const netns = await startNetns();
    try {
      const start = process.hrtime.bigint();
      openRtnetlink({ netns: { pid: netns.pid } }).close();
      if (round > 0) socketTimes.push(Number(process.hrtime.bigint() - start) / 1e6);
    } finally {
      await netns.stop();
    }
  }
  for (const [way, values] of Object.entries(times))
    print(
      `${way.padEnd(30)} median ${quantile(values, 0.5).toFixed(2)} ms, p90 ${quantile(values, 0.9).toFixed(2)} ms per container`,
    );
  print(`${'(a socket in a container netns)'.padEnd(30)} median ${quantile(socketTimes, 0.5).toFixed(3)} ms`);
  const ratio = quantile(times['ip commands'], 0.5) / quantile(times.netlink, 0.5);
  print(`ip commands / netlink: ${ratio.toFixed(1)}x; target for one container's networking: <= 15 ms`);
} finally {
  try {
    host.deleteLink(bridge);
  } catch {}
  host.close();
}
