/**
 * A netlink socket and its request/answer exchanges: a request with NLM_F_ACK answered by
 * an acknowledgement or an error, a request answered by one message, and dumps (NLM_F_DUMP,
 * answered in parts until NLMSG_DONE).
 *
 * Synchronous on purpose. rtnetlink handles a request inside the sender's send(2), under
 * the kernel's rtnl lock, and has queued its answer before send returns; a dump's parts are
 * made inside each recv(2). So a receive never waits for an event, and an async round trip
 * would add an event-loop turn per request to a few microseconds of work. The cost: a
 * request blocks this thread while another process holds the rtnl lock (microseconds
 * usually; tens of milliseconds while someone tears down many interfaces). SO_RCVTIMEO
 * bounds a receive in case an answer never comes.
 */
import {
  AF_NETLINK,
  bind,
  close,
  errnoValue,
  MSG_PEEK,
  MSG_TRUNC,
  recvFrom,
  SO_RCVTIMEO,
  SOCK_RAW,
  SOL_NETLINK,
  SOL_SOCKET,
  SyscallError,
  send,
  setsockopt,
  socket,
} from '@box/sys';
import {
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_MULTI,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSG_NOOP,
  NLMSGERR_ATTR_MSG,
} from './constants.js';
import { ETIMEDOUT, invalidArgument, isNetlinkError, NetlinkError } from './errors.js';
import {
  align,
  attrText,
  decodeAttributes,
  decodeMessages,
  encodeMessage,
  type NetlinkMessage,
} from './message.js';
import { describeNetns, type NetnsRef, socketInNetns } from './netns.js';

export interface NetlinkSocketOptions {
  /** The netlink protocol (NETLINK_ROUTE, 0, by default). */
  protocol?: number;
  /** Make the socket in this network namespace instead of the calling thread's. */
  netns?: NetnsRef;
  /** How long one receive may wait for the kernel, in ms (10 000 by default). */
  timeoutMs?: number;
}

const EAGAIN = 11;
const EINTR = 4;
const DUMP_ATTEMPTS = 5;

export class NetlinkSocket {
  readonly fd: number;
  /** ` in netns of pid 4242` for a socket in another namespace, appended to operations in errors. */
  readonly where: string;
  private readonly timeoutMs: number;
  private seq = 0;
  private buffer = Buffer.alloc(32 * 1024);
  private readonly from = Buffer.alloc(12);
  private closed = false;

  private constructor(fd: number, where: string, timeoutMs: number) {
    this.fd = fd;
    this.where = where;
    this.timeoutMs = timeoutMs;
  }

  static open(options: NetlinkSocketOptions = {}): NetlinkSocket {
    const protocol = options.protocol ?? 0;
    const where = options.netns ? ` in ${describeNetns(options.netns)}` : '';
    let fd: number;
    try {
      fd = options.netns
        ? socketInNetns(options.netns, AF_NETLINK, SOCK_RAW, protocol)
        : socket(AF_NETLINK, SOCK_RAW, protocol);
    } catch (error) {
      if (isNetlinkError(error)) throw error;
      throw new NetlinkError(`open netlink socket${where}`, errnoOf(error), { cause: error });
    }
    try {
      return NetlinkSocket.adopt(fd, where, options.timeoutMs);
    } catch (error) {
      close(fd);
      throw error;
    }
  }

  /** Takes over an open netlink socket (closed by close()); `where` as in errors. */
  static adopt(fd: number, where = '', timeoutMs = 10_000): NetlinkSocket {
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
      throw invalidArgument(`set up netlink socket fd ${fd}${where}`, `not a timeout in ms: ${timeoutMs}`);
    try {
      const address = Buffer.alloc(12); // sockaddr_nl: the kernel picks our port
      address.writeUInt16LE(AF_NETLINK, 0);
      bind(fd, address);
      // Errors carry the kernel's explanation, and not the whole request back.
      setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1, 'NETLINK_EXT_ACK');
      setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1, 'NETLINK_CAP_ACK');
      const timeout = Buffer.alloc(16);
      timeout.writeBigInt64LE(BigInt(Math.floor(timeoutMs / 1000)), 0);
      timeout.writeBigInt64LE(BigInt((timeoutMs % 1000) * 1000), 8);
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, timeout, 'SO_RCVTIMEO');
    } catch (error) {
      throw new NetlinkError(`set up netlink socket fd ${fd}${where}`, errnoOf(error), { cause: error });
    }
    return new NetlinkSocket(fd, where, timeoutMs);
  }

  /** Sends a request with NLM_F_ACK and returns once the kernel acknowledged it; throws its error. */
  request(type: number, flags: number, parts: readonly Buffer[], operation: string): void {
    const seq = this.send(type, NLM_F_REQUEST | NLM_F_ACK | flags, parts, operation);
    this.receive(seq, operation, () => false);
  }

  /** Sends a request answered by one message (RTM_GETLINK for one link) and returns that message. */
  get(type: number, parts: readonly Buffer[], operation: string): NetlinkMessage {
    const seq = this.send(type, NLM_F_REQUEST, parts, operation);
    let answer: NetlinkMessage | undefined;
    this.receive(seq, operation, (message) => {
      answer = message;
      return true;
    });
    if (!answer) throw new NetlinkError(`${operation}${this.where}`, EAGAIN, { detail: 'no answer' });
    return answer;
  }

  /**
   * Sends a dump request and returns every message of the answer. A dump the kernel marks
   * as interrupted (the table changed meanwhile) is asked for again.
   */
  dump(type: number, parts: readonly Buffer[], operation: string): NetlinkMessage[] {
    for (let attempt = 1; ; attempt++) {
      const seq = this.send(type, NLM_F_REQUEST | NLM_F_DUMP, parts, operation);
      const messages: NetlinkMessage[] = [];
      let interrupted = false;
      this.receive(seq, operation, (message) => {
        if (message.flags & NLM_F_DUMP_INTR) interrupted = true;
        if (message.type === NLMSG_DONE) return true;
        messages.push(message);
        return (message.flags & NLM_F_MULTI) === 0;
      });
      if (!interrupted) return messages;
      if (attempt === DUMP_ATTEMPTS)
        throw new NetlinkError(`${operation}${this.where}`, EINTR, {
          detail: `the table kept changing during ${DUMP_ATTEMPTS} dumps`,
        });
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    close(this.fd);
  }

  private send(type: number, flags: number, parts: readonly Buffer[], operation: string): number {
    if (this.closed)
      throw new NetlinkError(`${operation}${this.where}`, 9, { detail: 'the socket is closed' }); // EBADF
    this.seq = (this.seq + 1) >>> 0 || 1;
    const message = encodeMessage(type, flags, this.seq, parts);
    try {
      send(this.fd, message);
    } catch (error) {
      throw new NetlinkError(`${operation}${this.where}`, errnoOf(error), { cause: error });
    }
    return this.seq;
  }

  /**
   * Reads datagrams until the answer to `seq` is complete: an NLMSG_ERROR (an error, or 0 for
   * an acknowledgement), NLMSG_DONE, or `onMessage` returning true. Messages of other
   * sequence numbers (a late answer to an abandoned request) and datagrams that do not come
   * from the kernel (port 0) are skipped.
   */
  private receive(seq: number, operation: string, onMessage: (message: NetlinkMessage) => boolean): void {
    for (;;) {
      const data = this.read(operation);
      if (data === undefined) continue;
      for (const message of decodeMessages(data)) {
        if (message.seq !== seq || message.type === NLMSG_NOOP) continue;
        if (message.type === NLMSG_ERROR) {
          const errno = -message.payload.readInt32LE(0);
          if (errno === 0) return;
          throw new NetlinkError(`${operation}${this.where}`, errno, { detail: extendedAck(message) });
        }
        if (message.type === NLMSG_DONE && message.payload.length >= 4) {
          const errno = -message.payload.readInt32LE(0);
          if (errno > 0)
            throw new NetlinkError(`${operation}${this.where}`, errno, { detail: extendedAck(message, 4) });
        }
        if (onMessage(message)) return;
      }
    }
  }

  /** One datagram from the kernel (undefined for one from anyone else). */
  private read(operation: string): Buffer | undefined {
    try {
      const length = recvFrom(this.fd, this.buffer, MSG_PEEK | MSG_TRUNC);
      if (length > this.buffer.length) this.buffer = Buffer.alloc(align(length));
      const n = recvFrom(this.fd, this.buffer, 0, this.from);
      if (this.from.readUInt32LE(4) !== 0) return undefined;
      // A copy: messages of a dump outlive the next datagram read into the buffer.
      return Buffer.from(this.buffer.subarray(0, n));
    } catch (error) {
      if (error instanceof SyscallError && error.errno === EAGAIN)
        throw new NetlinkError(`${operation}${this.where}`, ETIMEDOUT, {
          detail: `no answer from the kernel within ${this.timeoutMs} ms`,
          cause: error,
        });
      throw new NetlinkError(`${operation}${this.where}`, errnoOf(error), { cause: error });
    }
  }
}

/**
 * The kernel's words in an extended acknowledgement (NETLINK_EXT_ACK), if any. In an
 * NLMSG_ERROR they follow the error code and the request's header (and its payload unless
 * capped); in an NLMSG_DONE, at `offset` 4, the error code alone.
 */
function extendedAck(message: NetlinkMessage, offset?: number): string | undefined {
  if ((message.flags & NLM_F_ACK_TLVS) === 0) return undefined;
  if (offset === undefined) {
    if (message.payload.length < 4 + NLMSG_HDRLEN) return undefined;
    const requestLength = message.payload.readUInt32LE(4);
    offset = 4 + (message.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : align(requestLength));
  }
  return attrText(decodeAttributes(message.payload, offset).get(NLMSGERR_ATTR_MSG));
}

/** The errno number of a SyscallError or a Node.js system error (EIO for anything else). */
export function errnoOf(error: unknown): number {
  if (error instanceof SyscallError) return error.errno;
  const { errno, code } = (error ?? {}) as { errno?: unknown; code?: unknown };
  if (typeof errno === 'number' && errno !== 0) return Math.abs(errno);
  if (typeof code === 'string') {
    try {
      const value = errnoValue(code as Parameters<typeof errnoValue>[0]);
      if (typeof value === 'number') return value;
    } catch {}
  }
  return 5; // EIO
}
