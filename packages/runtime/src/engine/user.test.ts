import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveUser } from './user.js';

let rootfs: string;

beforeAll(() => {
  rootfs = mkdtempSync(join(tmpdir(), 'box-user-'));
  mkdirSync(join(rootfs, 'etc'));
  writeFileSync(
    join(rootfs, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nweb:x:33:44:web:/srv/web:/bin/sh\n',
  );
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nwww:x:44:\nextra:x:50:web,other\nstaff:x:60:other\n');
});
afterAll(() => rmSync(rootfs, { recursive: true, force: true }));

describe('resolveUser', () => {
  it('defaults to root', () => {
    expect(resolveUser(rootfs, undefined)).toEqual({ uid: 0, gid: 0, additionalGids: [], home: '/root' });
  });

  it('resolves names, primary and supplementary groups from the image', () => {
    expect(resolveUser(rootfs, 'web')).toEqual({ uid: 33, gid: 44, additionalGids: [50], home: '/srv/web' });
    expect(resolveUser(rootfs, 'web:staff')).toMatchObject({ uid: 33, gid: 60, additionalGids: [] });
  });

  it('takes numeric ids that are not in the image', () => {
    expect(resolveUser(rootfs, '1000')).toEqual({ uid: 1000, gid: 0, additionalGids: [], home: '/' });
    expect(resolveUser(rootfs, '1000:1000')).toMatchObject({ uid: 1000, gid: 1000 });
  });

  it('rejects unknown names and malformed values', () => {
    expect(() => resolveUser(rootfs, 'nobody')).toThrow('unable to find user nobody');
    expect(() => resolveUser(rootfs, 'web:nogroup')).toThrow('unable to find group nogroup');
    expect(() => resolveUser(rootfs, ':1')).toThrow('invalid user');
    expect(() => resolveUser(rootfs, '1:')).toThrow('invalid user');
    expect(() => resolveUser(rootfs, '1:2:3')).toThrow('invalid user');
  });

  it('reads /etc/passwd through the image, never the host', () => {
    const evil = mkdtempSync(join(tmpdir(), 'box-user-evil-'));
    try {
      mkdirSync(join(evil, 'etc'));
      // An image whose passwd is a symlink to the host's.
      rmSync(join(evil, 'etc'), { recursive: true });
      symlinkSync('/etc', join(evil, 'etc'));
      expect(() => resolveUser(evil, 'daemon')).toThrow('unable to find user daemon');
    } finally {
      rmSync(evil, { recursive: true, force: true });
    }
  });
});
