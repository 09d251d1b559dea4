import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChildSetupError } from '@box/sys';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { startContainer } from '../run.js';
import type { EngineContext } from './context.js';
import { EventLog } from './events.js';
import { launch } from './launch.js';
import { layoutOf } from './layout.js';
import { fuseFallbackFor } from './rootless-overlay.js';
import { ContainerStore } from './store.js';
import type { ContainerRecord } from './types.js';

// This kernel mounts overlay in a user namespace, so it never refuses a rootless container's
// overlay: that refusal and the start that meets it are fakes here (the record store is real).
const starts: Array<(options: Parameters<typeof startContainer>[0]) => Promise<never>> = [];
vi.mock('../run.js', () => ({
  startContainer: vi.fn((options: Parameters<typeof startContainer>[0]) => {
    const next = starts.shift();
    if (next === undefined) throw new Error('an unexpected start');
    return next(options);
  }),
}));
vi.mock('./rootless-overlay.js', async (importOriginal) => ({
  ...(await importOriginal<typeof import('./rootless-overlay.js')>()),
  fuseFallbackFor: vi.fn(),
  overlayProgramFor: () => undefined,
}));

let top: string;
let ctx: EngineContext;

beforeEach(() => {
  top = mkdtempSync(join(tmpdir(), 'box-launch-test-'));
  const layout = layoutOf(top);
  mkdirSync(layout.containers);
  ctx = { layout, store: new ContainerStore(layout), events: new EventLog(layout.events) } as EngineContext;
});

afterEach(() => {
  starts.length = 0;
  vi.mocked(fuseFallbackFor).mockReset();
  rmSync(top, { recursive: true, force: true });
});

/** A `run --rm` container's record, as create writes it before its run starts it. */
function runRmRecord(): ContainerRecord {
  const id = 'c'.repeat(64);
  const record = {
    id,
    name: 'fake',
    image: 'busybox',
    command: ['true'],
    created: new Date().toISOString(),
    status: 'created',
    autoRemove: true,
    runPending: true,
    networkMode: 'none',
    cgroupsPath: `box/${id}`,
    overlay: { lowerdirs: [], upperdir: join(top, 'upper'), workdir: join(top, 'work') },
  } as ContainerRecord;
  mkdirSync(ctx.store.dir(id));
  ctx.store.write(ctx.store.dir(id), record);
  ctx.store.writeSpec(ctx.store.dir(id), { ociVersion: '1.0.2', root: { path: 'rootfs' } });
  return record;
}

const refused = () => new ChildSetupError('mount overlay on /fake/rootfs', 'mount', 1);
const launchOptions = { detached: false, dieWithParent: true };

describe('a start that fails (with a faked overlay refusal: this kernel never refuses)', () => {
  it('a run --rm retried on FUSE stays "run pending" during the retry (what recovery removes if its process is killed then); a failed retry does not say FUSE', async () => {
    const record = runRmRecord();
    vi.mocked(fuseFallbackFor).mockReturnValue('/usr/bin/fuse-overlayfs');
    let duringRetry: ContainerRecord | undefined;
    let retryOptions: Parameters<typeof startContainer>[0] | undefined;
    starts.push(
      async () => {
        throw refused();
      },
      async (options) => {
        duringRetry = ctx.store.read(record.id);
        retryOptions = options;
        throw new Error('the retry failed too');
      },
    );
    await expect(launch(ctx, record, launchOptions)).rejects.toThrow('the retry failed too');
    expect(retryOptions?.fuseOverlay).toBe('/usr/bin/fuse-overlayfs');
    expect(duringRetry?.runPending).toBe(true);
    expect(duringRetry?.status).toBe('created');
    // The start as a whole failed: an ordinary created container now, as after any failed start.
    const after = ctx.store.read(record.id);
    expect(after.runPending).toBeUndefined();
    expect(after.fuseOverlay).toBeUndefined();
    expect(after.error).toBe('the retry failed too');
  });

  it('a failure that is no overlay refusal is not retried and ends "run pending" at once', async () => {
    const record = runRmRecord();
    starts.push(async () => {
      throw new ChildSetupError('mount proc on /proc', 'mount', 1);
    });
    await expect(launch(ctx, record, launchOptions)).rejects.toThrow('mount proc on /proc');
    expect(starts).toHaveLength(0);
    const after = ctx.store.read(record.id);
    expect(after.runPending).toBeUndefined();
    expect(after.status).toBe('created');
  });
});
