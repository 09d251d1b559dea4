import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
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
