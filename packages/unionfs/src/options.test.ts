import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isUnionfsError } from './errors.js';
import { linkLayer, MOUNT_DATA_MAX, overlayMountData, pruneLayerLinks, unlinkLayer } from './options.js';
import { mountOverlay, unmountOverlay } from './overlay.js';
import { cleanupTemp, mountsUnder, tempDir } from './test-utils.js';

afterAll(cleanupTemp);

/** n layer dirs with docker-like long paths under root/<64 hex>/diff, each holding layer<i>.txt. */
function makeLayers(root: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const dir = join(root, `${i.toString(16).padStart(64, '0')}`, 'diff');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `layer${i}.txt`), `layer ${i}`);
    writeFileSync(join(dir, 'who'), `layer ${i}`);
    return dir;
  });
}

function expectCode(fn: () => unknown, code: string, message?: RegExp) {
  try {
    fn();
  } catch (error) {
    expect(isUnionfsError(error), String(error)).toBe(true);
    expect((error as { code: string }).code).toBe(code);
    if (message) expect((error as Error).message).toMatch(message);
    return;
  }
  throw new Error('expected an error');
}

describe('overlayMountData', () => {
  it('gives absolute lowerdirs for 1 and 10 layers, top first', () => {
    const one = overlayMountData({ lowerdirs: ['/l0'], upperdir: '/u', workdir: '/w', diffable: false });
    expect(one).toEqual({ data: 'lowerdir=/l0,upperdir=/u,workdir=/w' });
    const lowers = Array.from({ length: 10 }, (_, i) => `/var/lib/box/layers/${i}/diff`);
    const ten = overlayMountData({
      lowerdirs: lowers,
      upperdir: '/c/upper',
      workdir: '/c/work',
      userxattr: true,
    });
    expect(ten.cwd).toBeUndefined();
    expect(ten.data).toMatch(
      new RegExp(`^lowerdir=${lowers.join(':')},upperdir=/c/upper,workdir=/c/work,userxattr`),
    );
    const ro = overlayMountData({ lowerdirs: ['/a/', '/b'], readonly: true });
    expect(ro.data).toBe('lowerdir=/a:/b');
  });

  it('turns off index, redirect_dir and metacopy where the kernel has them', () => {
    const params = readdirSync('/sys/module/overlay/parameters');
    const { data } = overlayMountData({ lowerdirs: ['/l'], upperdir: '/u', workdir: '/w' });
    for (const p of ['index', 'redirect_dir', 'metacopy']) {
      expect(data.includes(`,${p}=off`)).toBe(params.includes(p));
    }
  });

  it('rejects bad paths and options clearly', () => {
    expectCode(() => overlayMountData({ lowerdirs: [], upperdir: '/u', workdir: '/w' }), 'EUNIONFSOPTIONS');
    expectCode(
      () => overlayMountData({ lowerdirs: ['rel'], upperdir: '/u', workdir: '/w' }),
      'EUNIONFSPATH',
      /absolute/,
    );
    expectCode(
      () => overlayMountData({ lowerdirs: ['/a:b'], upperdir: '/u', workdir: '/w' }),
      'EUNIONFSPATH',
      /":"/,
    );
    expectCode(
      () => overlayMountData({ lowerdirs: ['/a,b'], upperdir: '/u', workdir: '/w' }),
      'EUNIONFSPATH',
      /","/,
    );
    expectCode(
      () => overlayMountData({ lowerdirs: ['/a\\b'], upperdir: '/u', workdir: '/w' }),
      'EUNIONFSPATH',
    );
    expectCode(
      () => overlayMountData({ lowerdirs: ['/a'], upperdir: '/u,x', workdir: '/w' }),
      'EUNIONFSPATH',
    );
    expectCode(
      () => overlayMountData({ lowerdirs: ['/a'], readonly: true }),
      'EUNIONFSOPTIONS',
      /two lowerdirs/,
    );
    expectCode(
      () => overlayMountData({ lowerdirs: ['/a', '/b'], readonly: true, upperdir: '/u' }),
      'EUNIONFSOPTIONS',
    );
    expectCode(() => overlayMountData({ lowerdirs: ['/a'], upperdir: '/u' }), 'EUNIONFSOPTIONS', /workdir/);
    expectCode(
      () => overlayMountData({ lowerdirs: ['/a'], upperdir: '/u', workdir: '/u' }),
      'EUNIONFSOPTIONS',
    );
    expectCode(
      () => overlayMountData({ lowerdirs: ['/a'], upperdir: '/u', workdir: '/u/w' }),
      'EUNIONFSOPTIONS',
    );
    expectCode(
      () => overlayMountData({ lowerdirs: ['/a', '/a/'], upperdir: '/u', workdir: '/w' }),
      'EUNIONFSOPTIONS',
    );
    expectCode(
      () => overlayMountData({ lowerdirs: ['/a'], upperdir: '/u', workdir: '/w', extraOptions: ['x,y'] }),
      'EUNIONFSOPTIONS',
    );
    const many = Array.from({ length: 100 }, (_, i) => `/var/lib/box/overlay/${'x'.repeat(60)}${i}/diff`);
    expectCode(
      () => overlayMountData({ lowerdirs: many, upperdir: '/u', workdir: '/w' }),
      'EUNIONFSOPTIONS',
      /layersRoot/,
    );
    const tooMany = Array.from({ length: 501 }, (_, i) => `/l${i}`);
    expectCode(
      () => overlayMountData({ lowerdirs: tooMany, upperdir: '/u', workdir: '/w' }),
      'EUNIONFSOPTIONS',
      /500/,
    );
  });

  it('mounts 150 layers through short links, from the returned cwd', () => {
    const root = tempDir();
    const layers = makeLayers(root, 150);
    const lowerdirs = [...layers].reverse(); // top (149) first
    const upper = join(root, 'c', 'upper');
    const work = join(root, 'c', 'work');
    const merged = join(root, 'c', 'merged');
    for (const d of [upper, work, merged]) mkdirSync(d, { recursive: true });
    const absolute = `lowerdir=${lowerdirs.join(':')}`;
    expect(Buffer.byteLength(absolute)).toBeGreaterThan(MOUNT_DATA_MAX);

    const { data, cwd } = overlayMountData({ lowerdirs, upperdir: upper, workdir: work, layersRoot: root });
    expect(cwd).toBe(root);
    expect(Buffer.byteLength(data)).toBeLessThanOrEqual(MOUNT_DATA_MAX);
    expect(data).toMatch(/^lowerdir=l\/[A-Z2-7]{10}:l\/[A-Z2-7]{10}:/);
    expect(readdirSync(join(root, 'l'))).toHaveLength(150);
    // Links are relative (the root may move) and made once.
    const id = data.slice('lowerdir=l/'.length, 'lowerdir=l/'.length + 10);
    expect(readlinkSync(join(root, 'l', id))).toBe(`../${'95'.padStart(64, '0')}/diff`);
    expect(overlayMountData({ lowerdirs, upperdir: upper, workdir: work, layersRoot: root }).data).toBe(data);

    const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', data, merged], { cwd, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    try {
      expect(readFileSync(join(merged, 'layer0.txt'), 'utf8')).toBe('layer 0');
      expect(readFileSync(join(merged, 'layer149.txt'), 'utf8')).toBe('layer 149');
      expect(readFileSync(join(merged, 'who'), 'utf8')).toBe('layer 149');
      writeFileSync(join(merged, 'new'), 'x');
    } finally {
      unmountOverlay(merged);
    }
    expect(readFileSync(join(upper, 'new'), 'utf8')).toBe('x');

    // The same through mountOverlay (chdir, mount(2), chdir back).
    const before = process.cwd();
    rmSync(work, { recursive: true });
    mkdirSync(work);
    mountOverlay({ lowerdirs, upperdir: upper, workdir: work, layersRoot: root, target: merged });
    try {
      expect(process.cwd()).toBe(before);
      expect(readFileSync(join(merged, 'layer0.txt'), 'utf8')).toBe('layer 0');
      expect(readFileSync(join(merged, 'new'), 'utf8')).toBe('x');
    } finally {
      unmountOverlay(merged);
    }
    expect(mountsUnder(root)).toEqual([]);
  });
});

describe('linkLayer', () => {
  it('is idempotent, uses a longer id on a clash, and cleans up', () => {
    const root = tempDir();
    const [a, b] = makeLayers(root, 2) as [string, string];
    const outside = tempDir();
    const id = linkLayer(root, a);
    expect(id).toMatch(/^[A-Z2-7]{10}$/);
    expect(linkLayer(root, `${a}/`)).toBe(id);
    // Someone else's layer already holds b's id: b gets the 11-character id.
    const idB = linkLayer(root, b);
    rmSync(join(root, 'l', idB));
    symlinkSync(outside, join(root, 'l', idB));
    const longer = linkLayer(root, b);
    expect(longer).toHaveLength(11);
    expect(longer.startsWith(idB)).toBe(true);
    // An outside layer gets an absolute link.
    const idOut = linkLayer(root, outside);
    expect(readlinkSync(join(root, 'l', idOut))).toBe(outside);

    expect(unlinkLayer(root, b)).toBe(1);
    rmSync(a, { recursive: true });
    expect(pruneLayerLinks(root)).toBe(1);
    expect(existsSync(join(root, 'l', id))).toBe(false);
    expect(readdirSync(join(root, 'l')).sort()).toEqual([idB, idOut].sort());
    expect(() => linkLayer(root, join(root, 'missing'))).toThrow(/does not exist/);
  });
});
