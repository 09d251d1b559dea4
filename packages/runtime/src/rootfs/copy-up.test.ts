import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  fstatSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { O_DIRECTORY, O_PATH } from '@box/sys';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type CopyUpEntry,
  closeCopyUp,
  copyUpFds,
  MAX_COPY_UP_ENTRIES,
  MAX_COPY_UP_EXTENTS,
  MAX_COPY_UP_FILES,
  MAX_COPY_UP_NAME_BYTES,
  planCopyUp,
  RootfsCopies,
} from './copy-up.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'box-copy-up-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function plan(options: Partial<Parameters<typeof planCopyUp>[1]> = {}): CopyUpEntry[] {
  const fd = openSync(dir, O_PATH | O_DIRECTORY);
  try {
    const entries = planCopyUp(fd, { destination: '/run', ...options });
    closeCopyUp(entries);
    return entries;
  } finally {
    closeSync(fd);
  }
}

const summary = (entries: CopyUpEntry[]) => entries.map((e) => `${e.kind} ${e.path.toString()}`);

describe('planCopyUp', () => {
  it('lists nothing for an empty directory', () => {
    expect(plan()).toEqual([]);
  });

  it('keeps names that are not UTF-8 as their bytes', () => {
    const name = Buffer.from([0x61, 0xff, 0x62]);
    writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), name]), '');
    expect(plan()).toMatchObject([{ kind: 'file', path: name }]);
  });

  it("walks in order: a directory before its entries, its attributes after them; hard links copied once; links' targets as they are", () => {
    mkdirSync(join(dir, 'a/b'), { recursive: true });
    writeFileSync(join(dir, 'a/file'), 'x');
    chownSync(join(dir, 'a/file'), 1000, 1001);
    linkSync(join(dir, 'a/file'), join(dir, 'hard'));
    symlinkSync('/etc/shadow', join(dir, 'link'));
    execFileSync('mkfifo', ['-m', '0620', join(dir, 'fifo')]);
    const entries = plan();
    expect(summary(entries)).toEqual([
      'dir a',
      'dir a/b',
      'dir-end a/b',
      'file a/file',
      'dir-end a',
      'node fifo',
      'link hard',
      'symlink link',
    ]);
    const file = entries.find((e) => e.kind === 'file')!;
    expect(file).toMatchObject({ size: 1, extents: [{ offset: 0, length: 1 }] });
    expect(file.kind === 'file' && file.attributes).toMatchObject({ uid: 1000, gid: 1001, perm: 0o644 });
    expect(entries.find((e) => e.kind === 'link')).toMatchObject({ to: Buffer.from('a/file') });
    expect(entries.find((e) => e.kind === 'symlink')).toMatchObject({ target: Buffer.from('/etc/shadow') });
    expect(entries.find((e) => e.kind === 'node')).toMatchObject({
      type: 0o010000,
      attributes: { perm: 0o620 },
    });
  });

  it("keeps a sparse file's holes out of the copy", () => {
    execFileSync('truncate', ['-s', '1T', join(dir, 'sparse')]);
    const [entry] = plan();
    expect(entry).toMatchObject({ kind: 'file', size: 2 ** 40, extents: [] });
  });

  it("writes owners as the container's user namespace maps them, and refuses one it does not map", () => {
    writeFileSync(join(dir, 'f'), '');
    chownSync(join(dir, 'f'), 100_005, 100_007);
    const maps = [{ containerID: 0, hostID: 100_000, size: 65536 }];
    const [entry] = plan({ uidMappings: maps, gidMappings: maps });
    expect(entry?.kind === 'file' && entry.attributes).toMatchObject({ uid: 5, gid: 7 });
    chownSync(join(dir, 'f'), 5, 100_007);
    expect(() => plan({ uidMappings: maps, gidMappings: maps })).toThrow(
      "tmpcopyup on /run: /run/f is owned by host uid 5, which the container's user namespace does not map",
    );
  });

  it(`refuses more than ${MAX_COPY_UP_ENTRIES} entries`, () => {
    for (let i = 0; i <= MAX_COPY_UP_ENTRIES; i++) writeFileSync(join(dir, String(i)), '');
    expect(() => plan()).toThrow(
      `tmpcopyup on /run: more than ${MAX_COPY_UP_ENTRIES} files to copy into the tmpfs`,
    );
  });

  it("holds each regular file open, to be read by the child: content, owner and mode of one inode; a bind mount's device nodes are refused", () => {
    writeFileSync(join(dir, 'su'), 'setuid');
    chmodSync(join(dir, 'su'), 0o6755);
    const fd = openSync(dir, O_PATH | O_DIRECTORY);
    try {
      const entries = planCopyUp(fd, { destination: '/run' });
      const [file] = entries;
      expect(file?.kind === 'file' && file.attributes.perm).toBe(0o6755);
      const held = file?.kind === 'file' ? file.fd : -1;
      expect(copyUpFds(entries)).toEqual([held]);
      // The file it holds is the one it planned, whatever the name shows now.
      rmSync(join(dir, 'su'));
      writeFileSync(join(dir, 'su'), 'swapped');
      expect(readFileSync(`/proc/self/fd/${held}`, 'utf8')).toBe('setuid');
      closeCopyUp(entries);
      expect(() => fstatSync(held)).toThrow();
      execFileSync('mknod', [join(dir, 'null'), 'c', '1', '3']);
      expect(() => planCopyUp(fd, { destination: '/run', shared: true })).toThrow(
        "tmpcopyup on /run: /run/null is a device node in a bind mount's source",
      );
      rmSync(join(dir, 'null'));
      chmodSync(join(dir, 'su'), 0o6755);
      // From a bind mount's source, without setuid and setgid: bytes rewritten in the inode held
      // (by another container) would keep the mode planned for them.
      const shared = planCopyUp(fd, { destination: '/run', shared: true });
      closeCopyUp(shared);
      expect(shared[0]?.kind === 'file' && shared[0].attributes.perm).toBe(0o755);
    } finally {
      closeSync(fd);
    }
  });

  it(`refuses more than ${MAX_COPY_UP_EXTENTS} runs of data, or ${MAX_COPY_UP_NAME_BYTES} bytes of names`, () => {
    const fd = openSync(join(dir, 'holey'), 'w');
    for (let i = 0; i <= MAX_COPY_UP_EXTENTS; i++) writeSync(fd, 'x', i * 8192);
    closeSync(fd);
    expect(() => plan()).toThrow(`tmpcopyup on /run: more than ${MAX_COPY_UP_EXTENTS} runs of data to copy`);
    rmSync(join(dir, 'holey'));
    const long = join(dir, 'd'.repeat(255));
    mkdirSync(long);
    const count = Math.ceil(MAX_COPY_UP_NAME_BYTES / 511);
    for (let i = 0; i < count; i++) symlinkSync('x', join(long, String(i).padStart(255, '0')));
    expect(() => plan()).toThrow(
      `tmpcopyup on /run: more than ${MAX_COPY_UP_NAME_BYTES} bytes of names to copy`,
    );
  });

  it('refuses a mount inside the directory (the child reads only its own mount), naming it on one line', () => {
    mkdirSync(join(dir, 'sub\nline'));
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', join(dir, 'sub\nline')]);
    try {
      expect(() => plan()).toThrow(
        'tmpcopyup on /run: /run/sub\\nline is another mount, or changed while it was read',
      );
    } finally {
      execFileSync('umount', [join(dir, 'sub\nline')]);
    }
  });

  it(`holds at most ${MAX_COPY_UP_FILES} files open for one container's copies`, () => {
    for (let i = 0; i < MAX_COPY_UP_FILES; i++) writeFileSync(join(dir, String(i)), '');
    expect(() => plan({ held: 1 })).toThrow(
      `tmpcopyup on /run: more than ${MAX_COPY_UP_FILES} files to copy into the container's tmpfs mounts`,
    );
    expect(copyUpFds(plan())).toHaveLength(MAX_COPY_UP_FILES);
  });
});

describe('RootfsCopies', () => {
  it('makes each plan in the first pass, and in the second takes it only where the mount finds the same directory', () => {
    writeFileSync(join(dir, 'f'), 'x');
    const fd = openSync(dir, O_PATH | O_DIRECTORY);
    const copies = new RootfsCopies();
    const changed = (): never => {
      throw new Error('changed');
    };
    try {
      const make = () => planCopyUp(fd, { destination: '/run' });
      const first = copies.plan(0, '/run', fd, make, changed);
      expect(copies.plan(1, '/tmp', undefined, make, changed)).toEqual([]);
      expect(copies.fds()).toHaveLength(1);
      copies.endPlanning();
      const never = () => {
        throw new Error('planned again');
      };
      expect(copies.plan(0, '/run', fd, never, changed)).toBe(first);
      // Another path, another directory, or one where there was none: refused.
      expect(() => copies.plan(0, '/etc', fd, never, changed)).toThrow('changed');
      const other = openSync(join(dir, '..'), O_PATH | O_DIRECTORY);
      try {
        expect(() => copies.plan(0, '/run', other, never, changed)).toThrow('changed');
        expect(() => copies.plan(1, '/tmp', other, never, changed)).toThrow('changed');
      } finally {
        closeSync(other);
      }
      expect(() => copies.plan(2, '/var', undefined, never, changed)).toThrow('changed');
    } finally {
      copies.close();
      closeSync(fd);
    }
    expect(copies.fds()).toEqual([]);
  });
});
