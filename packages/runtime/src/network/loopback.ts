import { AF_INET, type ChildProgram, SIOCSIFFLAGS, SOCK_CLOEXEC, SOCK_DGRAM } from '@box/sys';

const IFF_UP = 0x1;
const IFF_LOOPBACK = 0x8;
const IFF_RUNNING = 0x40;

/** Brings `lo` up in the container's new network namespace, as docker does. */
export function addLoopbackSteps(program: ChildProgram): void {
  const socket = program.slot();
  const ifreq = Buffer.alloc(40);
  ifreq.write('lo', 0, 'ascii');
  ifreq.writeUInt16LE(IFF_UP | IFF_LOOPBACK | IFF_RUNNING, 16);
  program.call('socket', 'open a socket to configure lo', [AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0], {
    store: socket,
  });
  program.call('ioctl', 'bring lo up', [socket, SIOCSIFFLAGS, program.bytes(ifreq)]);
  program.close(socket, 'close the lo socket');
}
