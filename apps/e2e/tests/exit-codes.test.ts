import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { box, boxAsync, foreignPidNamespaceProcesses, useBoxRoot, waitFor } from '../helpers/box.js';

const env = useBoxRoot();

describe('box run exit codes (docker compatible)', () => {
  it('returns the command status', () => {
    expect(box(env.root, ['run', '--rm', 'busybox', 'true']).code).toBe(0);
    expect(box(env.root, ['run', '--rm', 'busybox', 'sh', '-c', 'exit 3']).code).toBe(3);
  });

  it('returns 127 for a command that does not exist', () => {
    const r = box(env.root, ['run', '--rm', 'busybox', 'no-such-command']);
    expect(r.code).toBe(127);
    expect(r.stderr.trim()).toBe('box: exec: "no-such-command": executable file not found in $PATH');
  });

  it('returns 126 for a command that cannot be executed', () => {
    const r = box(env.root, ['run', '--rm', 'busybox', '/etc/passwd']);
    expect(r.code).toBe(126);
    expect(r.stderr).toContain('permission denied');
    expect(box(env.root, ['run', '--rm', 'busybox', '/etc']).code).toBe(126);
  });

  it('returns 125 for its own errors', () => {
    // --pull never: a missing image is not looked for on docker.io (tests reach no outside host).
    const r = box(env.root, ['run', '--rm', '--pull', 'never', 'no-such-image']);
    expect(r.code).toBe(125);
    expect(r.stderr.trim()).toBe("box: Unable to find image 'no-such-image:latest' locally");
    expect(box(env.root, ['run', '--no-such-flag', 'busybox']).code).toBe(125);
  });

  it('returns 137 when the container is killed with SIGKILL', async () => {
    const run = boxAsync(env.root, ['run', '--rm', '--name', 'victim', 'busybox', 'sleep', '30']);
    await waitFor(() => containerPid('victim') > 0);
    process.kill(containerPid('victim'), 'SIGKILL');
    const r = await run.done;
    expect(r.code).toBe(137);
  });

  it('forwards SIGTERM to the container', async () => {
    const run = boxAsync(env.root, [
      'run',
      '--rm',
      'busybox',
      'sh',
      '-c',
      'trap "echo got TERM; exit 42" TERM; echo READY; while true; do sleep 0.05; done',
    ]);
    await waitFor(() => run.output().includes('READY'));
    run.child.kill('SIGTERM');
    const r = await run.done;
    expect(r.stdout).toContain('got TERM');
    expect(r.code).toBe(42);
  });

  it('kills the container when box itself is killed', async () => {
    const run = boxAsync(env.root, ['run', '--rm', 'busybox', 'sh', '-c', 'echo READY; sleep 30']);
    await waitFor(() => run.output().includes('READY'));
    const inNamespaces = () => [...foreignPidNamespaceProcesses()].filter((p) => !env.before.has(p));
    expect(inNamespaces().length).toBeGreaterThan(0);
    run.child.kill('SIGKILL');
    await run.done;
    await waitFor(() => inNamespaces().length === 0);
    // The next box command finishes the clean-up of the --rm container (record and cgroup).
    expect(box(env.root, ['run', '--rm', 'busybox', 'true']).code).toBe(0);
  });
});

/** The host pid of a running container, from its state record (0 until it runs). */
function containerPid(name: string): number {
  try {
    const id = readlinkSync(join(env.root, 'names', name));
    const state = JSON.parse(readFileSync(join(env.root, 'containers', id, 'state.json'), 'utf8')) as {
      pid?: number;
    };
    return state.pid ?? 0;
  } catch {
    return 0;
  }
}
