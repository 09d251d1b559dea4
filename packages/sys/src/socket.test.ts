import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  AF_NETLINK,
  MSG_DONTWAIT,
  MSG_PEEK,
  MSG_TRUNC,
  NETLINK_ROUTE,
  SO_RCVBUF,
  SO_RCVTIMEO,
  SOCK_RAW,
  SOL_SOCKET,
} from './constants.js';
import { bind, close, pipe, recvFrom, send, setsockopt, socket } from './syscalls.js';

const RTM_NEWLINK = 16;
const RTM_GETLINK = 18;
const NLM_F_REQUEST = 1;

/** A netlink request for the link with index 1 (lo, in every network namespace). */
function getLoopback(seq: number): Buffer {
  const msg = Buffer.alloc(32);
  msg.writeUInt32LE(32, 0);
  msg.writeUInt16LE(RTM_GETLINK, 4);
  msg.writeUInt16LE(NLM_F_REQUEST, 6);
  msg.writeUInt32LE(seq, 8);
  msg.writeInt32LE(1, 20); // ifinfomsg.ifi_index
  return msg;
}

function netlinkAddress(): Buffer {
  const address = Buffer.alloc(12);
  address.writeUInt16LE(AF_NETLINK, 0);
  return address;
}

function fdFlags(fd: number): number {
  return Number.parseInt(/flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);
}

describe('socket / bind / setsockopt / send / recvFrom', () => {
  it('asks the kernel about lo over a netlink socket and reads the answer and its sender', () => {
    const fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    try {
      expect(fdFlags(fd) & 0o2000000).not.toBe(0); // close-on-exec
      bind(fd, netlinkAddress());
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, 1 << 16, 'SO_RCVBUF');
      expect(send(fd, getLoopback(7))).toBe(32);

      const small = Buffer.alloc(16);
      const length = recvFrom(fd, small, MSG_PEEK | MSG_TRUNC);
      expect(length).toBeGreaterThan(16); // the whole datagram's length, still queued

      const reply = Buffer.alloc(length);
      const from = Buffer.alloc(12);
      expect(recvFrom(fd, reply, 0, from)).toBe(length);
      expect(reply.readUInt32LE(0)).toBe(length);
      expect(reply.readUInt16LE(4)).toBe(RTM_NEWLINK);
      expect(reply.readUInt32LE(8)).toBe(7);
      expect(reply.readInt32LE(20)).toBe(1);
      expect(from.readUInt16LE(0)).toBe(AF_NETLINK);
      expect(from.readUInt32LE(4)).toBe(0); // the kernel's port
    } finally {
      close(fd);
    }
  });

  it('EAGAIN with nothing queued: at once with MSG_DONTWAIT, after SO_RCVTIMEO otherwise', () => {
    const fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    try {
      const buffer = Buffer.alloc(64);
      expect(() => recvFrom(fd, buffer, MSG_DONTWAIT)).toThrow(
        expect.objectContaining({ syscall: 'recvfrom', code: 'EAGAIN', path: `fd ${fd}` }),
      );
      const timeout = Buffer.alloc(16);
      timeout.writeBigInt64LE(20_000n, 8); // 20 ms
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, timeout, 'SO_RCVTIMEO');
      const start = performance.now();
      expect(() => recvFrom(fd, buffer)).toThrow(expect.objectContaining({ code: 'EAGAIN' }));
      expect(performance.now() - start).toBeGreaterThanOrEqual(15);
    } finally {
      close(fd);
    }
  });

  it('throws SyscallErrors naming the call and fd', () => {
    expect(() => socket(9999, SOCK_RAW, 0)).toThrow(
      expect.objectContaining({ syscall: 'socket', code: 'EAFNOSUPPORT' }),
    );
    const [r, w] = pipe();
    try {
      expect(() => bind(r, netlinkAddress())).toThrow(
        expect.objectContaining({ syscall: 'bind', code: 'ENOTSOCK', path: `fd ${r}` }),
      );
      expect(() => setsockopt(r, SOL_SOCKET, SO_RCVBUF, 1, 'SO_RCVBUF')).toThrow(
        expect.objectContaining({ syscall: 'setsockopt', code: 'ENOTSOCK', args: 'SO_RCVBUF' }),
      );
      expect(() => send(r, Buffer.alloc(1))).toThrow(
        expect.objectContaining({ syscall: 'send', code: 'ENOTSOCK' }),
      );
      expect(() => recvFrom(r, Buffer.alloc(1))).toThrow(
        expect.objectContaining({ syscall: 'recvfrom', code: 'ENOTSOCK' }),
      );
    } finally {
      close(r);
      close(w);
    }
  });
});
