import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { processStartTime } from '../engine/process-info.js';
import type { Spec } from '../spec.js';
import { OciRuntime } from './runtime.js';
import { OciStateDir, type StoredState } from './state.js';

const root = mkdtempSync(join(tmpdir(), 'box-oci-runtime-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const spec = { ociVersion: '1.2.0', root: { path: 'rootfs' } } as Spec;

/** The record a `create` leaves when it is killed before its container's process is recorded. */
function cutShort(id: string, creator: number): void {
  const states = new OciStateDir(root);
  states.claim(id);
  const stored: StoredState = {
    id,
    bundle: '/nonexistent',
    rootfs: '/nonexistent/rootfs',
    created: new Date().toISOString(),
    pid: 0,
    creatorPid: creator,
    creatorStartTime: processStartTime(creator) ?? 1,
  };
  states.write(stored, spec);
}

describe('a create cut short (SIGKILL) before its container had a process', () => {
  const runtime = new OciRuntime(root);

  it('reads as stopped once its create is gone, and delete removes it', async () => {
    cutShort('dead-creator', spawnSync('true').pid!);
    expect((await runtime.state('dead-creator')).status).toBe('stopped');
    await runtime.delete('dead-creator');
    expect(existsSync(join(root, 'dead-creator'))).toBe(false);
  });

  it('reads as creating while its create lives: delete refuses it, --force removes it', async () => {
    cutShort('live-creator', process.pid);
    expect((await runtime.state('live-creator')).status).toBe('creating');
    await expect(runtime.delete('live-creator')).rejects.toThrow(
      'cannot delete container live-creator that is not stopped: creating',
    );
    await runtime.delete('live-creator', { force: true });
    expect(existsSync(join(root, 'live-creator'))).toBe(false);
  });

  it('only its directory made: not a container, but --force frees the id', async () => {
    new OciStateDir(root).claim('bare');
    await expect(runtime.state('bare')).rejects.toThrow('container does not exist: bare');
    await expect(runtime.delete('bare')).rejects.toThrow('container does not exist: bare');
    await runtime.delete('bare', { force: true });
    expect(existsSync(join(root, 'bare'))).toBe(false);
    await expect(runtime.delete('bare', { force: true })).rejects.toThrow('container does not exist: bare');
    // A state.json that does not parse is not a half-made directory: its container may run.
    new OciStateDir(root).claim('garbled');
    writeFileSync(join(root, 'garbled', 'state.json'), '{"id": "garbled", "pi');
    await expect(runtime.delete('garbled', { force: true })).rejects.toThrow(
      'container does not exist: garbled',
    );
    expect(existsSync(join(root, 'garbled', 'state.json'))).toBe(true);
  });
});
