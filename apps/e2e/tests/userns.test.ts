import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { box, boxAsync, foreignPidNamespaceProcesses, useBoxRoot, waitFor } from '../helpers/box.js';

const env = useBoxRoot();

describe('box run --userns', () => {
  it('maps container root to an unprivileged host uid', () => {
    const r = box(env.root, [
      'run',
      '--rm',
      '--userns',
      'busybox',
      'sh',
      '-c',
      'cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/).join(' '));
    expect(lines).toEqual(['0 100000 65536', '0 100000 65536', '0', '0']);
  });

  it('runs the container process as the mapped host uid', async () => {
    const run = boxAsync(env.root, [
      'run',
      '--rm',
      '--userns',
      'busybox',
      'sh',
      '-c',
      'echo READY; sleep 30',
    ]);
    await waitFor(() => run.output().includes('READY'));
    const pids = [...foreignPidNamespaceProcesses()].filter((p) => !env.before.has(p));
    const uids = pids.map((pid) => readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)?.[1]);
    expect(uids.length).toBeGreaterThan(0);
    expect(new Set(uids)).toEqual(new Set(['100000']));
    run.child.kill('SIGTERM');
    // sleep as PID 1 ignores SIGTERM; kill it the hard way through box's own exit.
    run.child.kill('SIGKILL');
    await run.done;
    await waitFor(() => [...foreignPidNamespaceProcesses()].every((p) => env.before.has(p)));
    box(env.root, ['rm', ...readdirNames()]);
  });

  it('lets container root write its own layer; image files show as the overflow uid', () => {
    const r = box(env.root, [
      'run',
      '--rm',
      '--userns',
      'busybox',
      'sh',
      '-c',
      'echo hi > /f && cat /f && ls -ln /bin/busybox',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('hi');
    // Image files belong to host root, which is not mapped: they show as the overflow uid.
    expect(r.stdout).toMatch(/65534\s+65534/);
  });
});

function readdirNames(): string[] {
  try {
    return readdirSync(`${env.root}/names`);
  } catch {
    return [];
  }
}
