/**
 * What the kernel tests make, and how they look at it with iproute2: links and network
 * namespaces with names unique to this run (`box-nlt<pid>…`), each registered for removal
 * so an afterEach leaves nothing behind, also when a test failed half-way.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';

const tag = `box-nlt${process.pid.toString(36)}`;
let counter = 0;

/** A link or namespace name no other run uses: `box-nlt<pid><kind><n>`, at most 15 bytes. */
export function uniqueName(kind: string): string {
  const name = `${tag}${kind}${(counter++).toString(36)}`;
  if (name.length > 15) throw new Error(`test name too long for an interface: ${name}`);
  return name;
}

/** Names made by this run start with this. */
export const runTag = tag;

const cleanups: Array<() => void | Promise<void>> = [];

/** Runs the registered clean-ups, newest first; all of them, then throws the first failure. */
export async function cleanUp(): Promise<void> {
  let failure: unknown;
  while (cleanups.length > 0) {
    try {
      await cleanups.pop()!();
    } catch (error) {
      failure ??= error;
    }
  }
  if (failure) throw failure;
}

/** Registers a link of this namespace for removal (`ip link del`, if it still exists). */
export function removeLinkLater(name: string): string {
  cleanups.push(() => {
    if (ipJson(['link', 'show']).some((link) => link.ifname === name)) ip(['link', 'del', name]);
  });
  return name;
}

export function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

// biome-ignore lint/suspicious/noExplicitAny: iproute2's JSON is checked field by field in the tests
export type IpObject = Record<string, any>;

/** `ip -j ARGS`, parsed. */
export function ipJson(args: string[]): IpObject[] {
  const out = ip(['-j', ...args]).trim();
  return out ? (JSON.parse(out) as IpObject[]) : [];
}

export const ownNetns = (): string => readlinkSync('/proc/thread-self/ns/net');

export interface TestNetns {
  pid: number;
  /** `ip -j ARGS` run inside the namespace (nsenter -n). */
  ipJson(args: string[]): IpObject[];
  /** Any command run inside the namespace; its stdout. */
  run(command: string[]): string;
}

/**
 * A process in a new network namespace (`unshare --net sleep`), killed by cleanUp (with it
 * its namespace and the links in it go, and so the host ends of their veth pairs). The
 * sleep is bounded, so even a run killed before its clean-up leaves nothing for long.
 */
export async function startNetns(): Promise<TestNetns> {
  const child: ChildProcess = spawn('unshare', ['--net', '--', 'sleep', '300'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', resolve);
  });
  const pid = child.pid!;
  const own = ownNetns();
  const deadline = Date.now() + 5000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`unshare --net exited with ${child.exitCode}`);
    let netns: string | undefined;
    try {
      netns = readlinkSync(`/proc/${pid}/ns/net`);
    } catch {}
    if (netns !== undefined && netns !== own) break;
    if (Date.now() > deadline) throw new Error('unshare --net did not make a network namespace within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  const run = (command: string[]) =>
    execFileSync('nsenter', ['-t', String(pid), '-n', ...command], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  return {
    pid,
    run,
    ipJson: (args) => {
      const out = run(['ip', '-j', ...args]).trim();
      return out ? (JSON.parse(out) as IpObject[]) : [];
    },
  };
}

/** A named namespace (`ip netns add`), deleted by cleanUp. Its path is /run/netns/NAME. */
export function addNamedNetns(): { name: string; path: string } {
  const name = uniqueName('n');
  ip(['netns', 'add', name]);
  cleanups.push(() => {
    ip(['netns', 'del', name]);
  });
  return { name, path: `/run/netns/${name}` };
}

const usedSubnets = new Set<number>();

function toNumber(address: string): number {
  return address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

/** Whether two IPv4 prefixes (`a.b.c.d/n`; `default` never counts) share an address. */
function overlaps(a: string, b: string): boolean {
  if (a === 'default' || b === 'default') return false;
  const [addressA, lengthA = '32'] = a.split('/');
  const [addressB, lengthB = '32'] = b.split('/');
  const length = Math.min(Number(lengthA), Number(lengthB));
  const shift = 32 - length;
  return Math.floor(toNumber(addressA!) / 2 ** shift) === Math.floor(toNumber(addressB!) / 2 ** shift);
}

/**
 * A /24 of 198.18.0.0/15 (set aside for benchmarks and tests, RFC 2544) that no route of
 * this machine reaches into yet and this run has not used: its first three octets.
 */
export function freeSubnet(): string {
  const routes = ipJson(['-4', 'route', 'show', 'table', 'all']).map((route) => String(route.dst));
  const start = process.pid % 512;
  for (let i = 0; i < 512; i++) {
    const n = (start + i) % 512;
    const prefix = `198.${18 + (n >> 8)}.${n & 255}`;
    if (usedSubnets.has(n) || routes.some((dst) => overlaps(dst, `${prefix}.0/24`))) continue;
    usedSubnets.add(n);
    return prefix;
  }
  throw new Error('no free /24 in 198.18.0.0/15 on this machine');
}
