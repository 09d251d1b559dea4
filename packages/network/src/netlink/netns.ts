/**
 * Network namespaces as targets, and netlink sockets made inside one.
 *
 * A netlink socket talks to the network namespace it was created in, for as long as it
 * lives, whatever namespace the thread that uses it is in later. So a socket for a
 * container's namespace is made like this, all synchronously: keep an fd of this thread's
 * namespace (/proc/thread-self/ns/net), setns(2) the calling thread into the target,
 * socket(2), setns back. Nothing else runs on the thread in between: no JavaScript (the
 * code is synchronous), no libuv callback; Node's other threads (libuv's pool, V8's helpers,
 * workers) keep their own namespaces, as setns moves only the calling thread. A network
 * namespace, unlike a mount or user namespace, may be entered by one thread of a
 * multi-threaded process. The way back is taken in a `finally`, so an error on the way (no
 * such process, a socket refused in the target) still returns the thread. If the way back
 * itself failed (it needs only the rights the way in needed, so it does not happen short
 * of the kernel running out of memory), every later socket of this thread, box's own
 * included, would be made inside a container: the process aborts rather than go on so.
 *
 * Why not the kernel's ways of reaching another namespace from here: IFLA_NET_NS_PID and
 * IFLA_NET_NS_FD only say where a new link is created or moved to (used for a veth's peer,
 * see link.ts); IFLA_TARGET_NETNSID (Linux 4.20) reaches links in a namespace that has a
 * namespace id in ours (which RTM_NEWNSID would have to assign, for good), and addresses
 * only for dumps (IFA_TARGET_NETNSID in RTM_GETADDR); routes have nothing of the sort.
 * Bringing `lo` and `eth0` up, `eth0`'s address and the default route need a socket in the
 * container's namespace. A worker thread or a helper process could make that socket
 * without touching this thread, at a cost of milliseconds each, where this costs
 * microseconds. A caller that already holds such a socket (made by the container's start-up
 * program and passed over SCM_RIGHTS, say) can hand its fd to `adoptRtnetlink`.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { CLONE_NEWNET, setns, socket } from '@box/sys';
import { invalidArgument } from './errors.js';

/**
 * A network namespace: that of a process (`pid`), an open namespace file (`fd`, e.g. of
 * /proc/PID/ns/net, left open), or a namespace file's path (`path`: /run/netns/NAME,
 * /proc/PID/ns/net).
 */
export type NetnsRef = { pid: number } | { fd: number } | { path: string };

/** How a namespace shows in error messages: `netns of pid 4242`. */
export function describeNetns(ref: NetnsRef): string {
  if ('pid' in ref) return `netns of pid ${ref.pid}`;
  if ('fd' in ref) return `netns fd ${ref.fd}`;
  return `netns ${ref.path}`;
}

/** The namespace file to open for `ref`, or undefined for an fd the caller holds. */
export function netnsPath(ref: NetnsRef): string | undefined {
  if ('pid' in ref) {
    if (!Number.isInteger(ref.pid) || ref.pid <= 0)
      throw invalidArgument(`open ${describeNetns(ref)}`, 'not a process id');
    return `/proc/${ref.pid}/ns/net`;
  }
  if ('fd' in ref) return undefined;
  return ref.path;
}

/**
 * A socket (close-on-exec) created inside the network namespace `ref`; the calling thread
 * is back in its own namespace when this returns or throws.
 */
export function socketInNetns(ref: NetnsRef, domain: number, type: number, protocol: number): number {
  const path = netnsPath(ref);
  const target = path === undefined ? (ref as { fd: number }).fd : openSync(path, 'r');
  try {
    const original = openSync('/proc/thread-self/ns/net', 'r');
    try {
      setns(target, CLONE_NEWNET, path ?? `fd ${target}`);
      try {
        return socket(domain, type, protocol);
      } finally {
        returnTo(original);
      }
    } finally {
      closeSync(original);
    }
  } finally {
    if (path !== undefined) closeSync(target);
  }
}

function returnTo(original: number): void {
  try {
    setns(original, CLONE_NEWNET, '/proc/thread-self/ns/net');
  } catch (error) {
    writeSync(
      2,
      `@box/network: cannot return this thread to its own network namespace (${(error as Error).message}); aborting\n`,
    );
    process.abort();
  }
}
