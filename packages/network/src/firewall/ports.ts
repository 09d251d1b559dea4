/**
 * Whether a host port can be published: DNAT takes packets to it away from any process
 * listening there, so a port a process holds is refused, as docker refuses it. The check
 * binds the address and port for a moment (exclusively, without SO_REUSEPORT), in the
 * caller's network namespace.
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { tryParseIPv4 } from '../ipam/cidr.js';
import { FirewallError } from './errors.js';
import { type Protocol, portAllocated } from './rules.js';

/**
 * Resolves when `hostIp:port` (any address for `0.0.0.0` or '') is free for `protocol`;
 * otherwise `EPORTALLOCATED` with docker's message (`Bind for 0.0.0.0:8080 failed: port is
 * already allocated`).
 */
export async function checkPortFree(hostIp: string, port: number, protocol: Protocol = 'tcp'): Promise<void> {
  const address = hostIp === '' ? '0.0.0.0' : hostIp;
  if (tryParseIPv4(address) === null) {
    throw new FirewallError(
      'EFIREWALLINVAL',
      `invalid host address ${JSON.stringify(hostIp)}: expected an IPv4 address`,
    );
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new FirewallError(
      'EFIREWALLINVAL',
      `invalid host port ${JSON.stringify(port)}: expected 1 to 65535`,
    );
  }
  if (protocol !== 'tcp' && protocol !== 'udp') {
    throw new FirewallError(
      'EFIREWALLINVAL',
      `invalid protocol ${JSON.stringify(protocol)}: expected tcp or udp`,
    );
  }
  try {
    await (protocol === 'tcp' ? bindTcp(address, port) : bindUdp(address, port));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw portAllocated(address, port);
    throw new FirewallError(
      'EPORTALLOCATED',
      `Bind for ${address}:${port} failed: ${code === 'EADDRNOTAVAIL' ? 'cannot assign requested address' : (code ?? String(error))}`,
      { cause: error },
    );
  }
}

function bindTcp(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true, backlog: 1 }, () => server.close(() => resolve()));
  });
}

function bindUdp(address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: 'udp4', reuseAddr: false });
    socket.once('error', (error) => {
      socket.close();
      reject(error);
    });
    socket.bind({ address, port, exclusive: true }, () => socket.close(() => resolve()));
  });
}
