/**
 * docker's --cap-add, --cap-drop and --security-opt no-new-privileges, seen from inside the
 * container the way an attacker would look: its capability sets and what it can do with them.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { box, useBoxRoot } from '../helpers/box.js';

const env = useBoxRoot();

/** A capability set of /proc/self/status in the container, as a bigint. */
function capSet(args: string[], field = 'CapEff'): bigint {
  const r = box(env.root, ['run', '--rm', ...args, 'busybox', 'grep', `${field}:`, '/proc/self/status']);
  expect(r.code, r.stderr).toBe(0);
  return BigInt(`0x${r.stdout.split(/\s+/)[1]}`);
}

const bit = (n: number) => 1n << BigInt(n);
const CAP_CHOWN = 0;
const CAP_NET_RAW = 13;
const CAP_SYS_ADMIN = 21;

describe('capabilities', () => {
  it("drops docker's defaults by name, ALL, and adds what is asked", () => {
    const defaults = capSet([]);
    expect(defaults & bit(CAP_CHOWN)).toBe(bit(CAP_CHOWN));
    expect(defaults & bit(CAP_SYS_ADMIN)).toBe(0n);
    expect(capSet(['--cap-drop', 'net_raw']) & bit(CAP_NET_RAW)).toBe(0n);
    expect(capSet(['--cap-drop', 'ALL'])).toBe(0n);
    expect(capSet(['--cap-drop', 'ALL'], 'CapBnd')).toBe(0n);
    expect(capSet(['--cap-drop', 'ALL', '--cap-add', 'CAP_CHOWN'])).toBe(bit(CAP_CHOWN));
    expect(capSet(['--cap-add', 'sys_admin']) & bit(CAP_SYS_ADMIN)).toBe(bit(CAP_SYS_ADMIN));
  });

  it('a dropped capability is refused by the kernel inside the container', () => {
    expect(box(env.root, ['run', '--rm', 'busybox', 'chown', '1', '/tmp']).code).toBe(0);
    const r = box(env.root, ['run', '--rm', '--cap-drop', 'chown', 'busybox', 'chown', '1', '/tmp']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Operation not permitted');
  });

  it('box inspect shows what was asked', () => {
    const id = box(env.root, [
      'create',
      '--cap-add',
      'sys_admin',
      '--cap-drop',
      'ALL',
      '--security-opt',
      'no-new-privileges',
      'busybox',
      'true',
    ]).stdout.trim();
    const host = JSON.parse(box(env.root, ['inspect', '-f', '{{json .HostConfig}}', id]).stdout);
    expect(host).toMatchObject({
      CapAdd: ['sys_admin'],
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
    });
    expect(box(env.root, ['rm', id]).code).toBe(0);
  });

  it('an unknown capability: one line, exit 125, nothing made', () => {
    const r = box(env.root, ['run', '--rm', '--cap-add', 'CAP_FLY', 'busybox', 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr.trim()).toBe('box: unknown capability: "CAP_FLY"');
    expect(readdirSync(join(env.root, 'containers'))).toEqual([]);
  });
});

describe('--security-opt', () => {
  it('no-new-privileges sets the flag in the container', () => {
    expect(capSet([], 'NoNewPrivs')).toBe(0n);
    expect(capSet(['--security-opt', 'no-new-privileges'], 'NoNewPrivs')).toBe(1n);
    expect(capSet(['--security-opt', 'no-new-privileges:true'], 'NoNewPrivs')).toBe(1n);
  });

  it('options this host has nothing for (AppArmor, SELinux labels) are refused, never ignored', () => {
    for (const opt of ['apparmor=unconfined', 'label=disable']) {
      const r = box(env.root, ['run', '--rm', '--security-opt', opt, 'busybox', 'true']);
      expect(r.code).toBe(125);
      expect(r.stderr).toContain(`unsupported --security-opt "${opt}"`);
    }
  });
});
