import { spawnSync } from 'node:child_process';
import {
  chownSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyFromRoot, copyIntoRoot } from './copy.js';

let base: string;
let root: string;
let outside: string;
let src: string;

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'box-copy-'));
  root = join(base, 'root');
  outside = join(base, 'outside');
  src = join(base, 'src');
  for (const d of [join(root, 'tmp'), outside, src]) mkdirSync(d, { recursive: true });
  writeFileSync(join(outside, 'canary'), 'outside\n');
});

afterEach(() => {
  rmSync(base, { recursive: true, force: true });
});

function expectOutsideUntouched(): void {
  expect(readdirSync(outside)).toEqual(['canary']);
  expect(readFileSync(join(outside, 'canary'), 'utf8')).toBe('outside\n');
}

/** Everything `cp -a` keeps, for each entry under `dir`. */
function describeTree(dir: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const walk = (rel: string) => {
    const st = lstatSync(join(dir, rel), { bigint: true });
    out[rel] = {
      mode: st.mode,
      uid: st.uid,
      gid: st.gid,
      mtimeNs: st.isDirectory() ? undefined : st.mtimeNs,
      nlink: st.isDirectory() ? undefined : st.nlink,
      link: st.isSymbolicLink() ? readlinkSync(join(dir, rel)) : undefined,
      data: st.isFile() ? readFileSync(join(dir, rel), 'utf8') : undefined,
    };
    if (!st.isDirectory()) return;
    for (const e of readdirSync(join(dir, rel), { encoding: 'buffer' })) {
      if (e.equals(RAW_NAME)) {
        out[`${rel}/<raw>`] = readFileSync(Buffer.concat([Buffer.from(`${join(dir, rel)}/`), e]), 'utf8');
      } else {
        walk(join(rel, e.toString()));
      }
    }
  };
  walk('.');
  return out;
}

const RAW_NAME = Buffer.from([0x6e, 0xff, 0x6e]);

function makeTree(dir: string): void {
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'a'), 'a\n', { mode: 0o4751 });
  chownSync(join(dir, 'a'), 1234, 5678);
  // chown clears set-user-ID; the copy must keep it by setting the mode last.
  spawnSync('chmod', ['4751', join(dir, 'a')]);
  linkSync(join(dir, 'a'), join(dir, 'sub/hard'));
  symlinkSync(join(outside, 'canary'), join(dir, 'sub/abs'));
  lchownSync(join(dir, 'sub/abs'), 42, 43);
  lutimesSync(join(dir, 'sub/abs'), 1000, 2000);
  spawnSync('mkfifo', ['-m', '0620', join(dir, 'sub/fifo')]);
  // A name that is not UTF-8.
  writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), RAW_NAME]), 'raw\n');
  utimesSync(join(dir, 'a'), 123.456, 789.5);
}

describe('copyIntoRoot', () => {
  it('keeps what cp -a keeps: modes, owners, times, symlinks, hard links, fifos', () => {
    makeTree(join(src, 'tree'));
    copyIntoRoot(root, join(src, 'tree'), '/tmp');
    const tree = describeTree(join(src, 'tree'));
    expect(tree).toMatchObject({
      a: { mode: 0o104751n, uid: 1234n, gid: 5678n, mtimeNs: 789_500_000_000n, nlink: 2n },
      'sub/abs': { uid: 42n, gid: 43n, mtimeNs: 2_000_000_000_000n, link: join(outside, 'canary') },
      'sub/fifo': { mode: 0o010620n },
      './<raw>': 'raw\n',
    });
    expect(describeTree(join(root, 'tmp/tree'))).toEqual(tree);
    expect(lstatSync(join(root, 'tmp/tree/a')).ino).toBe(lstatSync(join(root, 'tmp/tree/sub/hard')).ino);
    // and back out again, to a new name: the same, but for the set-user-ID bit (a copy out of
    // a container never makes a set-id file on the host)
    copyFromRoot(root, '/tmp/tree', join(base, 'back'));
    const back = describeTree(join(base, 'back'));
    expect(back.a).toMatchObject({ mode: 0o100751n });
    expect(back['sub/hard']).toMatchObject({ mode: 0o100751n });
    expect({ ...back, a: tree.a, 'sub/hard': tree['sub/hard'] }).toEqual(tree);
    expectOutsideUntouched();
  });

  it('gives everything it makes one owner when asked, links and directories too; modes stay', () => {
    makeTree(join(src, 'tree'));
    copyIntoRoot(root, join(src, 'tree'), '/tmp', { owner: { uid: 700, gid: 701 } });
    const inside = describeTree(join(root, 'tmp/tree'));
    for (const [rel, entry] of Object.entries(inside)) {
      if (rel.endsWith('<raw>')) continue;
      expect({ rel, ...(entry as object) }).toMatchObject({ rel, uid: 700n, gid: 701n });
    }
    // Set after the owner: chown's clearing of set-user-ID does not lose it.
    expect(inside.a).toMatchObject({ mode: 0o104751n });
    copyFromRoot(root, '/tmp/tree', join(base, 'out'), { owner: { uid: 0, gid: 0 } });
    expect(describeTree(join(base, 'out'))['sub/abs']).toMatchObject({ uid: 0n, gid: 0n });
    expectOutsideUntouched();
  });

  it('makes no device node and no set-id file on the host when copying out', () => {
    mkdirSync(join(root, 'dev-out'), { recursive: true });
    expect(spawnSync('mknod', ['-m', '666', join(root, 'dev-out/disk'), 'b', '7', '0']).status).toBe(0);
    writeFileSync(join(root, 'dev-out/suid'), 'x', { mode: 0o6755 });
    spawnSync('chmod', ['6755', join(root, 'dev-out/suid')]);
    copyFromRoot(root, '/dev-out', join(base, 'dev-out'));
    expect(readdirSync(join(base, 'dev-out'))).toEqual(['suid']);
    expect(lstatSync(join(base, 'dev-out/suid')).mode & 0o7777).toBe(0o755);
  });

  it('resolves symlinks and ".." inside the root and replaces a symlink where it writes', () => {
    writeFileSync(join(src, 'canary'), 'copied\n');
    mkdirSync(join(src, 'dir'));
    writeFileSync(join(src, 'dir/canary'), 'in dir\n');
    symlinkSync(outside, join(root, 'tmp/evil'));
    symlinkSync(join(outside, 'canary'), join(root, 'tmp/canary'));
    mkdirSync(join(root, outside), { recursive: true });
    copyIntoRoot(root, join(src, 'canary'), '/tmp/evil/'); // root/outside/canary
    copyIntoRoot(root, join(src, 'canary'), '/tmp'); // replaces root/tmp/canary (a symlink)
    copyIntoRoot(root, join(src, 'canary'), `/../../..${outside}/dotdot`);
    symlinkSync(outside, join(root, 'tmp/dir'));
    copyIntoRoot(root, join(src, 'dir'), '/tmp'); // replaces root/tmp/dir
    expect(readFileSync(join(root, outside, 'canary'), 'utf8')).toBe('copied\n');
    expect(readFileSync(join(root, outside, 'dotdot'), 'utf8')).toBe('copied\n');
    expect(lstatSync(join(root, 'tmp/canary')).isFile()).toBe(true);
    expect(readFileSync(join(root, 'tmp/dir/canary'), 'utf8')).toBe('in dir\n');
    expectOutsideUntouched();
  });

  it('refuses a missing source or destination directory, a file over a directory, and the host root', () => {
    writeFileSync(join(src, 'f'), 'f');
    mkdirSync(join(root, 'tmp/f'));
    mkdirSync(join(root, 'tmp/f/f'));
    expect(() => copyIntoRoot(root, join(src, 'nope'), '/tmp')).toThrow(
      expect.objectContaining({ name: 'CopyError', code: 'ENOSRC' }),
    );
    expect(() => copyIntoRoot(root, join(src, 'f'), '/nope/f')).toThrow(
      expect.objectContaining({ code: 'ENODEST' }),
    );
    writeFileSync(join(root, 'tmp/file'), 'kept');
    expect(() => copyIntoRoot(root, join(src, 'f'), '/tmp/file/')).toThrow(
      expect.objectContaining({ code: 'ENODEST' }),
    );
    expect(readFileSync(join(root, 'tmp/file'), 'utf8')).toBe('kept');
    symlinkSync(outside, join(root, 'evil'));
    expect(() => copyIntoRoot(root, join(src, 'f'), '/evil/x')).toThrow(
      expect.objectContaining({ code: 'ENODEST' }),
    );
    expect(() => copyIntoRoot(root, join(src, 'f'), '/tmp/f')).toThrow(
      expect.objectContaining({ code: 'ECONFLICT' }),
    );
    expect(() => copyIntoRoot('/', join(src, 'f'), join(base, 'x'))).toThrow(
      expect.objectContaining({ code: 'EROOT' }),
    );
    expect(() => copyFromRoot(root, '/evil/canary', join(base, 'x'))).toThrow(
      expect.objectContaining({ code: 'ENOSRC' }),
    );
    expectOutsideUntouched();
  });
});
