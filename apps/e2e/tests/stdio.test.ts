/**
 * Without -t a container gets pipes for its stdout and stderr (and stdin with -i),
 * never box's own terminal or files; box copies between them and its stdio.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { boxBin, boxOk, useBoxRoot } from '../helpers/box.js';

const env = useBoxRoot({ removeContainers: true });

const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** Runs `box ARGS` under util-linux `script`: box's stdin, stdout and stderr are a pseudo-terminal. */
function inTerminal(args: string[]) {
  const command = [process.execPath, boxBin, ...args].map(quote).join(' ');
  return spawnSync('script', ['-qec', command, '/dev/null'], {
    env: { ...process.env, BOX_ROOT: env.root },
    encoding: 'utf8',
    timeout: 20_000,
  });
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'box-stdio-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `box ARGS` with stdin from a file (or /dev/null) and stdout and stderr into files. */
function withFiles(args: string[], input?: Buffer) {
  if (input) writeFileSync(join(dir, 'in'), input);
  const fds = [
    openSync(input ? join(dir, 'in') : '/dev/null', 'r'),
    openSync(join(dir, 'out'), 'w'),
    openSync(join(dir, 'err'), 'w'),
  ];
  try {
    const r = spawnSync(process.execPath, [boxBin, ...args], {
      env: { ...process.env, BOX_ROOT: env.root },
      stdio: fds,
      timeout: 20_000,
    });
    return {
      code: r.status,
      stdout: readFileSync(join(dir, 'out')),
      stderr: readFileSync(join(dir, 'err'), 'utf8'),
    };
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

const WHAT_IS_STDIO =
  'test -t 1 && echo TTY || echo NOTTY; for fd in 0 1 2; do echo "$fd=$(readlink /proc/self/fd/$fd)"; done';

// 5 MB of random bytes to stdout; their hash, what fd 1 is, and a line to stderr.
const LARGE =
  'head -c 5000000 /dev/urandom > /tmp/data; sha256sum /tmp/data >&2; readlink /proc/self/fd/1 >&2; cat /tmp/data; echo on-stderr >&2; exit 3';

function checkLarge(r: ReturnType<typeof withFiles>, code: number) {
  expect(r.code).toBe(code);
  expect(r.stdout.length).toBe(5_000_000);
  const [hashLine, fd1, last] = r.stderr.trim().split('\n');
  expect(hashLine).toBe(`${sha256(r.stdout)}  /tmp/data`);
  expect(fd1).toMatch(/^pipe:\[\d+\]$/);
  expect(last).toBe('on-stderr');
}

describe('box run without -t', () => {
  it('gives the container pipes, not the terminal box runs in', () => {
    const r = inTerminal(['run', '--rm', 'busybox', 'sh', '-c', WHAT_IS_STDIO]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('NOTTY');
    expect(r.stdout).toMatch(/0=\/dev\/null\r?\n1=pipe:\[\d+\]\r?\n2=pipe:\[\d+\]/);
  });

  it('copies large binary output intact, keeps stdout and stderr apart and the exit code', () => {
    checkLarge(withFiles(['run', '--rm', 'busybox', 'sh', '-c', LARGE]), 3);
  });

  it('-i gives the container a pipe with our input, closed at its end', () => {
    const input = Buffer.from([0, 1, 2, 255, 10, 13, 0x1b, 0x03, 0x04]);
    const r = withFiles(
      ['run', '-i', '--rm', 'busybox', 'sh', '-c', 'readlink /proc/self/fd/0 >&2; cat; exit 5'],
      input,
    );
    expect(r.code).toBe(5);
    expect(r.stdout).toEqual(input);
    expect(r.stderr).toMatch(/^pipe:\[\d+\]\n$/);
  });
});

describe('box exec without -t', () => {
  it('gives the process pipes, copies its output intact and passes its exit code on', () => {
    const id = boxOk(env.root, ['run', '-d', 'busybox', 'sleep', '1000']);
    const r = inTerminal(['exec', id, 'sh', '-c', WHAT_IS_STDIO]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('NOTTY');
    expect(r.stdout).toMatch(/0=\/dev\/null\r?\n1=pipe:\[\d+\]\r?\n2=pipe:\[\d+\]/);

    checkLarge(withFiles(['exec', id, 'sh', '-c', LARGE]), 3);

    const input = Buffer.from('hi\n\0\xff', 'latin1');
    const i = withFiles(['exec', '-i', id, 'sh', '-c', 'readlink /proc/self/fd/0 >&2; cat; exit 6'], input);
    expect(i.code).toBe(6);
    expect(i.stdout).toEqual(input);
    expect(i.stderr).toMatch(/^pipe:\[\d+\]\n$/);

    // A process left running in the background does not keep box waiting for its output.
    const started = Date.now();
    const bg = withFiles(['exec', id, 'sh', '-c', 'sleep 30 & echo started']);
    expect(bg.code).toBe(0);
    expect(bg.stdout.toString()).toBe('started\n');
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
