/**
 * The files of the address pools, in the directory the caller gives:
 * - `<network>.ipam.json`, one per network: its subnet, gateway, the last address handed out
 *   and the allocations as a map of container id → address (never a bitmap: a /8 has 16M
 *   addresses, and a pool holds only as many entries as it has containers);
 * - `ipam.lock`, flock(2)ed by whoever reads, changes and rewrites a pool file, so that
 *   processes working at once (several `box run`, the box service) never hand out one
 *   address twice.
 * A file is replaced whole (temporary file, fsync, rename, fsync of the directory): after a
 * crash or power loss it holds the old allocations or the new ones. Every file is read as
 * possibly damaged or planted: anything unexpected is an `EIPAMCORRUPT` error naming the
 * file, never a crash and never a silent reset (which would hand out addresses in use).
 */
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { join } from 'node:path';
import { tryLock, writeFileAtomic } from '@box/sys';
import {
  type Cidr,
  cidrContains,
  formatCidr,
  formatIPv4,
  lastAddress,
  parseSubnet,
  tryParseIPv4,
} from './cidr.js';
import { IpamError, isIpamError } from './errors.js';

/** A network name or container id: a file name and a map key, never a path. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const SUFFIX = '.ipam.json';
const LOCK_FILE = 'ipam.lock';
const VERSION = 1;

export interface PoolRecord {
  network: string;
  subnet: Cidr;
  gateway: number;
  /** The last address handed out without being asked for (the next search starts after it). */
  last: number | null;
  /** Container id → address. */
  allocations: Map<string, number>;
}

export function checkName(value: unknown, what: 'network name' | 'container id'): string {
  if (typeof value !== 'string' || !NAME.test(value)) {
    throw new IpamError(
      'EIPAMINVAL',
      `invalid ${what} ${JSON.stringify(value)}: use 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit`,
    );
  }
  return value;
}

export function poolPath(dir: string, network: string): string {
  return join(dir, `${network}${SUFFIX}`);
}

/** The networks that have a pool file in `dir`. */
export function listPoolNetworks(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioError(`listing the address pools in ${dir}`, dir, error);
  }
  return names
    .filter((name) => name.endsWith(SUFFIX))
    .map((name) => name.slice(0, -SUFFIX.length))
    .filter((network) => NAME.test(network))
    .sort();
}

/** The pool of `network`, or null when it has none. */
export function readPool(dir: string, network: string): PoolRecord | null {
  const path = poolPath(dir, network);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') throw corrupt(path, 'it is a symbolic link');
    throw ioError(`reading ${path}`, path, error);
  }
  let text: string;
  try {
    if (!fstatSync(fd).isFile()) throw corrupt(path, 'it is not a regular file');
    text = readFileSync(fd, 'utf8');
  } catch (error) {
    if (isIpamError(error)) throw error;
    throw ioError(`reading ${path}`, path, error);
  } finally {
    closeSync(fd);
  }
  return decodePool(path, network, text);
}

function decodePool(path: string, network: string, text: string): PoolRecord {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw corrupt(path, `it is not JSON (${(error as Error).message})`, error);
  }
  if (!isObject(data)) throw corrupt(path, 'it is not a JSON object');
  if (data.version !== VERSION) throw corrupt(path, `unknown version ${JSON.stringify(data.version)}`);
  if (data.network !== network) throw corrupt(path, `it names network ${JSON.stringify(data.network)}`);
  let subnet: Cidr;
  try {
    subnet = parseSubnet(data.subnet as string);
  } catch (error) {
    throw corrupt(path, `bad subnet ${JSON.stringify(data.subnet)}`, error);
  }
  const host = (value: unknown, what: string): number => {
    const address = typeof value === 'string' ? tryParseIPv4(value) : null;
    if (address === null || !isHost(subnet, address)) {
      throw corrupt(path, `${what} ${JSON.stringify(value)} is not a host address of ${formatCidr(subnet)}`);
    }
    return address;
  };
  const gateway = host(data.gateway, 'gateway');
  const last = data.last === null ? null : host(data.last, 'last address');
  if (!isObject(data.allocations)) throw corrupt(path, 'allocations is not a JSON object');
  const allocations = new Map<string, number>();
  const owners = new Map<number, string>();
  for (const [containerId, value] of Object.entries(data.allocations)) {
    if (!NAME.test(containerId)) throw corrupt(path, `bad container id ${JSON.stringify(containerId)}`);
    const address = host(value, `address of ${containerId}`);
    if (address === gateway) throw corrupt(path, `${containerId} holds the gateway ${formatIPv4(address)}`);
    const other = owners.get(address);
    if (other !== undefined)
      throw corrupt(path, `${formatIPv4(address)} is held by both ${other} and ${containerId}`);
    owners.set(address, containerId);
    allocations.set(containerId, address);
  }
  return { network, subnet, gateway, last, allocations };
}

/** Replaces the pool file of `record.network` atomically (mode 0600). */
export function writePool(dir: string, record: PoolRecord, durable = true): void {
  const data = {
    version: VERSION,
    network: record.network,
    subnet: formatCidr(record.subnet),
    gateway: formatIPv4(record.gateway),
    last: record.last === null ? null : formatIPv4(record.last),
    allocations: Object.fromEntries(
      [...record.allocations].map(([id, address]) => [id, formatIPv4(address)]),
    ),
  };
  writePoolFile(poolPath(dir, record.network), `${JSON.stringify(data, null, 2)}\n`, durable);
}

export function removePoolFile(dir: string, network: string): void {
  const path = poolPath(dir, network);
  try {
    rmSync(path, { force: true });
    syncDir(dir);
  } catch (error) {
    throw ioError(`removing ${path}`, path, error);
  }
}

function writePoolFile(path: string, text: string, durable: boolean): void {
  try {
    writeFileAtomic(path, text, { fsync: durable, syncDir: durable });
  } catch (error) {
    throw ioError(`writing ${path}`, path, error);
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Creates the pools' directory (0700) when it is missing. */
export function ensureDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw ioError(`creating ${dir}`, dir, error);
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Runs `fn` holding the exclusive flock(2) on `<dir>/ipam.lock`. A holder keeps it for one
 * read-modify-write (milliseconds), so waiting is done by polling with short sleeps up to
 * `timeoutMs`: a blocking flock would wait forever behind a stopped holder, and would freeze
 * the caller's event loop meanwhile (the box service serves every container).
 */
export function withPoolLock<T>(dir: string, timeoutMs: number, fn: () => T): T {
  const path = join(dir, LOCK_FILE);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (error) {
    throw ioError(`opening ${path}`, path, error);
  }
  try {
    const deadline = Date.now() + timeoutMs;
    let pause = 1;
    while (!tryLock(fd, path)) {
      if (Date.now() >= deadline) {
        throw new IpamError(
          'EIPAMLOCKED',
          `the address pools in ${dir} are locked by another process (waited ${timeoutMs} ms for ${path})`,
          { path },
        );
      }
      Atomics.wait(sleeper, 0, 0, pause + Math.random() * pause);
      pause = Math.min(pause * 2, 20);
    }
    return fn();
  } finally {
    closeSync(fd); // releases the lock
  }
}

export function isHost(subnet: Cidr, address: number): boolean {
  return cidrContains(subnet, address) && address !== subnet.base && address !== lastAddress(subnet);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function corrupt(path: string, reason: string, cause?: unknown): IpamError {
  return new IpamError('EIPAMCORRUPT', `the address pool file ${path} is corrupt: ${reason}`, {
    path,
    cause,
  });
}

function ioError(doing: string, path: string, cause: unknown): IpamError {
  const code = (cause as NodeJS.ErrnoException | null)?.code;
  return new IpamError('EIPAMIO', `${doing}: ${code ?? (cause as Error)?.message ?? String(cause)}`, {
    path,
    cause,
  });
}
