import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createFirewall } from './firewall.js';
import { locateNft } from './nft.js';
import { checkPortFree } from './ports.js';

// Sockets bound on the loopback address of this process's namespace, for a moment.
const open: Array<Server | Socket> = [];

afterEach(async () => {
  await Promise.all(open.map((socket) => new Promise<void>((resolve) => socket.close(() => resolve()))));
  open.length = 0;
});

async function tcpHolder(host: string): Promise<number> {
  const server = createServer();
  open.push(server);
  server.listen(0, host);
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

async function udpHolder(host: string): Promise<number> {
  const socket = createSocket('udp4');
  open.push(socket);
  socket.bind(0, host);
  await once(socket, 'listening');
  return socket.address().port;
}

describe('checkPortFree', () => {
  it("refuses a TCP port a process holds, in docker's words, and takes a free one", async () => {
    const port = await tcpHolder('127.0.0.1');
    await expect(checkPortFree('127.0.0.1', port, 'tcp')).rejects.toMatchObject({
      code: 'EPORTALLOCATED',
      message: `Bind for 127.0.0.1:${port} failed: port is already allocated`,
    });
    // Any address includes the loopback one.
    await expect(checkPortFree('0.0.0.0', port, 'tcp')).rejects.toMatchObject({
      message: `Bind for 0.0.0.0:${port} failed: port is already allocated`,
    });
    await expect(checkPortFree('', port)).rejects.toMatchObject({ code: 'EPORTALLOCATED' });
    // The same number over UDP is another port.
    await checkPortFree('127.0.0.1', port, 'udp');
  });

  it('refuses a UDP port a process holds', async () => {
    const port = await udpHolder('127.0.0.1');
    await expect(checkPortFree('127.0.0.1', port, 'udp')).rejects.toMatchObject({
      message: `Bind for 127.0.0.1:${port} failed: port is already allocated`,
    });
    await expect(checkPortFree('0.0.0.0', port, 'udp')).rejects.toMatchObject({ code: 'EPORTALLOCATED' });
  });

  it('leaves the port free after checking it', async () => {
    const port = await tcpHolder('127.0.0.1');
    await new Promise<void>((resolve) => (open.pop() as Server).close(() => resolve()));
    await checkPortFree('127.0.0.1', port, 'tcp');
    await checkPortFree('127.0.0.1', port, 'tcp');
  });

  it('says when the address is not the host’s, and refuses nonsense', async () => {
    await expect(checkPortFree('192.0.2.77', 8080, 'tcp')).rejects.toMatchObject({
      code: 'EPORTALLOCATED',
      message: 'Bind for 192.0.2.77:8080 failed: cannot assign requested address',
    });
    await expect(checkPortFree('::', 8080)).rejects.toMatchObject({ code: 'EFIREWALLINVAL' });
    await expect(checkPortFree('127.0.0.1', 0)).rejects.toMatchObject({ code: 'EFIREWALLINVAL' });
  });
});

describe('the nft command', () => {
  it('is looked for in /usr/sbin, /sbin, /usr/bin, then PATH, and named by its Debian package when missing', async () => {
    expect(locateNft()).toMatch(/\/nft$/);
    // An nft early in the caller's PATH does not get to edit the firewall.
    const fake = mkdtempSync(join(tmpdir(), 'box-fake-nft-'));
    const path = process.env.PATH;
    try {
      writeFileSync(join(fake, 'nft'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
      process.env.PATH = `${fake}:${path}`;
      expect(locateNft('nft')).toBe('/usr/sbin/nft');
    } finally {
      process.env.PATH = path;
      rmSync(fake, { recursive: true, force: true });
    }
    expect(() => locateNft('/nonexistent/nft')).toThrow(
      "/nonexistent/nft was not found: box's bridge networks need nftables (Debian: apt-get install nftables)",
    );
    await expect(createFirewall({ nft: 'nft-that-is-not-there' }).ensureTable()).rejects.toMatchObject({
      code: 'ENFTMISSING',
    });
  });
});
