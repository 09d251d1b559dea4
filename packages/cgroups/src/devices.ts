import type { DeviceRule } from './manager.js';

const rule = (type: 'c' | 'b', major: number | '*', minor: number | '*', access: string): DeviceRule => ({
  allow: true,
  type,
  major,
  minor,
  access,
});

/** docker's default device allow list; everything else is denied. */
export const DEFAULT_DEVICE_RULES: readonly DeviceRule[] = Object.freeze([
  rule('c', '*', '*', 'm'), // mknod any character device
  rule('b', '*', '*', 'm'), // mknod any block device
  rule('c', 1, 3, 'rwm'), // /dev/null
  rule('c', 1, 5, 'rwm'), // /dev/zero
  rule('c', 1, 7, 'rwm'), // /dev/full
  rule('c', 1, 8, 'rwm'), // /dev/random
  rule('c', 1, 9, 'rwm'), // /dev/urandom
  rule('c', 5, 0, 'rwm'), // /dev/tty
  rule('c', 5, 1, 'rwm'), // /dev/console
  rule('c', 5, 2, 'rwm'), // /dev/ptmx
  rule('c', 136, '*', 'rwm'), // /dev/pts/*
  rule('c', 10, 200, 'rwm'), // /dev/net/tun
]);

/** A rule as the v1 `devices.allow`/`devices.deny` files take it: `c 1:3 rwm`, or `a`. */
export function formatDeviceRule(device: DeviceRule): string {
  if (device.type === 'a') return 'a';
  return `${device.type} ${device.major ?? '*'}:${device.minor ?? '*'} ${device.access ?? 'rwm'}`;
}
