/**
 * The cgroup freezer: pause and unpause, whether a container is paused, and the marker a commit
 * keeps locked while it has a container frozen (so that recovery thaws a container whose
 * commit was killed).
 */
import { closeSync, fstatSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Whether a container's cgroup is frozen; read from the cgroup's files (no lock or syscall). */
export async function isPaused(cgroupsPath: string): Promise<boolean> {
  // Where cgroups usually are (the v1 freezer, or a v2 root), read directly: listing containers
  // then loads no cgroup manager. Elsewhere the manager finds the hierarchy.
  for (const [file, frozen] of [
    [`/sys/fs/cgroup/freezer/${cgroupsPath}/freezer.state`, /^FROZEN$/m],
    [`/sys/fs/cgroup/${cgroupsPath}/cgroup.events`, /^frozen 1$/m],
  ] as const) {
    try {
      return frozen.test(readFileSync(file, 'utf8'));
    } catch {
      // not there: the next place
    }
  }
  try {
    const { createCgroupManager } = await import('@box/cgroups');
    const cgroup = await createCgroupManager({ path: cgroupsPath });
    for (const dir of cgroup.dirs) {
      if (dir.includes('/freezer/'))
        return readFileSync(join(dir, 'freezer.state'), 'utf8').trim() === 'FROZEN';
      if (cgroup.mode === 'unified')
        return /^frozen 1$/m.test(readFileSync(join(dir, 'cgroup.events'), 'utf8'));
    }
  } catch {
    // no cgroup: not paused
  }
  return false;
}

export async function freeze(cgroupsPath: string): Promise<void> {
  const { createCgroupManager } = await import('@box/cgroups');
  await (await createCgroupManager({ path: cgroupsPath })).freeze();
}

export async function thaw(cgroupsPath: string): Promise<void> {
  const { createCgroupManager } = await import('@box/cgroups');
  await (await createCgroupManager({ path: cgroupsPath })).thaw();
}

/** The marker a commit keeps locked while it has a container frozen. */
export function commitPauseMarker(containerDir: string): string {
  return join(containerDir, 'commit-pause');
}

/** Thaws a container that a commit froze and then died (its marker is there, unlocked). */
export async function thawAfterCommit(containerDir: string, cgroupsPath: string): Promise<void> {
  const marker = commitPauseMarker(containerDir);
  let fd: number;
  try {
    fd = openSync(marker, 'r');
  } catch {
    return; // no commit pauses it
  }
  try {
    // @box/sys (koffi) only when there is a marker: recovery runs this for every running container.
    const { tryLock } = await import('@box/sys');
    if (!tryLock(fd, marker)) return; // the commit is still at work
    // Gone before thawing: a commit that starts now makes a new marker and freezes after this.
    rmSync(marker, { force: true });
    await thaw(cgroupsPath).catch(() => undefined);
  } finally {
    closeSync(fd);
  }
}

/**
 * Takes the commit-pause marker of a container: created and locked, and still the one in place
 * once locked (recovery may have removed the file between open and lock). Remove the file, then
 * close the fd to let go.
 */
export async function takeCommitPauseMarker(containerDir: string, timeoutMs = 5000): Promise<number | null> {
  const marker = commitPauseMarker(containerDir);
  const deadline = Date.now() + timeoutMs;
  const { tryLock } = await import('@box/sys');
  for (;;) {
    const fd = openSync(marker, 'a', 0o600);
    if (tryLock(fd, marker)) {
      let current: number | undefined;
      try {
        current = statSync(marker).ino;
      } catch {
        current = undefined;
      }
      if (current === fstatSync(fd).ino) return fd;
    }
    closeSync(fd);
    if (Date.now() >= deadline) return null;
    await sleep(20);
  }
}
