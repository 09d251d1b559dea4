/**
 * A user-mode network through slirp4netns (podman's `--network slirp4netns`): the container's
 * own network namespace gets a tap device whose traffic slirp4netns, a process on the host,
 * turns into ordinary sockets of its own. It needs no bridge, no veth and no firewall rules, so
 * an ordinary user can have it; root can too.
 *
 * This module is all of it: the options, the binary, the process (spawn, readiness, stop) and
 * the client of its API socket (published ports).
 *
 * Lifetime. slirp4netns holds the tap device's fd, and with it the container's network
 * namespace: it never ends on its own when the container does. Its --exit-fd ends it when that
 * fd polls as hung up, and which fd that is depends on who the container dies with:
 * - A container that outlives its box (detached: a SIGKILLed box service leaves it running, and
 *   the next service adopts it): a pidfd of its first process, which polls as hung up once that
 *   process is gone and reaped, by whoever reaps it: the service, or the host's init after a
 *   SIGKILL of the service. A pipe held by box would end the network of a container that lives on.
 * - A container that dies with the box process that runs it (a foreground run, in the box
 *   command itself or in the service that runs it for one: the kernel kills it with that process,
 *   PR_SET_PDEATHSIG): the read end of a pipe whose only write end that process holds. A SIGKILL
 *   of it closes the pipe at once; a pidfd would wait for the host's init to reap the killed
 *   container, which some inits do seconds later or never (a minimal VM's or a container's PID 1).
 * Its pid and start time are kept in the container's directory (slirp4netns.pid), so that removal
 * and recovery can also end it at once, and the API socket file is removed with them.
 *
 * What it gets from box: its arguments, fd 0 on /dev/null, fds 1-2 on its log in the container's
 * directory, fd 3 (the pidfd or the pipe's read end) and fd 4 (readiness), no environment, its
 * own session, `/` as its working directory... except that it starts in the container's directory
 * so that its API socket can be named relative to it (a unix socket's path has at most 107 bytes,
 * and a state root's containers/<64 hex>/ is already most of them); with --enable-sandbox it
 * leaves it at once for a root of its own. Every fd of box's own is close-on-exec (libuv,
 * pidfd_open, pipe2), so none other reaches it.
 *
 * Threat model: the container is hostile. By default (--disable-host-loopback) it cannot reach
 * the host's 127.0.0.1 through the gateway; it reaches whatever the host reaches otherwise, as
 * with podman. slirp4netns's built-in DNS (10.0.2.3) forwards to the host's resolvers.
 * --enable-sandbox and --enable-seccomp confine slirp4netns itself where this build has them.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { pidfdOpen, pipe } from '@box/sys';
// The engine's /proc/PID/stat reader (a leaf module, no engine state).
import { processStartTime } from '../engine/process-info.js';
import { EngineError } from '../errors.js';

/** Where slirp4netns is looked for: fixed directories, never $PATH (a user's PATH is theirs). */
export const SLIRP4NETNS_DIRS = ['/usr/bin', '/usr/local/bin', '/usr/sbin', '/bin'];

/** Its files in the container's directory. */
export const SLIRP_SOCKET = 'slirp4netns.sock';
export const SLIRP_PIDFILE = 'slirp4netns.pid';
export const SLIRP_LOG = 'slirp4netns.log';

/** The interface it makes in the container (podman's name). */
export const SLIRP_TAP = 'tap0';

/** `--network slirp4netns[:OPTIONS]` as given to `run`/`create`, checked. */
export interface SlirpOptions {
  /** allow_host_loopback=true: the host's 127.0.0.1 is reachable at the gateway address. */
  allowHostLoopback: boolean;
  mtu: number;
  /** cidr=: the network (default 10.0.2.0/24): the container .100, gateway .2, DNS .3. */
  cidr: string;
  enableIPv6: boolean;
  outboundAddr?: string;
  outboundAddr6?: string;
}

export interface SlirpAddresses {
  address: string;
  prefixLength: number;
  gateway: string;
  dns: string;
}

const MODE = 'slirp4netns';

/** Whether `value` names this network mode (with or without options). */
export function isSlirpMode(value: string | undefined): boolean {
  return value === MODE || (value?.startsWith(`${MODE}:`) ?? false);
}

const bad = (value: string, why: string) =>
  new EngineError('EINVAL', `invalid --network ${JSON.stringify(value)}: ${why}`);

/**
 * podman's `slirp4netns:allow_host_loopback=true,mtu=1500,...`; port_handler=slirp4netns is the
 * one handler there is (podman's default, rootlesskit, needs a process box does not have).
 */
export function parseSlirpMode(value: string): SlirpOptions {
  const options: SlirpOptions = {
    allowHostLoopback: false,
    mtu: 65520,
    cidr: '10.0.2.0/24',
    enableIPv6: false,
  };
  const rest = value.slice(MODE.length + 1);
  if (value === MODE) return options;
  if (rest === '') throw bad(value, 'no options after "slirp4netns:"');
  const seen = new Set<string>();
  for (const item of rest.split(',')) {
    const eq = item.indexOf('=');
    const key = eq === -1 ? item : item.slice(0, eq);
    const v = eq === -1 ? '' : item.slice(eq + 1);
    if (seen.has(key)) throw bad(value, `${key} given twice`);
    seen.add(key);
    const bool = () => {
      if (v !== 'true' && v !== 'false') throw bad(value, `${key} must be true or false`);
      return v === 'true';
    };
    switch (key) {
      case 'allow_host_loopback':
        options.allowHostLoopback = bool();
        break;
      case 'enable_ipv6':
        options.enableIPv6 = bool();
        break;
      case 'mtu': {
        const mtu = /^\d+$/.test(v) ? Number(v) : Number.NaN;
        if (!(mtu >= 68 && mtu <= 65521)) throw bad(value, 'mtu must be a number from 68 to 65521');
        options.mtu = mtu;
        break;
      }
      case 'cidr': {
        const match = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(v);
        const parts = match?.slice(1, 5).map(Number) ?? [];
        const prefix = Number(match?.[5]);
        if (!match || parts.some((p) => p > 255) || !(prefix >= 1 && prefix <= 25))
          throw bad(value, 'cidr must be an IPv4 network of at least 128 addresses (a.b.c.d/1-25)');
        options.cidr = `${networkOf(parts, prefix).join('.')}/${prefix}`;
        break;
      }
      case 'outbound_addr':
      case 'outbound_addr6':
        if (!/^[0-9A-Za-z.:_-]+$/.test(v)) throw bad(value, `${key} must be an address or an interface name`);
        if (key === 'outbound_addr') options.outboundAddr = v;
        else options.outboundAddr6 = v;
        break;
      case 'port_handler':
        if (v !== 'slirp4netns')
          throw bad(value, 'port_handler must be slirp4netns (the only port handler box has)');
        break;
      default:
        throw bad(value, `unknown option ${JSON.stringify(key)}`);
    }
  }
  return options;
}

function networkOf(parts: number[], prefix: number): number[] {
  const n = (((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0) as number;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const net = (n & mask) >>> 0;
  return [net >>> 24, (net >>> 16) & 255, (net >>> 8) & 255, net & 255];
}

/** The container's address (network + 100), the gateway (+2) and DNS (+3), as slirp4netns's -c. */
export function slirpAddresses(options: Pick<SlirpOptions, 'cidr'>): SlirpAddresses {
  const [net, prefix] = options.cidr.split('/') as [string, string];
  const base = net.split('.').map(Number);
  const plus = (k: number) => [...base.slice(0, 3), base[3]! + k].join('.');
  // A /25 or larger network: its last octet is 0 or 128, so +100 never carries.
  return { address: plus(100), prefixLength: Number(prefix), gateway: plus(2), dns: plus(3) };
}

/** The slirp4netns binary, or a clear refusal naming where it was looked for. */
export function findSlirp4netns(): string {
  for (const dir of SLIRP4NETNS_DIRS) {
    const path = join(dir, 'slirp4netns');
    if (existsSync(path)) return path;
  }
  throw new EngineError(
    'EINVAL',
    `--network slirp4netns: slirp4netns not found in ${SLIRP4NETNS_DIRS.join(', ')} (Debian: apt-get install slirp4netns)`,
  );
}

const features = new Map<string, Set<string>>();

/** The options this build of slirp4netns knows, from its --help (as podman checks them); read once. */
function flagsOf(binary: string): Set<string> {
  let known = features.get(binary);
  if (!known) {
    const r = spawnSync(binary, ['--help'], { encoding: 'utf8', env: {}, timeout: 5000 });
    known = new Set(`${r.stdout ?? ''}${r.stderr ?? ''}`.match(/--[a-z0-9-]+/g) ?? []);
    features.set(binary, known);
  }
  return known;
}

/** slirp4netns's command line for the container whose first process is `pid`. */
export function slirpArgs(binary: string, options: SlirpOptions, pid: number): string[] {
  const known = flagsOf(binary);
  const args = ['--configure', `--mtu=${options.mtu}`, '--exit-fd=3', '--ready-fd=4'];
  args.push(`--api-socket=${SLIRP_SOCKET}`);
  if (options.cidr !== '10.0.2.0/24') args.push(`--cidr=${options.cidr}`);
  if (!options.allowHostLoopback) args.push('--disable-host-loopback');
  if (options.enableIPv6) args.push('--enable-ipv6');
  if (options.outboundAddr) args.push(`--outbound-addr=${options.outboundAddr}`);
  if (options.outboundAddr6) args.push(`--outbound-addr6=${options.outboundAddr6}`);
  if (known.has('--enable-sandbox')) args.push('--enable-sandbox');
  if (known.has('--enable-seccomp')) args.push('--enable-seccomp');
  // By pid: slirp4netns then joins the process's user namespace as well as its network
  // namespace, which an ordinary user's slirp4netns needs to make the tap device there.
  args.push(String(pid), SLIRP_TAP);
  return args;
}

/** A running slirp4netns of one container. */
export interface SlirpProcess {
  readonly pid: number;
  /** Publishes a host port (add_hostfwd); throws EINVAL with slirp4netns's reason, nothing added. */
  addPort(port: HostForward): Promise<void>;
  /** Ends it (idempotent) and removes its files. */
  stop(): Promise<void>;
}

export interface HostForward {
  protocol: 'tcp' | 'udp';
  hostIp: string;
  hostPort: number;
  containerPort: number;
}

const READY_TIMEOUT_MS = 10_000;

/**
 * What ends slirp4netns by itself (see Lifetime above): the container's first process
 * ('container'), or this process, which the container dies with ('caller').
 */
export type SlirpLifetime = 'container' | 'caller';

/**
 * Starts slirp4netns for the container whose first process is `pid` (box's own child, stopped at
 * its sync point: the pid is its own), with its files in `dir`; resolves once tap0 is up with
 * its address and route and the API socket listens. Nothing is left when it throws.
 */
export async function startSlirp4netns(
  dir: string,
  pid: number,
  options: SlirpOptions,
  lifetime: SlirpLifetime = 'container',
): Promise<SlirpProcess> {
  const binary = findSlirp4netns();
  const args = slirpArgs(binary, options, pid);
  // Both close-on-exec: only slirp4netns gets the read end (as its fd 3), and only this process
  // holds the write end, until stop() or its own end.
  const [exitFd, keptOpen] = lifetime === 'caller' ? pipe() : [pidfdOpen(pid), undefined];
  let log: number | undefined;
  let null0: number | undefined;
  let child: ChildProcess | undefined;
  try {
    log = openSync(
      join(dir, SLIRP_LOG),
      constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
      0o600,
    );
    null0 = openSync('/dev/null', 'r');
    child = spawn(binary, args, {
      cwd: dir,
      env: {},
      detached: true,
      stdio: [null0, log, log, exitFd, 'pipe'],
    });
  } finally {
    closeSync(exitFd);
    if (log !== undefined) closeSync(log);
    if (null0 !== undefined) closeSync(null0);
    if (child === undefined && keptOpen !== undefined) closeSync(keptOpen);
  }
  // A child that could not be spawned at all reports an error and no exit.
  let keptClosed = false;
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null || !child.pid) resolve();
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const slirp: SlirpProcess = {
    pid: child.pid ?? 0,
    addPort: (port) => addHostForward(dir, port),
    stop: async () => {
      await stopChild(dir, child, exited);
      if (keptOpen !== undefined && !keptClosed) {
        keptClosed = true;
        closeSync(keptOpen);
      }
    },
  };
  try {
    if (!child.pid) throw new EngineError('EINVAL', `cannot start ${binary}`);
    writeFileSync(join(dir, SLIRP_PIDFILE), `${child.pid} ${processStartTime(child.pid) ?? 0}\n`, {
      mode: 0o600,
    });
    await ready(child, exited, dir);
  } catch (error) {
    await slirp.stop();
    throw error;
  }
  child.unref();
  return slirp;
}

/** Waits for slirp4netns's "1" on its ready fd; its log's last line when it ends first. */
async function ready(child: ChildProcess, exited: Promise<void>, dir: string): Promise<void> {
  const readiness = child.stdio[4] as NodeJS.ReadableStream & { destroy(): void };
  let timer: NodeJS.Timeout | undefined;
  try {
    const said = await new Promise<string>((resolve) => {
      let data = '';
      readiness.on('data', (chunk: Buffer) => {
        data += chunk.toString();
      });
      readiness.on('error', () => resolve(data));
      readiness.on('close', () => resolve(data));
      readiness.on('end', () => resolve(data));
      timer = setTimeout(() => resolve('timeout'), READY_TIMEOUT_MS);
      exited.then(() => setTimeout(() => resolve(data), 50));
    });
    if (said === '1') return;
    const why = said === 'timeout' ? `not ready after ${READY_TIMEOUT_MS / 1000}s` : lastLogLine(dir);
    throw new EngineError('EINVAL', `slirp4netns failed to set up the container's network: ${why}`);
  } finally {
    clearTimeout(timer);
    readiness.destroy();
  }
}

function lastLogLine(dir: string): string {
  try {
    const lines = readFileSync(join(dir, SLIRP_LOG), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('WARNING:'));
    return lines.at(-1) ?? 'it ended without a word';
  } catch {
    return 'it ended without a word';
  }
}

async function stopChild(dir: string, child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.pid && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  }
  removeFiles(dir);
}

function removeFiles(dir: string): void {
  for (const file of [SLIRP_SOCKET, SLIRP_PIDFILE]) rmSync(join(dir, file), { force: true });
}

/**
 * Ends the slirp4netns of the container whose directory is `dir`, whoever started it (a box that
 * was SIGKILLed, a service since restarted), and removes its socket and pid file. Checked by its
 * start time: never a process that got its pid since. Idempotent, and one failed read when the
 * container has none: run by every release of a container's network, by removal and recovery.
 */
export async function stopSlirp4netnsIn(dir: string): Promise<void> {
  let text: string;
  try {
    text = readFileSync(join(dir, SLIRP_PIDFILE), 'utf8');
  } catch {
    if (existsSync(join(dir, SLIRP_SOCKET))) removeFiles(dir);
    return;
  }
  const [pid, start] = text.trim().split(' ').map(Number) as [number, number];
  if (pid > 0 && processStartTime(pid) === start) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
    // Not necessarily this process's child: gone (or a zombie of its parent's) is enough.
    const end = Date.now() + 2000;
    while (processStartTime(pid) === start && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  }
  removeFiles(dir);
}

/**
 * One request to slirp4netns's API socket: JSON, then the write side shut (its end of a
 * request), then its answer until it closes. Connected through /proc/self/fd/N/ (an fd of the
 * container's directory): the absolute path may be longer than a socket address can be.
 */
async function request(dir: string, body: object): Promise<{ return?: unknown; error?: { desc?: string } }> {
  const dirfd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    return await new Promise((resolve, reject) => {
      const socket = connect({ path: `/proc/self/fd/${dirfd}/${SLIRP_SOCKET}` });
      let data = '';
      socket.setTimeout(5000, () => socket.destroy(new Error('no answer from slirp4netns')));
      socket.on('connect', () => socket.end(JSON.stringify(body)));
      socket.on('data', (chunk) => {
        data += chunk;
      });
      socket.on('error', reject);
      socket.on('close', () => {
        try {
          resolve(JSON.parse(data));
        } catch {
          reject(new Error(`slirp4netns answered ${JSON.stringify(data)}`));
        }
      });
    });
  } finally {
    closeSync(dirfd);
  }
}

async function addHostForward(dir: string, port: HostForward): Promise<void> {
  const where = `${port.hostIp}:${port.hostPort}`;
  let answer: Awaited<ReturnType<typeof request>>;
  try {
    answer = await request(dir, {
      execute: 'add_hostfwd',
      arguments: {
        proto: port.protocol,
        host_addr: port.hostIp,
        host_port: port.hostPort,
        guest_port: port.containerPort,
      },
    });
  } catch (error) {
    throw new EngineError('EINVAL', `cannot publish ${where}/${port.protocol}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (answer.error === undefined) return;
  // libslirp says only that its bind failed; the caller tells a taken port from the rest.
  throw new EngineError(
    'EINVAL',
    `cannot publish ${where}/${port.protocol} through slirp4netns: ${answer.error.desc ?? 'refused'}`,
  );
}
