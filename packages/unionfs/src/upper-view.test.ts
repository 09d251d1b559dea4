import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { layerChanges } from './changes.js';
import { diffLayer } from './diff.js';
import { cleanupTemp, collect, tempDir } from './test-utils.js';
import { forceXattrBackend } from './xattr.js';

afterAll(cleanupTemp);

/**
 * A container at work on its upper dir, the way an attacker would race box: `d` is a real
 * directory (so a walk lists it as one) and, a moment later, a symlink to a host directory.
 */
function racedUpper(): { upper: string; secret: string; writer: ChildProcess } {
  const root = tempDir();
  const upper = join(root, 'upper');
  const host = join(root, 'host');
  mkdirSync(join(upper, 'd'), { recursive: true });
  writeFileSync(join(upper, 'd', 'own'), 'container');
  mkdirSync(host);
  const secret = 'host-secret-file';
  writeFileSync(join(host, secret), 'the host');
  // Files sorted before `d` keep the walk busy between listing `d` and going into it.
  for (let i = 0; i < 500; i++) writeFileSync(join(upper, `a${i}`), 'x');
  const swap = [
    'import os, sys, time',
    'os.chdir(sys.argv[1])',
    'while True:',
    '    os.rename("d", "d.real"); os.symlink(sys.argv[2], "d"); time.sleep(0.001)',
    '    os.unlink("d"); os.rename("d.real", "d"); time.sleep(0.001)',
  ].join('\n');
  const writer = spawn('python3', ['-c', swap, upper, host], { stdio: 'ignore' });
  return { upper, secret, writer };
}

const stop = (writer: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (writer.exitCode !== null || writer.signalCode !== null) resolve();
    else {
      writer.once('exit', () => resolve());
      writer.kill('SIGKILL');
    }
  });

const openFds = () =>
  readdirSync('/proc/self/fd').map((fd) => `${fd} ${safeReadlink(`/proc/self/fd/${fd}`)}`);
const safeReadlink = (path: string) => {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
};

describe('the upper dir of a running container', () => {
  let writer: ChildProcess | undefined;
  afterEach(async () => {
    if (writer) await stop(writer);
    writer = undefined;
    forceXattrBackend(undefined);
  });

  for (const backend of ['sys', 'tools'] as const) {
    it(`never gives a layer (${backend} xattrs) with a host file from a directory swapped for a symlink`, async () => {
      forceXattrBackend(backend);
      const raced = racedUpper();
      writer = raced.writer;
      let layers = 0;
      const start = Date.now();
      for (let round = 0; round < 200 && Date.now() - start < 4000; round++) {
        // A diff that meets the swap may fail (ELOOP: it would have gone through the link).
        const layer = await collect(diffLayer(raced.upper, { parallel: false })).catch(() => undefined);
        if (!layer) continue;
        layers++;
        expect(layer.includes(Buffer.from(raced.secret))).toBe(false);
        expect(layer.includes(Buffer.from('the host'))).toBe(false);
      }
      expect(layers).toBeGreaterThan(0);
    });
  }

  it('never lists a host file as a change from a directory swapped for a symlink', async () => {
    const raced = racedUpper();
    writer = raced.writer;
    let lists = 0;
    const start = Date.now();
    for (let round = 0; round < 2000 && Date.now() - start < 3000; round++) {
      let changes: ReturnType<typeof layerChanges>;
      try {
        changes = layerChanges(raced.upper, []);
      } catch (error) {
        expect(String(error)).toContain(raced.upper);
        expect(String(error)).not.toContain('/proc/');
        continue;
      }
      lists++;
      expect(changes.map((c) => c.path).filter((p) => p.includes(raced.secret))).toEqual([]);
      // Let the writer run between walks.
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(lists).toBeGreaterThan(0);
  });

  it('never waits on a FIFO put in the place of a file it listed', async () => {
    const root = tempDir();
    const upper = join(root, 'upper');
    mkdirSync(upper);
    for (let i = 0; i < 50; i++) writeFileSync(join(upper, `a${i}`), 'x');
    writeFileSync(join(upper, 'z'), 'file');
    // The container: `z` a regular file, then a FIFO, over and over. When the FIFO has a reader
    // (a write-only open without blocking succeeds only then) that still holds it a while later
    // (a write does not fail with EPIPE), that reader was blocked in its open: the writer says so
    // in `blocked` and lets it go, so that a walk that waits fails this test instead of hanging it.
    const swap = [
      'import os, sys, time',
      'os.chdir(sys.argv[1])',
      'while True:',
      '    open("t", "w").write("file"); os.rename("t", "z"); time.sleep(0.0005)',
      '    os.mkfifo("t"); os.rename("t", "z"); time.sleep(0.0005)',
      '    try:',
      '        fd = os.open("z", os.O_WRONLY | os.O_NONBLOCK)',
      '    except OSError:',
      '        continue',
      '    time.sleep(0.2)',
      '    try:',
      '        os.write(fd, b"x")',
      '        open(sys.argv[2], "a").write("blocked\\n")',
      '    except OSError:',
      '        pass',
      '    os.close(fd)',
    ].join('\n');
    const marker = join(root, 'blocked');
    writer = spawn('python3', ['-c', swap, upper, marker], { stdio: 'ignore' });
    let layers = 0;
    const errors = new Set<string>();
    const start = Date.now();
    for (let round = 0; round < 3000 && Date.now() - start < 4000; round++) {
      const layer = await collect(diffLayer(upper, { parallel: false })).catch((error: unknown) => {
        errors.add(String(error).replace(upper, 'UPPER'));
        return undefined;
      });
      if (layer) layers++;
    }
    expect(existsSync(marker) ? readFileSync(marker, 'utf8') : '').toBe('');
    // The race was run: some walks met the FIFO (and said so), some the file; the writer's
    // temporary `t` may be gone by the time it is read.
    expect(errors).toContain(
      'UnionfsError: UPPER/z was replaced while it was read; diff a stopped container',
    );
    for (const error of errors)
      expect(error).toMatch(/UPPER\/z was replaced while it was read|UPPER\/t: ENOENT$/);
    expect(layers).toBeGreaterThan(0);
  });

  it('leaves no fd and no mount behind, and names the upper dir when the walk fails', async () => {
    const upper = join(tempDir(), 'upper');
    mkdirSync(join(upper, 'a'), { recursive: true });
    const before = openFds();
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
    await collect(diffLayer(upper, { parallel: false }));
    layerChanges(upper, []);
    // A name that is not UTF-8: no layer can hold it.
    writeFileSync(Buffer.concat([Buffer.from(`${upper}/a/`), Buffer.from([0xff, 0xfe])]), '');
    const error = await collect(diffLayer(upper, { parallel: false })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'EUNIONFSUNSUPPORTED', path: `${upper}/a` });
    expect(String(error)).not.toContain('/proc/');
    expect(openFds()).toEqual(before);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).toBe(mounts);
  });
});
