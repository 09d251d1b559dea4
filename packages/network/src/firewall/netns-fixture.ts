/**
 * For the firewall's tests: a small network made of namespaces that the test creates and
 * deletes, so the machine's own ruleset, interfaces and addresses are never touched.
 *
 *   outside (192.0.2.2) ── vo|192.0.2.1  HOST  bx0 bridge 10.77.0.1/24 ── vc1 ── c (10.77.0.2)
 *                                                                    └── vd1 ── d (10.77.0.3)
 *
 * HOST plays the machine box runs on; c and d play containers; outside plays another
 * machine, with no route to 10.77.0.0/24 (only masquerading lets the containers reach it).
 * Needs root, iproute2 and node.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface Topology {
  host: string;
  c: string;
  d: string;
  outside: string;
  all: string[];
}

let counter = 0;

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function inNetns(netns: string, ...argv: string[]): string {
  return execFileSync('ip', ['netns', 'exec', netns, ...argv], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** The names of namespaces this process made that still exist. */
export function leftoverNamespaces(prefix: string): string[] {
  return ip('netns', 'list')
    .split('\n')
    .map((line) => line.split(' ')[0]!)
    .filter((name) => name.startsWith(prefix));
}

export function namespacePrefix(): string {
  return `box-fwt-${process.pid}-`;
}

/**
 * Deletes the namespaces of test processes that are gone: a run killed before its clean-up
 * (a test runner stopping its tasks, SIGKILL) cannot delete its own, so the next run does.
 */
export function removeStaleNamespaces(): string[] {
  const stale = ip('netns', 'list')
    .split('\n')
    .map((line) => line.split(' ')[0]!)
    .filter((name) => {
      const pid = /^box-fwt-(\d+)-/.exec(name)?.[1];
      return pid !== undefined && Number(pid) !== process.pid && !existsSync(`/proc/${pid}`);
    });
  for (const ns of stale) ip('netns', 'del', ns);
  return stale;
}

export function makeTopology(): Topology {
  if (counter === 0) removeStaleNamespaces();
  const base = `${namespacePrefix()}${++counter}`;
  const t: Topology = { host: `${base}-h`, c: `${base}-c`, d: `${base}-d`, outside: `${base}-o`, all: [] };
  t.all = [t.host, t.c, t.d, t.outside];
  try {
    for (const ns of t.all) {
      ip('netns', 'add', ns);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    const h = t.host;
    ip('-n', h, 'link', 'add', 'bx0', 'type', 'bridge');
    ip('-n', h, 'addr', 'add', '10.77.0.1/24', 'dev', 'bx0');
    ip('-n', h, 'link', 'set', 'bx0', 'up');
    for (const [ns, port, address] of [
      [t.c, 'vc1', '10.77.0.2/24'],
      [t.d, 'vd1', '10.77.0.3/24'],
    ] as const) {
      ip('-n', h, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      ip('-n', h, 'link', 'set', port, 'master', 'bx0');
      // A container reaching its own published port through the host comes back out of
      // the port it came in by (with br_netfilter the DNATed frame is bridged, not routed).
      ip('-n', h, 'link', 'set', port, 'type', 'bridge_slave', 'hairpin', 'on');
      ip('-n', h, 'link', 'set', port, 'up');
      ip('-n', ns, 'addr', 'add', address, 'dev', 'eth0');
      ip('-n', ns, 'link', 'set', 'eth0', 'up');
      ip('-n', ns, 'route', 'add', 'default', 'via', '10.77.0.1');
    }
    ip('-n', h, 'link', 'add', 'vo', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', t.outside);
    ip('-n', h, 'addr', 'add', '192.0.2.1/24', 'dev', 'vo');
    ip('-n', h, 'link', 'set', 'vo', 'up');
    ip('-n', t.outside, 'addr', 'add', '192.0.2.2/24', 'dev', 'eth0');
    ip('-n', t.outside, 'link', 'set', 'eth0', 'up');
  } catch (error) {
    removeTopology(t);
    throw error;
  }
  return t;
}

/** Deletes the namespaces (their interfaces and rulesets go with them). */
export function removeTopology(t: Topology): void {
  for (const ns of t.all) {
    try {
      ip('netns', 'del', ns);
    } catch {}
  }
}

const SERVERS: Record<'tcp' | 'udp', string> = {
  tcp: `require('node:net').createServer((s) => s.end(s.remoteAddress + '\\n'))
    .listen(Number(process.argv[2]), process.argv[1], () => console.log('listening'));`,
  udp: `const d = require('node:dgram').createSocket('udp4');
    d.on('message', (m, r) => d.send(r.address + '\\n', r.port, r.address));
    d.bind(Number(process.argv[2]), process.argv[1], () => console.log('listening'));`,
};

/** A server in `netns` that answers each connection (or datagram) with the peer's address. */
export async function startServer(
  netns: string,
  protocol: 'tcp' | 'udp',
  address: string,
  port: number,
  started: ChildProcess[],
): Promise<void> {
  const child = spawn(
    'ip',
    ['netns', 'exec', netns, process.execPath, '-e', SERVERS[protocol], address, String(port)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  started.push(child);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      if (out.includes('listening')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`server in ${netns} exited ${code}`)));
  });
}

export async function stopServers(started: ChildProcess[]): Promise<void> {
  await Promise.all(
    started.map((child) => {
      if (child.exitCode !== null || child.signalCode !== null) return null;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      return exited;
    }),
  );
  started.length = 0;
}

const CLIENTS: Record<'tcp' | 'udp', string> = {
  tcp: `const s = require('node:net').connect(Number(process.argv[2]), process.argv[1]);
    let out = '';
    const done = (text) => { console.log(text); process.exit(0); };
    setTimeout(() => done('TIMEOUT'), Number(process.argv[3]));
    s.on('data', (d) => { out += d; });
    s.on('end', () => done(out.trim()));
    s.on('error', (e) => done('ERR ' + e.code));`,
  udp: `const d = require('node:dgram').createSocket('udp4');
    const done = (text) => { console.log(text); process.exit(0); };
    setTimeout(() => done('TIMEOUT'), Number(process.argv[3]));
    d.on('message', (m) => done(String(m).trim()));
    d.on('error', (e) => done('ERR ' + e.code));
    d.send('hello', Number(process.argv[2]), process.argv[1]);`,
};

/**
 * Connects from `netns` to `address:port` and returns what the server answered (its view of
 * the client's address), `TIMEOUT` or `ERR <code>`.
 */
export function connect(
  netns: string,
  protocol: 'tcp' | 'udp',
  address: string,
  port: number,
  timeoutMs = 1500,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        netns,
        process.execPath,
        '-e',
        CLIENTS[protocol],
        address,
        String(port),
        String(timeoutMs),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(out.trim()) : reject(new Error(`client exited ${code}`)),
    );
  });
}
