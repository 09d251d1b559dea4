/**
 * The two kernel settings bridge networking needs, in the caller's network namespace (or in
 * a named one: /proc/sys/net shows the namespace of the process that opens it, so that is
 * done by a process started there with `ip netns exec`).
 *
 * - `net.ipv4.ip_forward`: without it the host routes nothing between the bridge and its
 *   other interfaces. docker turns it on when it starts (and so does podman's netavark);
 *   box turns it on when a network with outside access is set up. It is never turned off
 *   again: other software may rely on it by then.
 * - `net.ipv4.conf.<bridge>.route_localnet`: a connection from the host to a published port
 *   through 127.0.0.1 is DNATed to the container but keeps its source 127.0.0.1 until
 *   postrouting masquerades it; the kernel routes a packet with a loopback source onto a
 *   non-loopback interface only where route_localnet is on (otherwise it is a martian, and
 *   connect() fails with EINVAL). netavark does the same, docker when its userland proxy is
 *   off. Turned on per bridge only; the network's guard chain drops what it would let in
 *   (packets to or from 127.0.0.0/8 arriving on the bridge).
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { FirewallError } from './errors.js';
import { checkIfname } from './rules.js';

export interface SysctlOptions {
  /** A named network namespace (/run/netns/NAME) to work in, rather than the caller's. */
  netns?: string;
}

/** Turns `net.ipv4.ip_forward` on; returns whether it was off. */
export function enableIpForward(options: SysctlOptions = {}): Promise<boolean> {
  return enable('/proc/sys/net/ipv4/ip_forward', options);
}

/** Turns `net.ipv4.conf.<bridge>.route_localnet` on; returns whether it was off. */
export function enableRouteLocalnet(bridge: string, options: SysctlOptions = {}): Promise<boolean> {
  return enable(`/proc/sys/net/ipv4/conf/${checkIfname(bridge)}/route_localnet`, options);
}

async function enable(path: string, options: SysctlOptions): Promise<boolean> {
  const before = (await readSysctl(path, options)).trim();
  if (before === '1') return false;
  await writeSysctl(path, '1', options);
  return true;
}

export async function readSysctl(path: string, options: SysctlOptions = {}): Promise<string> {
  if (!options.netns) {
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      throw sysctlError('reading', path, error);
    }
  }
  return inNetns(options.netns, path, ['cat', path]);
}

async function writeSysctl(path: string, value: string, options: SysctlOptions): Promise<void> {
  if (!options.netns) {
    try {
      writeFileSync(path, value);
      return;
    } catch (error) {
      throw sysctlError('writing', path, error);
    }
  }
  await inNetns(options.netns, path, ['sh', '-c', 'printf %s "$1" > "$2"', 'sh', value, path]);
}

function inNetns(netns: string, path: string, argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      err += chunk;
    });
    child.on('error', (error) => reject(sysctlError('reaching', path, error)));
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else
        reject(sysctlError(`in network namespace ${netns},`, path, new Error(err.trim() || `exit ${code}`)));
    });
  });
}

function sysctlError(doing: string, path: string, cause: unknown): FirewallError {
  const code = (cause as NodeJS.ErrnoException | null)?.code;
  const missing = code === 'ENOENT' && path.includes('/conf/');
  const reason = missing ? 'no such interface' : (code ?? (cause as Error)?.message ?? String(cause));
  return new FirewallError('ESYSCTL', `${doing} ${path}: ${reason}`, { path, cause });
}
