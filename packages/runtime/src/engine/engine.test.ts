import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { createCgroupManager } from '@box/cgroups';
import { tryLock } from '@box/sys';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { EngineError, isRuntimeError, SpecError } from '../errors.js';
import { makeBusyboxRootfs } from '../testing/busybox-rootfs.js';
import { createEngine, type Engine } from './engine.js';
import { ContainerStore } from './store.js';
import type { EngineImage, ImageProvider } from './types.js';

let top: string;
let layer: string;
const holds = new Map<string, string>();

/** The image side of the tests: "busybox" is one directory layer; holds are kept in memory. */
const images: ImageProvider = {
  async resolve(reference) {
    if (reference !== 'busybox')
      throw new EngineError('ENOIMAGE', `Unable to find image '${reference}' locally`);
    return { id: 'sha256:busybox', name: 'busybox', layers: [layer], config: { Cmd: ['sh'] } } as EngineImage;
  },
  async hold(imageId, containerId) {
    holds.set(containerId, imageId);
  },
  async release(containerId) {
    holds.delete(containerId);
  },
};

beforeAll(() => {
  top = mkdtempSync(join(tmpdir(), 'box-engine-test-'));
  chmodSync(top, 0o755);
  layer = join(top, 'layer');
  makeBusyboxRootfs(layer);
  writeFileSync(
    join(layer, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n',
  );
});

// box turns ip_forward on for its networks (as docker): as it was once the tests' networks are gone.
const ipForwardBefore = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
afterAll(async () => {
  // Every root's networks, also of an engine whose afterEach did not finish (a hook that timed
  // out): a root removed with its bridge still up would leave the bridge on the machine.
  for (const engine of made) await engine.removeAllNetworks().catch(() => undefined);
  rmSync(top, { recursive: true, force: true });
  // box's table keeps its forwarding restriction while ip_forward is on: both go together here,
  // unless another state root's networks use the table.
  const table = spawnSync('nft', ['list', 'table', 'ip', 'box'], { encoding: 'utf8' });
  if (table.status === 0 && !/chain (net|ctr)-/.test(table.stdout))
    spawnSync('nft', ['delete', 'table', 'ip', 'box']);
  writeFileSync('/proc/sys/net/ipv4/ip_forward', ipForwardBefore);
});

const engines: Engine[] = [];
/** Every engine of the file, for afterAll. */
const made: Engine[] = [];

function newEngine(): Engine {
  const root = mkdtempSync(join(top, 'root-'));
  const engine = createEngine({ root, images });
  engines.push(engine);
  made.push(engine);
  return engine;
}

/** Cgroup directories of a container left in any hierarchy (v1 controllers or v2). */
function cgroupsOf(id: string): string[] {
  const base = '/sys/fs/cgroup';
  const dirs = [join(base, 'box', id), ...readdirSync(base).map((h) => join(base, h, 'box', id))];
  return dirs.filter((dir) => existsSync(dir));
}

afterEach(async () => {
  for (const engine of engines.splice(0)) {
    const ids: string[] = [];
    for (const c of await engine.list({ all: true })) {
      ids.push(c.id);
      await engine.remove(c.id, { force: true, volumes: true });
    }
    await engine.idle();
    expect(readdirSync(join(engine.root, 'containers'))).toEqual([]);
    for (const id of ids) expect(cgroupsOf(id)).toEqual([]);
    // Its default network's bridge and firewall chains leave the host with it.
    await engine.removeAllNetworks();
  }
});

/** A new engine's container that has run `true` and exited, and its directory. */
async function exitedContainer(): Promise<{ engine: Engine; c: { id: string }; dir: string }> {
  const engine = newEngine();
  const c = await engine.run({ image: 'busybox', command: ['true'] });
  await engine.wait(c.id);
  return { engine, c, dir: join(engine.root, 'containers', c.id) };
}

/**
 * The lock file flocked by flock(1) running sleep, in a process group of its own (sleep inherits
 * the locked fd and goes with it); resolves once the lock is held.
 */
async function holdLock(path: string): Promise<{ release(): Promise<void> }> {
  const free = () => spawnSync('flock', ['-n', path, 'true']).status === 0;
  const holder = spawn('flock', [path, 'sleep', '30'], { stdio: 'ignore', detached: true });
  for (let i = 0; i < 250 && free(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  return {
    async release() {
      const exited = once(holder, 'exit');
      process.kill(-holder.pid!, 'SIGKILL');
      await exited;
      // (A lock file removed meanwhile is free too.)
      while (existsSync(path) && !free()) await new Promise((resolve) => setTimeout(resolve, 20));
    },
  };
}

/** Runs `fn` while flock(1) holds the container's lock (as a start of it would), then lets go. */
async function whileLocked<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const holder = await holdLock(join(dir, 'lock'));
  try {
    return await fn();
  } finally {
    await holder.release();
  }
}

/**
 * A removal that must wait for `holder`: 500 ms on, it has not settled and the record is still
 * there; then the holder lets go, and the removal is awaited.
 */
async function waitsForHolder(
  removal: Promise<unknown>,
  dir: string,
  holder: { release(): Promise<void> },
): Promise<void> {
  let settled = false;
  const watched = removal.then(() => {
    settled = true;
  });
  watched.catch(() => undefined); // awaited below; not unhandled meanwhile
  try {
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(settled).toBe(false);
    expect(existsSync(join(dir, 'state.json'))).toBe(true);
  } finally {
    await holder.release();
  }
  await watched;
}

async function text(engine: Engine, id: string): Promise<string> {
  let out = '';
  for await (const entry of engine.logs(id)) out += entry.log;
  return out;
}

describe('create and the store', () => {
  it('makes a record with a name, findable by name and ID prefix, holding its image', async () => {
    const engine = newEngine();
    const c = await engine.create({ image: 'busybox', name: 'first', command: ['true'] });
    expect(c.status).toBe('created');
    expect(c.running).toBe(false);
    expect(c.spec.process?.args).toEqual(['true']);
    expect((await engine.inspect('first')).id).toBe(c.id);
    expect((await engine.inspect(c.id.slice(0, 8))).id).toBe(c.id);
    expect(holds.get(c.id)).toBe('sha256:busybox');
    expect(readlinkSync(join(engine.root, 'names/first'))).toBe(c.id);
    await engine.remove('first');
    expect(holds.has(c.id)).toBe(false);
    expect(existsSync(join(engine.root, 'names/first'))).toBe(false);
  });

  it('refuses a taken name, a bad name, a bad hostname and an unknown image, leaving nothing', async () => {
    const engine = newEngine();
    await engine.create({ image: 'busybox', name: 'taken', command: ['true'] });
    const refusals: [Promise<unknown>, string][] = [
      [engine.create({ image: 'busybox', name: 'taken', command: ['true'] }), 'ENAMEINUSE'],
      [engine.create({ image: 'busybox', name: '-bad', command: ['true'] }), 'EINVAL'],
      [engine.create({ image: 'busybox', hostname: 'a b', command: ['true'] }), 'ESPEC'],
      [engine.create({ image: 'nope', command: ['true'] }), 'ENOIMAGE'],
      [engine.create({ image: 'busybox', workdir: 'relative', command: ['true'] }), 'EINVAL'],
      [
        engine.create({
          image: 'busybox',
          autoRemove: true,
          restartPolicy: { name: 'always', maximumRetryCount: 0 },
        }),
        'EINVAL',
      ],
    ];
    for (const [attempt, code] of refusals) {
      const error = await attempt.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isRuntimeError(error, code), `${code}: ${String(error)}`).toBe(true);
    }
    expect(await engine.create({ image: 'busybox', hostname: 'a b' }).catch((e) => e)).toBeInstanceOf(
      SpecError,
    );
    expect((await engine.list({ all: true })).map((c) => c.name)).toEqual(['taken']);
    expect(readdirSync(join(engine.root, 'containers'))).toHaveLength(1);
    expect(readdirSync(join(engine.root, 'names'))).toEqual(['taken']);
    expect(holds.size).toBe(1);
  });

  it('tells unknown and ambiguous references apart', async () => {
    const engine = newEngine();
    const a = await engine.create({ image: 'busybox', command: ['true'] });
    const b = await engine.create({ image: 'busybox', command: ['true'] });
    expect(await engine.inspect('nosuch').catch((e) => e.code)).toBe('ENOCONTAINER');
    // The longest prefix the two share (maybe empty: "" matches both as well).
    let common = 0;
    while (a.id[common] === b.id[common]) common++;
    const shared = a.id.slice(0, common);
    if (shared.length > 0) expect(await engine.inspect(shared).catch((e) => e.code)).toBe('EAMBIGUOUS');
    expect((await engine.inspect(a.id.slice(0, common + 1))).id).toBe(a.id);
  });
});

describe('detached containers (supervised in this process)', () => {
  it('runs, logs, records the exit code and emits events', async () => {
    const engine = newEngine();
    const c = await engine.run({ image: 'busybox', command: ['sh', '-c', 'echo out; echo err >&2; exit 3'] });
    expect(await engine.wait(c.id)).toBe(3);
    expect(await text(engine, c.id)).toBe('out\nerr\n');
    const after = await engine.inspect(c.id);
    expect(after.status).toBe('exited');
    expect(after.exitCode).toBe(3);
    await engine.remove(c.id);
    const events: string[] = [];
    for await (const event of engine.events()) if (event.id === c.id) events.push(event.type);
    expect(events).toEqual(['create', 'start', 'die', 'destroy']);
  });

  it('follows logs until the container stops', async () => {
    const engine = newEngine();
    const c = await engine.run({
      image: 'busybox',
      command: ['sh', '-c', 'for i in 1 2 3; do echo $i; sleep 0.1; done'],
    });
    const lines: string[] = [];
    for await (const entry of engine.logs(c.id, { follow: true })) lines.push(entry.log);
    expect(lines).toEqual(['1\n', '2\n', '3\n']);
  });

  it('applies on-failure restarts up to the limit, then records the end', async () => {
    const engine = newEngine();
    const c = await engine.run({
      image: 'busybox',
      command: ['sh', '-c', 'echo try; exit 1'],
      restartPolicy: { name: 'on-failure', maximumRetryCount: 2 },
    });
    for (;;) {
      const state = await engine.inspect(c.id);
      if (state.status === 'exited' && (state.restartCount ?? 0) === 2) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await engine.idle();
    expect(await text(engine, c.id)).toBe('try\ntry\ntry\n');
  });

  it('removes an auto-removed container when it ends', async () => {
    const engine = newEngine();
    const c = await engine.run({ image: 'busybox', command: ['true'], autoRemove: true });
    await engine.idle();
    expect(await engine.inspect(c.id).catch((e) => e.code)).toBe('ENOCONTAINER');
    expect(holds.has(c.id)).toBe(false);
  });

  it('execs into a running container, stops it with SIGTERM then SIGKILL, refuses what its state forbids', async () => {
    const engine = newEngine();
    const c = await engine.run({ image: 'busybox', command: ['sleep', '1000'] });
    const exec = await engine.exec(c.id, { command: ['sh', '-c', 'exit 7'] });
    expect((await exec.exited).exitCode).toBe(7);
    expect((await engine.top(c.id)).map((p) => p.command)).toEqual(['sleep 1000']);
    expect(await engine.remove(c.id).catch((e) => e.code)).toBe('ESTATE');
    expect(await engine.unpause(c.id).catch((e) => e.code)).toBe('ESTATE');
    expect((await engine.inspect(c.id)).running).toBe(true);
    await engine.pause(c.id);
    expect((await engine.inspect(c.id)).paused).toBe(true);
    await engine.unpause(c.id);
    // sleep as pid 1 ignores SIGTERM: killed after the timeout.
    await engine.stop(c.id, { timeout: 1 });
    const stopped = await engine.inspect(c.id);
    expect(stopped.status).toBe('exited');
    expect(stopped.exitCode).toBe(137);
    expect(await engine.exec(c.id, { command: ['true'] }).catch((e) => e.code)).toBe('ESTATE');
    expect(await engine.top(c.id).catch((e) => e.code)).toBe('ESTATE');
  });
});

describe('recovery after dead processes', () => {
  it('finishes a half-made record, a half-removed one and a stray name', async () => {
    const engine = newEngine();
    const id = 'a'.repeat(64);
    const other = 'b'.repeat(64);
    // A creator (pid 2^22-1 never runs) died after making its staging directory and its name.
    mkdirSync(join(engine.root, 'containers'), { recursive: true, mode: 0o710 });
    mkdirSync(join(engine.root, 'names'), { recursive: true, mode: 0o700 });
    mkdirSync(join(engine.root, `containers/.new-${id}-4194303-1`));
    mkdirSync(join(engine.root, `containers/.removing-${other}-4194303-1`));
    symlinkSync(id, join(engine.root, 'names/half'));
    symlinkSync('c'.repeat(64), join(engine.root, 'names/stray'));
    holds.set(id, 'sha256:busybox');
    await engine.reconcile();
    expect(readdirSync(join(engine.root, 'containers'))).toEqual([]);
    expect(readdirSync(join(engine.root, 'names'))).toEqual([]);
    expect(holds.has(id)).toBe(false);
  });

  it('removes a record whose state.json a power loss left empty, once nobody holds it', async () => {
    const engine = newEngine();
    const c = await engine.create({ image: 'busybox', command: ['true'], autoRemove: true });
    writeFileSync(join(engine.root, 'containers', c.id, 'state.json'), '');
    await createEngine({ root: engine.root, images }).reconcile();
    expect(readdirSync(join(engine.root, 'containers'))).toEqual([]);
    expect(readdirSync(join(engine.root, 'names'))).toEqual([]);
    expect(holds.has(c.id)).toBe(false);
  });

  it('records the end of a running container whose owner died, and removes an auto-removed one', async () => {
    const engine = newEngine();
    const kept = await engine.create({ image: 'busybox', command: ['true'] });
    const gone = await engine.create({ image: 'busybox', command: ['true'], autoRemove: true });
    // As an owner killed after its container ran leaves them: "running", a pid that is gone, no lock held.
    for (const c of [kept, gone]) {
      const path = join(engine.root, 'containers', c.id, 'state.json');
      const state = JSON.parse(readFileSync(path, 'utf8'));
      writeFileSync(path, JSON.stringify({ ...state, status: 'running', pid: 4194303, pidStartTime: 1 }));
    }
    const fresh = createEngine({ root: engine.root, images });
    const list = await fresh.list({ all: true });
    expect(list.map((c) => [c.id, c.status, c.exitCode])).toEqual([[kept.id, 'exited', 137]]);
    expect(holds.has(gone.id)).toBe(false);
  });

  it('undoes a start cut short (its marker is left) and locks no other created or exited container', async () => {
    const engine = newEngine();
    const cut = await engine.create({ image: 'busybox', command: ['true'] });
    const waiting = await engine.create({ image: 'busybox', command: ['true'] });
    const ran = await engine.run({ image: 'busybox', command: ['true'] });
    await engine.wait(ran.id);
    const dir = (id: string) => join(engine.root, 'containers', id);
    // A start ends by clearing the marker it wrote first.
    expect(existsSync(join(dir(ran.id), 'starting'))).toBe(false);
    // As a start killed after it made the container's cgroup leaves it: the marker, a cgroup, the
    // record still "created".
    const { cgroupsPath } = JSON.parse(readFileSync(join(dir(cut.id), 'state.json'), 'utf8'));
    await (await createCgroupManager({ path: cgroupsPath })).create();
    writeFileSync(join(dir(cut.id), 'starting'), '');
    expect(cgroupsOf(cut.id)).not.toEqual([]);
    const lock = vi.spyOn(ContainerStore.prototype, 'lock');
    try {
      await createEngine({ root: engine.root, images }).reconcile();
      expect(lock.mock.calls.map(([id]) => id)).toEqual([cut.id]);
    } finally {
      lock.mockRestore();
    }
    expect(cgroupsOf(cut.id)).toEqual([]);
    expect(existsSync(join(dir(cut.id), 'starting'))).toBe(false);
    const list = await engine.list({ all: true });
    expect(list.map((c) => [c.id, c.status]).sort()).toEqual(
      [
        [cut.id, 'created'],
        [waiting.id, 'created'],
        [ran.id, 'exited'],
      ].sort(),
    );
  });

  it('removes a --rm container whose end was recorded by an owner that died before removing it', async () => {
    const engine = newEngine();
    const gone = await engine.create({ image: 'busybox', command: ['true'], autoRemove: true });
    const kept = await engine.create({ image: 'busybox', command: ['true'] });
    // As the service leaves them when killed between recording the end and the removal.
    for (const c of [gone, kept]) {
      const path = join(engine.root, 'containers', c.id, 'state.json');
      const state = JSON.parse(readFileSync(path, 'utf8'));
      writeFileSync(path, JSON.stringify({ ...state, status: 'exited', exitCode: 0 }));
    }
    const list = await createEngine({ root: engine.root, images }).list({ all: true });
    expect(list.map((c) => [c.id, c.status])).toEqual([[kept.id, 'exited']]);
    expect(holds.has(gone.id)).toBe(false);
    expect(holds.has(kept.id)).toBe(true);
  });

  it('rm without -f refuses an exited container that is being started (owned and marked)', async () => {
    const { engine, c, dir } = await exitedContainer();
    // As a start of it holds it: the marker written, the lock taken (here by flock(1)).
    writeFileSync(join(dir, 'starting'), '');
    await whileLocked(dir, () => expect(engine.remove(c.id)).rejects.toThrow(/container is running/));
    await engine.remove(c.id);
    expect(await engine.list({ all: true })).toEqual([]);
  });

  it('rm and prune without -f remove under the lock: they wait for a holder that lets go and leave one that keeps it', {
    timeout: 30_000,
  }, async () => {
    const { engine, c, dir } = await exitedContainer();
    // Not marked: their first look finds it idle, as when a start takes its lock just after it.
    await whileLocked(dir, async () => {
      const before = Date.now();
      await expect(engine.remove(c.id)).rejects.toThrow(/container is running/);
      expect(Date.now() - before).toBeGreaterThanOrEqual(2900);
      expect(await engine.prune()).toEqual([]);
      expect(existsSync(join(dir, 'state.json'))).toBe(true);
      expect(cgroupsOf(c.id)).toEqual([]);
    });
    // A holder that lets go (an owner that has just recorded the end): the removal waits for it.
    const holder = await holdLock(join(dir, 'lock'));
    await waitsForHolder(engine.remove(c.id), dir, holder);
    expect(await engine.list({ all: true })).toEqual([]);
    expect(holds.has(c.id)).toBe(false);
  });

  it('rm without -f that waits for the lock of a container removed meanwhile says there is no such container', async () => {
    const { engine, c, dir } = await exitedContainer();
    const aside = join(engine.root, 'containers', `.aside-${c.id}`);
    await whileLocked(dir, async () => {
      try {
        const waiting = engine.remove(c.id);
        await new Promise((resolve) => setTimeout(resolve, 100));
        // Out of sight in one rename, as another removal takes it (claimForRemoval).
        renameSync(dir, aside);
        await expect(waiting).rejects.toThrow(`No such container: ${c.id}`);
      } finally {
        if (existsSync(aside)) renameSync(aside, dir);
      }
    });
    await engine.remove(c.id);
    expect(await engine.list({ all: true })).toEqual([]);
  });

  it('rm -f removes under the lock: a start that takes it after the kill is waited for, not removed under', {
    timeout: 30_000,
  }, async () => {
    const { engine, c, dir } = await exitedContainer();
    // A start that took the lock right after rm -f's kill had found the container unowned: the
    // holder has it, and rm -f's first look is made to miss it.
    const holder = await holdLock(join(dir, 'lock'));
    const isOwned = ContainerStore.prototype.isOwned;
    let looks = 0;
    const spy = vi.spyOn(ContainerStore.prototype, 'isOwned').mockImplementation(function (
      this: ContainerStore,
      ...args: Parameters<typeof isOwned>
    ) {
      return looks++ === 0 ? false : isOwned.apply(this, args);
    });
    try {
      // Before: removed at once, under the holder's feet.
      await waitsForHolder(engine.remove(c.id, { force: true }), dir, holder);
    } finally {
      spy.mockRestore();
    }
    expect(looks).toBeGreaterThanOrEqual(1);
    expect(await engine.list({ all: true })).toEqual([]);
    expect(holds.has(c.id)).toBe(false);
    expect(cgroupsOf(c.id)).toEqual([]);
  });

  it('rm -f refuses a container that a start takes again after each kill, and leaves it whole', {
    timeout: 30_000,
  }, async () => {
    const { engine, c, dir } = await exitedContainer();
    // Each look finds it unowned while a holder has it: as a start that slips in every time.
    await whileLocked(dir, async () => {
      const spy = vi.spyOn(ContainerStore.prototype, 'isOwned').mockReturnValue(false);
      try {
        await expect(engine.remove(c.id, { force: true })).rejects.toThrow(/started again/);
        expect(existsSync(join(dir, 'state.json'))).toBe(true);
        expect(holds.has(c.id)).toBe(true);
      } finally {
        spy.mockRestore();
      }
    });
    await engine.remove(c.id, { force: true });
    expect(await engine.list({ all: true })).toEqual([]);
  });

  it('rm -f removes a record whose lock file is gone (nothing can lock it)', async () => {
    const { engine, c, dir } = await exitedContainer();
    unlinkSync(join(dir, 'lock'));
    await engine.remove(c.id, { force: true });
    expect(await engine.list({ all: true })).toEqual([]);
    expect(holds.has(c.id)).toBe(false);
  });

  it('rm -f sets the stopped mark again when a start cleared it, so a restart policy does not bring the container back', {
    timeout: 30_000,
  }, async () => {
    const engine = newEngine();
    const c = await engine.run({
      image: 'busybox',
      command: ['sleep', '1000'],
      restartPolicy: { name: 'always', maximumRetryCount: 0 },
    });
    // As a start that reached its sync point right after rm -f's mark: cleared once, at once.
    const update = ContainerStore.prototype.update;
    let cleared = false;
    let restarts = 0;
    const spy = vi.spyOn(ContainerStore.prototype, 'update').mockImplementation(function (
      this: ContainerStore,
      ...args: Parameters<typeof update>
    ) {
      const [id, change, durable] = args;
      if (change.status === 'restarting') restarts++;
      const result = update.apply(this, args);
      if (cleared || change.error !== 'stopped') return result;
      cleared = true;
      return update.call(this, id, { error: undefined }, durable);
    });
    try {
      await engine.remove(c.id, { force: true });
      await engine.idle();
    } finally {
      spy.mockRestore();
    }
    expect(cleared).toBe(true);
    // Before: the kill counted as a failure to restart from, again and again for forceStop's 10 s.
    expect(restarts).toBe(0);
    expect(await engine.list({ all: true })).toEqual([]);
    expect(cgroupsOf(c.id)).toEqual([]);
  });

  it("recovery in the process that holds a marked container's lock leaves that start alone", async () => {
    const engine = newEngine();
    const c = await engine.create({ image: 'busybox', command: ['true'] });
    const dir = join(engine.root, 'containers', c.id);
    const { cgroupsPath } = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
    // What a start of it in this process has made so far: the marker, its cgroup, the lock held.
    writeFileSync(join(dir, 'starting'), '');
    await (await createCgroupManager({ path: cgroupsPath })).create();
    const fd = openSync(join(dir, 'lock'), 'r');
    const lock = vi.spyOn(ContainerStore.prototype, 'lock');
    const kill = vi.spyOn(ContainerStore.prototype, 'killOrphanedHolders');
    try {
      expect(tryLock(fd)).toBe(true);
      await createEngine({ root: engine.root, images }).reconcile();
      expect(lock).not.toHaveBeenCalled();
      expect(kill).not.toHaveBeenCalled();
      expect(cgroupsOf(c.id)).not.toEqual([]);
      expect(existsSync(join(dir, 'starting'))).toBe(true);
    } finally {
      lock.mockRestore();
      kill.mockRestore();
      closeSync(fd);
    }
    // Let go (the start died with it): the next recovery undoes it.
    await createEngine({ root: engine.root, images }).reconcile();
    expect(cgroupsOf(c.id)).toEqual([]);
    expect(existsSync(join(dir, 'starting'))).toBe(false);
  });

  it('a start that fails after its sync point leaves its marker; the next recovery clears it', async () => {
    const engine = newEngine();
    // Executable, but no format the kernel runs: execve, the child's last step, fails (ENOEXEC).
    writeFileSync(join(layer, 'not-a-program'), Buffer.from([0, 1, 2, 3]), { mode: 0o755 });
    const c = await engine.create({ image: 'busybox', command: ['/not-a-program'] });
    await expect(engine.start(c.id)).rejects.toThrow(/not-a-program/);
    const marker = join(engine.root, 'containers', c.id, 'starting');
    expect(existsSync(marker)).toBe(true);
    await createEngine({ root: engine.root, images }).reconcile();
    expect(existsSync(marker)).toBe(false);
    expect(cgroupsOf(c.id)).toEqual([]);
    expect((await engine.inspect(c.id)).status).toBe('created');
  });

  it('a container recovery cannot finish does not stop other commands; its own rm names the problem', async () => {
    const engine = newEngine();
    const broken = await engine.create({ image: 'busybox', command: ['true'] });
    const fine = await engine.create({ image: 'busybox', command: ['true'] });
    const path = join(engine.root, 'containers', broken.id, 'state.json');
    const state = JSON.parse(readFileSync(path, 'utf8'));
    // Its owner died while it ran, and its cgroup cannot be removed (a path @box/cgroups refuses).
    writeFileSync(
      path,
      JSON.stringify({ ...state, status: 'running', pid: 4194303, pidStartTime: 1, cgroupsPath: 'box/../x' }),
    );
    const fresh = createEngine({ root: engine.root, images });
    const list = await fresh.list({ all: true });
    expect(list.map((c) => [c.id, c.status]).sort()).toEqual(
      [
        [broken.id, 'running'],
        [fine.id, 'created'],
      ].sort(),
    );
    // A wait on it ends with why, rather than trying for ever.
    await expect(fresh.wait(broken.id)).rejects.toThrow(/invalid cgroup path "box\/\.\.\/x"/);
    await expect(fresh.remove(broken.id, { force: true })).rejects.toThrow(
      /invalid cgroup path "box\/\.\.\/x"/,
    );
    // Put right, it goes as any other.
    writeFileSync(path, JSON.stringify({ ...state, status: 'running', pid: 4194303, pidStartTime: 1 }));
    expect((await createEngine({ root: engine.root, images }).list({ all: true })).length).toBe(2);
  });
});

/** Collects what a stream gets. */
function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { stream, text: () => Buffer.concat(chunks).toString() };
}

describe('piped containers and execs', () => {
  it('copies input and output through pipes, here and through a running service', async () => {
    const engine = newEngine();
    // The service (in this process for the test) and a client engine that finds it running.
    const serving = engine.serve({ idleMs: 300 });
    const client = createEngine({ root: engine.root, images, service: { command: ['/bin/false'] } });
    for (const [who, e] of [
      ['here', engine],
      ['service', client],
    ] as const) {
      const out = sink();
      const err = sink();
      const stdin = new PassThrough();
      const proc = await e.runPiped(
        { image: 'busybox', command: ['sh', '-c', 'tr a-z A-Z; echo done >&2; exit 4'], autoRemove: true },
        { stdin, stdout: out.stream, stderr: err.stream },
      );
      stdin.end('piped input\n');
      expect((await proc.exited).exitCode, who).toBe(4);
      expect(out.text(), who).toBe('PIPED INPUT\n');
      expect(err.text(), who).toBe('done\n');
      // The caller's stdout goes away (EPIPE, as `| head -1`): the container's writes fail too.
      const broken = new Writable({
        write: (_chunk, _encoding, callback) =>
          callback(Object.assign(new Error('EPIPE'), { code: 'EPIPE' })),
      });
      const yesErr = sink();
      const yes = await e.runPiped(
        { image: 'busybox', command: ['yes'], autoRemove: true },
        { stdout: broken, stderr: yesErr.stream },
      );
      expect((await yes.exited).exitCode, who).toBe(1);
      expect(yesErr.text(), who).toContain('Broken pipe');
    }
    const c = await engine.run({ image: 'busybox', command: ['sleep', '1000'] });
    const out = sink();
    const exec = await client.execPiped(
      c.id,
      { command: ['sh', '-c', 'echo from exec; exit 6'] },
      { stdout: out.stream, stderr: sink().stream },
    );
    expect((await exec.exited).exitCode).toBe(6);
    expect(out.text()).toBe('from exec\n');
    // A signal reaches the container; its end is recorded as docker's 128 + signal.
    const long = await client.runPiped(
      { image: 'busybox', command: ['sleep', '1000'], name: 'long' },
      { stdout: sink().stream, stderr: sink().stream },
    );
    long.kill('SIGKILL');
    expect((await long.exited).exitCode).toBe(137);
    expect((await engine.inspect('long')).exitCode).toBe(137);
    await engine.remove(c.id, { force: true });
    await serving;
  });
});
