import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chownSync,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { diffLayer } from './diff.js';
import { withOverlay } from './overlay.js';
import { cleanupTemp, collect, mountsUnder, readTar, tempDir } from './test-utils.js';
import { forceXattrBackend, xattrBackend } from './xattr.js';

afterAll(cleanupTemp);
afterEach(() => forceXattrBackend(undefined));

/** security.capability for cap_net_bind_service+ep (vfs_cap_data v2): binary, with bytes ≥ 0x80. */
const CAPABILITY = Buffer.from('0100000200040000000000000000000000000000', 'hex');
const BINARY = Buffer.from([0x00, 0xff, 0x80, 0x0a, 0x3d]);

/** A base layer, then a container run on it (through a real overlay) that changes things. */
async function containerUpper() {
  const root = tempDir();
  const base = join(root, 'base');
  const upper = join(root, 'upper');
  const work = join(root, 'work');
  for (const d of [base, upper, work]) mkdirSync(d);
  mkdirSync(join(base, 'etc'));
  mkdirSync(join(base, 'var', 'cache'), { recursive: true });
  mkdirSync(join(base, 'usr', 'share'), { recursive: true });
  writeFileSync(join(base, 'etc', 'passwd'), 'root:x:0:0\n');
  writeFileSync(join(base, 'etc', 'hosts'), 'base hosts\n');
  writeFileSync(join(base, 'etc', 'unchanged'), 'same\n');
  writeFileSync(join(base, 'var', 'cache', 'a'), 'a');
  writeFileSync(join(base, 'var', 'cache', 'b'), 'b');
  writeFileSync(join(base, 'usr', 'share', 'doc'), 'doc');

  await withOverlay({ lowerdirs: [base], upperdir: upper, workdir: work }, (m) => {
    rmSync(join(m, 'etc', 'passwd')); // whiteout
    writeFileSync(join(m, 'etc', 'hosts'), 'changed hosts\n'); // copy-up
    rmSync(join(m, 'var', 'cache'), { recursive: true }); // whiteout of a dir…
    mkdirSync(join(m, 'var', 'cache')); // …made again: opaque
    writeFileSync(join(m, 'var', 'cache', 'fresh'), 'fresh');
    mkdirSync(join(m, 'app'));
    writeFileSync(join(m, 'app', 'bin'), 'binary');
    linkSync(join(m, 'app', 'bin'), join(m, 'app', 'bin-link'));
    symlinkSync('bin', join(m, 'app', 'sym'));
    writeFileSync(join(m, 'app', 'data'), 'data');
    execFileSync('setfattr', [
      '-n',
      'user.note',
      '-v',
      `0x${BINARY.toString('hex')}`,
      join(m, 'app', 'data'),
    ]);
    chownSync(join(m, 'app', 'bin'), 3_000_000, 1234); // > 0o7777777: a pax uid
    // After the chown, which drops file capabilities.
    execFileSync('setfattr', [
      '-n',
      'security.capability',
      '-v',
      `0x${CAPABILITY.toString('hex')}`,
      join(m, 'app', 'bin'),
    ]);
    writeFileSync(join(m, 'app', `${'long-name-'.repeat(20)}é`), 'long');
    utimesSync(join(m, 'app', 'bin'), 1_600_000_000, 1_600_000_000);
  });
  expect(mountsUnder(root)).toEqual([]);
  return { root, base, upper };
}

describe('diffLayer', () => {
  it('writes the changes with whiteouts, opaque dirs, hard links, xattrs, and not the unchanged files', async () => {
    const { upper } = await containerUpper();
    const entries = await readTar(diffLayer(upper));
    const byName = new Map(entries.map((e) => [e.header.name, e]));
    const names = entries.map((e) => e.header.name);
    expect(names).toEqual([
      'app/',
      'app/bin',
      'app/bin-link',
      'app/data',
      `app/${'long-name-'.repeat(20)}é`,
      'app/sym',
      'etc/',
      'etc/hosts',
      'etc/.wh.passwd',
      'var/',
      'var/cache/',
      'var/cache/.wh..wh..opq',
      'var/cache/fresh',
    ]);
    expect(names).not.toContain('etc/unchanged');
    expect(byName.get('etc/hosts')!.data.toString()).toBe('changed hosts\n');
    expect(byName.get('etc/.wh.passwd')!.header).toMatchObject({ type: 'file', size: 0 });
    expect(byName.get('app/bin-link')!.header).toMatchObject({ type: 'link', linkname: 'app/bin' });
    expect(byName.get('app/sym')!.header).toMatchObject({ type: 'symlink', linkname: 'bin' });
    const bin = byName.get('app/bin')!.header;
    expect(bin).toMatchObject({ gid: 1234, size: 6 });
    expect((bin.pax as Record<string, string> | undefined)?.uid).toBe('3000000'); // tar-stream leaves a pax uid in .pax
    expect(bin.mtime!.getTime()).toBe(1_600_000_000_000);
    expect(Object.keys(bin.pax ?? {})).toContain('SCHILY.xattr.security.capability');
    // Nothing of overlayfs's own bookkeeping.
    for (const e of entries) expect(Object.keys(e.header.pax ?? {}).join()).not.toMatch(/overlay/);
  });

  it('reads fuse-overlayfs’s own opaque marks (fuseOverlay): one OCI opaque marker, nothing else of them', async () => {
    // An upper dir as fuse-overlayfs 1.10 leaves it (seen on this machine) where a directory was
    // removed and made again: the xattr, a `.wh..wh..opq` file and a `.wh..opq` whiteout.
    const upper = join(tempDir(), 'upper');
    mkdirSync(join(upper, 'd'), { recursive: true });
    execFileSync('setfattr', ['-n', 'user.fuseoverlayfs.opaque', '-v', 'y', join(upper, 'd')]);
    writeFileSync(join(upper, 'd', '.wh..wh..opq'), '');
    execFileSync('mknod', [join(upper, 'd', '.wh..opq'), 'c', '0', '0']);
    writeFileSync(join(upper, 'd', 'new'), 'new');
    execFileSync('mknod', [join(upper, 'gone'), 'c', '0', '0']);
    execFileSync('setfattr', ['-n', 'user.fuseoverlayfs.origin', '-v', 'x', join(upper, 'd', 'new')]);
    const entries = await readTar(diffLayer(upper, { userxattr: true, fuseOverlay: true }));
    expect(entries.map((e) => e.header.name)).toEqual(['d/', 'd/.wh..wh..opq', 'd/new', '.wh.gone']);
    for (const e of entries) expect(Object.keys(e.header.pax ?? {}).join()).not.toMatch(/fuseoverlayfs/);
    // An upper of the kernel's overlay: the same names and xattr are no marks (a container could
    // have made them), and a `.wh.` name is refused as before.
    await expect(readTar(diffLayer(upper, { userxattr: true }))).rejects.toThrow(
      /cannot be stored in an OCI layer/,
    );
  });

  it('keeps binary xattrs, owners and hard links byte for byte (read back by GNU tar)', async () => {
    const { upper, root } = await containerUpper();
    const tarFile = join(root, 'layer.tar');
    writeFileSync(tarFile, await collect(diffLayer(upper)));
    const out = join(root, 'out');
    mkdirSync(out);
    execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', tarFile, '-C', out]);
    const backend = xattrBackend();
    expect(backend.get(join(out, 'app', 'bin'), 'security.capability')).toEqual(CAPABILITY);
    expect(backend.get(join(out, 'app', 'data'), 'user.note')).toEqual(BINARY);
    const { statSync, lstatSync } = await import('node:fs');
    expect(statSync(join(out, 'app', 'bin')).ino).toBe(statSync(join(out, 'app', 'bin-link')).ino);
    expect(lstatSync(join(out, 'app', 'bin')).uid).toBe(3_000_000);
    expect(existsSync(join(out, 'etc', '.wh.passwd'))).toBe(true);
    expect(existsSync(join(out, 'var', 'cache', '.wh..wh..opq'))).toBe(true);
    const listing = execFileSync('tar', ['-tvf', tarFile], { encoding: 'utf8' });
    expect(listing).toContain('app/bin-link link to app/bin');
  });

  it('gives the same bytes with the getfattr fallback as with @box/sys', async () => {
    const { upper } = await containerUpper();
    forceXattrBackend('sys');
    const viaSys = await collect(diffLayer(upper));
    forceXattrBackend('tools');
    const viaTools = await collect(diffLayer(upper));
    expect(viaTools.equals(viaSys)).toBe(true);
  });

  it('streams large files and handles an empty upper', async () => {
    const root = tempDir();
    const upper = join(root, 'upper');
    mkdirSync(upper);
    expect((await collect(diffLayer(upper))).equals(Buffer.alloc(1024))).toBe(true);
    const big = Buffer.alloc(3 * 1024 * 1024 + 7, 1);
    big.write('end', big.length - 3);
    writeFileSync(join(upper, 'big'), big);
    writeFileSync(join(upper, 'small'), 'small');
    const entries = await readTar(diffLayer(upper));
    expect(entries.map((e) => [e.header.name, e.data.length])).toEqual([
      ['big', big.length],
      ['small', 5],
    ]);
    expect(entries[0]!.data.equals(big)).toBe(true);
  });

  it('refuses uppers it cannot express', async () => {
    const root = tempDir();
    const upper = join(root, 'upper');
    mkdirSync(join(upper, 'moved'), { recursive: true });
    execFileSync('setfattr', ['-n', 'trusted.overlay.redirect', '-v', '/old', join(upper, 'moved')]);
    await expect(collect(diffLayer(upper))).rejects.toThrow(/redirect/);
    rmSync(join(upper, 'moved'), { recursive: true });
    writeFileSync(join(upper, '.wh.literal'), '');
    await expect(collect(diffLayer(upper))).rejects.toMatchObject({ code: 'EUNIONFSUNSUPPORTED' });
    await expect(collect(diffLayer(join(root, 'missing')))).rejects.toMatchObject({ code: 'EUNIONFSIO' });
    expect(() => diffLayer('relative')).toThrow(/absolute/);
  });

  it('diffs 10k changed files, the same on one thread and with the built workers', async () => {
    const root = tempDir();
    const upper = join(root, 'upper');
    for (let d = 0; d < 100; d++) {
      const dir = join(upper, `d${String(d).padStart(3, '0')}`);
      mkdirSync(dir, { recursive: true });
      for (let f = 0; f < 100; f++) writeFileSync(join(dir, `f${f}`), `file ${d}/${f}\n`.repeat(f));
    }
    linkSync(join(upper, 'd050', 'f1'), join(upper, 'd099', 'zz-link'));
    writeFileSync(join(upper, 'd070', 'large'), Buffer.alloc(200_000, 7));
    const hash = async (s: NodeJS.ReadableStream) => {
      const h = createHash('sha256');
      let count = 0;
      for await (const chunk of s) {
        h.update(chunk as Buffer);
        count += (chunk as Buffer).length;
      }
      return `${h.digest('hex')}:${count}`;
    };
    const sequential = await hash(diffLayer(upper, { parallel: false }));
    const entries = await readTar(diffLayer(upper));
    expect(entries).toHaveLength(100 + 10_000 + 2);
    expect(entries.find((e) => e.header.name === 'd099/zz-link')!.header).toMatchObject({
      type: 'link',
      linkname: 'd050/f1',
    });
    const dist = new URL('../dist/index.js', import.meta.url);
    if (existsSync(dist)) {
      // The built package has dist/diff-worker.js, so big diffs go through the workers there.
      const built = (await import(dist.href)) as typeof import('./index.js');
      expect(await hash(built.diffLayer(upper))).toBe(sequential);
      expect(await hash(built.diffLayer(upper))).toBe(sequential);
    }
    expect(readFileSync(join(upper, 'd050', 'f1'), 'utf8')).toBe('file 50/1\n');
  }, 60_000);
});
