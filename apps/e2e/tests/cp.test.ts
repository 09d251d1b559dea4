/**
 * `box cp` against a hostile container: symlinks to host paths, ".." and a container
 * that swaps a directory and a symlink while box copies. The host's files must never
 * be read or written; the copies land inside the container.
 */
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { box, boxAsync, boxOk, type Result, useBoxRoot } from '../helpers/box.js';

const env = useBoxRoot({ removeContainers: true });

/** A host directory the container points its symlinks at, with a canary file. */
let hostDir: string;
/** Local files to copy, and where copies out go. */
let local: string;

beforeEach(() => {
  hostDir = mkdtempSync(join(tmpdir(), 'box-cp-host-'));
  writeFileSync(join(hostDir, 'canary'), 'host\n');
  local = mkdtempSync(join(tmpdir(), 'box-cp-local-'));
  writeFileSync(join(local, 'file.txt'), 'payload\n');
  mkdirSync(join(local, 'dir/sub'), { recursive: true });
  writeFileSync(join(local, 'dir/a'), 'a\n');
  writeFileSync(join(local, 'dir/sub/b'), 'b\n');
});

afterEach(() => {
  rmSync(hostDir, { recursive: true, force: true });
  rmSync(local, { recursive: true, force: true });
});

function expectHostUntouched(): void {
  expect(readdirSync(hostDir)).toEqual(['canary']);
  expect(readFileSync(join(hostDir, 'canary'), 'utf8')).toBe('host\n');
}

const ok = (args: string[]) => boxOk(env.root, args);

/** Runs `setup` once in a new container `name`, which then sleeps; stopped unless `running`. */
function container(name: string, setup: string, running: boolean): void {
  ok([
    'run',
    '-d',
    '--name',
    name,
    'busybox',
    'sh',
    '-c',
    `[ -e /done ] || { ${setup}; touch /done; }; exec sleep 60`,
  ]);
  // Set-up done once /done exists.
  for (let i = 0; i < 100 && box(env.root, ['exec', name, 'test', '-e', '/done']).code !== 0; i++);
  if (!running) ok(['stop', '-t', '0', name]);
}

/** A file's content in the container (started again if stopped). */
function cat(name: string, path: string): string {
  return box(env.root, ['exec', name, 'cat', path]).stdout;
}

describe.each([
  ['running', true],
  ['stopped', false],
])('box cp into a %s container', (_, running) => {
  it('never writes through a container symlink to the host', () => {
    container(
      'in',
      [
        `mkdir -p ${hostDir}`,
        `ln -s ${hostDir} /tmp/evil`,
        `ln -s ${hostDir}/canary /tmp/file.txt`,
        `ln -s ${hostDir} /tmp/dir`,
      ].join('; '),
      running,
    );
    const copies = [
      // Through a symlinked directory: the container's own directory of that name.
      [join(local, 'file.txt'), 'in:/tmp/evil/x'],
      [join(local, 'file.txt'), 'in:/tmp/evil'],
      [join(local, 'dir'), 'in:/tmp/evil'],
      [join(local, 'dir'), 'in:/tmp/evil/'],
      // A symlink where the copy goes is replaced, not followed.
      [join(local, 'file.txt'), 'in:/tmp/'],
      [join(local, 'dir'), 'in:/tmp/'],
      // ".." cannot climb out of the container.
      [join(local, 'file.txt'), `in:/../../../..${hostDir}/dotdot`],
    ];
    for (const [from, to] of copies) {
      const r = box(env.root, ['cp', from!, to!]);
      expectHostUntouched();
      expect(r, `box cp ${from} ${to}`).toMatchObject({ code: 0, stderr: '' });
    }

    if (!running) ok(['start', 'in']);
    expect(cat('in', `${hostDir}/x`)).toBe('payload\n');
    expect(cat('in', `${hostDir}/file.txt`)).toBe('payload\n');
    expect(cat('in', `${hostDir}/dir/sub/b`)).toBe('b\n');
    expect(cat('in', `${hostDir}/dotdot`)).toBe('payload\n');
    expect(cat('in', '/tmp/file.txt')).toBe('payload\n');
    expect(cat('in', '/tmp/dir/a')).toBe('a\n');
    expect(ok(['exec', 'in', 'sh', '-c', 'test -L /tmp/file.txt || test -L /tmp/dir || echo replaced'])).toBe(
      'replaced',
    );
    expectHostUntouched();
  });

  it('refuses a destination whose directory is missing in the container, with one line and exit 125', () => {
    container('in', `ln -s ${hostDir} /tmp/evil`, running);
    // /tmp/evil leads to the container's own (missing) directory of that name.
    const r = box(env.root, ['cp', join(local, 'file.txt'), 'in:/tmp/evil/x']);
    expect(r.code).toBe(125);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('/tmp/evil');
    expectHostUntouched();
  });
});

describe.each([
  ['running', true],
  ['stopped', false],
])('box cp out of a %s container', (_, running) => {
  it('never reads the host through a container symlink or ".."', () => {
    container(
      'out',
      [`ln -s ${hostDir}/canary /leak`, 'mkdir /data', `ln -s ${hostDir}/canary /data/leak`].join('; '),
      running,
    );
    // The link leads to the container's own path, which does not exist.
    const missing = box(env.root, ['cp', 'out:/leak', join(local, 'leak')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/Could not find the file \/leak in container out/);
    const dotdot = box(env.root, ['cp', `out:/../../../..${hostDir}/canary`, join(local, 'dotdot')]);
    expect(dotdot.code).toBe(1);
    expect(existsSync(join(local, 'leak'))).toBe(false);
    expect(existsSync(join(local, 'dotdot'))).toBe(false);
    // A directory's symlinks are copied as symlinks.
    ok(['cp', 'out:/data', join(local, 'data')]);
    expect(lstatSync(join(local, 'data/leak')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(local, 'data/leak'))).toBe(join(hostDir, 'canary'));
    expectHostUntouched();
  });

  it('copies the container file a symlink leads to inside the container, not the host one', () => {
    container(
      'out',
      [`mkdir -p ${hostDir}`, `echo container > ${hostDir}/canary`, `ln -s ${hostDir}/canary /leak`].join(
        '; ',
      ),
      running,
    );
    ok(['cp', 'out:/leak', join(local, 'leak')]);
    ok(['cp', `out:/../../..${hostDir}/canary`, join(local, 'dotdot')]);
    expect(readFileSync(join(local, 'leak'), 'utf8')).toBe('container\n');
    expect(readFileSync(join(local, 'dotdot'), 'utf8')).toBe('container\n');
    expectHostUntouched();
  });
});

describe('box cp against a container that swaps a directory and a symlink', () => {
  it('never writes or reads the host directory', { timeout: 240_000 }, async () => {
    // /tmp/d flips between the container's directory (holding `canary`) and a symlink to
    // the host directory, as fast as the shell can.
    ok([
      'run',
      '-d',
      '--name',
      'race',
      'busybox',
      'sh',
      '-c',
      [
        'mkdir /tmp/d',
        'echo container > /tmp/d/canary',
        `while true; do mv /tmp/d /tmp/d.real; ln -s ${hostDir} /tmp/d; rm /tmp/d; mv /tmp/d.real /tmp/d; done`,
      ].join('; '),
    ]);
    // 26 rounds of two copies in and two out, run side by side: 104 copies.
    const rounds = 26;
    const results: Result[] = [];
    for (let j = 0; j < rounds; j++) {
      results.push(
        ...(await Promise.all([
          boxAsync(env.root, ['cp', join(local, 'file.txt'), 'race:/tmp/d/']).done,
          boxAsync(env.root, ['cp', join(local, 'dir'), `race:/tmp/d/dir${j}`]).done,
          boxAsync(env.root, ['cp', 'race:/tmp/d/canary', join(local, `out${j}`)]).done,
          boxAsync(env.root, ['cp', 'race:/tmp/d', join(local, `outdir${j}`)]).done,
        ])),
      );
      expectHostUntouched();
    }
    // Each copy either found the container's directory or refused with one line.
    for (const r of results) {
      if (r.code !== 0) {
        // 1: the source was not found (copy out), 125: the destination was refused (copy in).
        expect([1, 125]).toContain(r.code);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
      }
    }
    expect(results.filter((r) => r.code === 0).length).toBeGreaterThan(0);
    for (let j = 0; j < rounds; j++) {
      for (const out of [`out${j}`, `outdir${j}/canary`]) {
        if (existsSync(join(local, out))) expect(readFileSync(join(local, out), 'utf8')).toBe('container\n');
      }
    }
    expectHostUntouched();
  });
});
