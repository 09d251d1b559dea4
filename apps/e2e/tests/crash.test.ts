/**
 * SIGKILL of a box command at any moment: the next commands (`ps -a`, `rm -f`) must finish in
 * bounded time and leave nothing behind (no record, name, mount, cgroup or process), the image's
 * holds must be released and a container paused by a killed commit must not stay frozen.
 *
 * The kill moments are random but seeded (CRASH_SEED=N to replay a failure; the seed is printed).
 * They are spread across the command's own work: Node.js start-up is measured first, and each
 * kill lands 0-300 ms after it (a little before, too), where box makes, starts or removes things.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { boxAsync, boxBin, boxOk, leftovers, useBoxRoot, waitFor } from '../helpers/box.js';
import { childrenOf, servicePid } from '../helpers/procs.js';

const env = useBoxRoot();

const seed = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000);
// A small seeded generator (mulberry32), so a failing run can be replayed.
let rngState = seed;
function random(): number {
  rngState = (rngState + 0x6d2b79f5) | 0;
  let t = rngState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** When box starts its own work (Node.js start-up) and when a whole `run --rm` ends, in ms, on this machine now. */
let startup = 0;
let finish = 0;

function timed(args: string[]): number {
  const t = Date.now();
  boxOk(env.root, args);
  return Date.now() - t;
}

beforeAll(() => {
  process.env.BOX_SERVICE_IDLE_MS = '2000';
  console.log(`crash test seed: CRASH_SEED=${seed}`);
  startup = [0, 1, 2].map(() => timed(['--version'])).sort((a, b) => a - b)[1]!;
  finish = Math.max(startup + 300, timed(['run', '--rm', 'busybox', 'true']));
});

const ROUNDS = 3;
/** Commands killed side by side in one round. */
const PARALLEL = 3;

/** Runs box with a hard time limit: a hang fails the test instead of blocking it. */
function bounded(args: string[], timeout = 20_000) {
  const r = spawnSync(process.execPath, [boxBin, ...args], {
    env: { ...process.env, BOX_ROOT: env.root },
    encoding: 'utf8',
    timeout,
  });
  if (r.error) throw new Error(`box ${args.join(' ')} did not finish in ${timeout} ms (seed ${seed})`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts `box args` and SIGKILLs it after `delay` ms (or lets it finish, if it is quicker). */
async function killAfter(args: string[], delay: number): Promise<void> {
  const { child } = boxAsync(env.root, args);
  // Its end, not its output's: a process it started (exec's) may hold its stdout for long.
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const timer = setTimeout(() => child.kill('SIGKILL'), delay);
  await exited;
  clearTimeout(timer);
  child.stdout?.destroy();
  child.stderr?.destroy();
}

/**
 * A kill moment, spread over the command's own work: from a little before Node.js has started
 * box to a little after a whole `run --rm` would have ended (box's work takes 100-300 ms of a
 * second or so; kills in the first 0-300 ms would all land in Node.js's start-up). One stratum
 * of that span per round and slot, so every part of it is hit.
 */
function delay(round: number, slot: number, offset: number): number {
  const strata = ROUNDS * PARALLEL;
  const stratum = (round * PARALLEL + slot + offset) % strata;
  const from = Math.max(0, startup - 100);
  return Math.round(from + ((stratum + random()) * (finish + 100 - from)) / strata);
}

function busyboxHolders(): number {
  const images = bounded(['images', '--format', 'json'])
    .stdout.trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { Repository: string; Containers: number });
  return images.find((image) => image.Repository === 'busybox')!.Containers;
}

/**
 * IDs of this file's containers, seen in its BOX_ROOT (records, staging and trash directories,
 * names) before each clean-up: other worktrees' tests run their containers on this machine too.
 */
const ours = new Set<string>();

function noteOurs(): void {
  const add = (text: string) => {
    const id = /[0-9a-f]{64}/.exec(text)?.[0];
    if (id) ours.add(id);
  };
  for (const dir of ['containers', 'names']) {
    let entries: string[] = [];
    try {
      entries = readdirSync(join(env.root, dir));
    } catch {
      // none yet
    }
    for (const entry of entries) {
      add(entry);
      try {
        add(readlinkSync(join(env.root, dir, entry)));
      } catch {
        // not a name
      }
    }
  }
}

/** What the leftovers helper finds that belongs to this file (its root, its containers, its box). */
function ourLeftovers(): string[] {
  return leftovers(env.root, env.before).filter((item) => {
    if (item.startsWith('cgroup: ')) return ours.has(/[0-9a-f]{64}/.exec(item)![0]);
    if (!item.startsWith('process ')) return true;
    if (item.includes(boxBin)) return true; // a child of our box that never exec'd
    try {
      const pid = /^process (\d+)/.exec(item)![1];
      const cgroup = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
      return [...ours].some((id) => cgroup.includes(id));
    } catch {
      return false; // gone
    }
  });
}

/** `ps -a` and `rm -f` of everything must finish, and then nothing may be left. */
async function removeEverything(what: string): Promise<void> {
  noteOurs();
  const ps = bounded(['ps', '-a', '-q', '--no-trunc']);
  expect(ps.code, ps.stderr).toBe(0);
  const ids = ps.stdout.trim().split('\n').filter(Boolean);
  if (ids.length > 0) {
    const rm = bounded(['rm', '-f', ...ids]);
    expect(rm.code, `${what}: ${rm.stderr}`).toBe(0);
  }
  // A killed container is reaped by the host's init in its own time.
  await waitFor(() => ourLeftovers().length === 0, 5000).catch(() => undefined);
  expect(ourLeftovers(), `${what} (seed ${seed})`).toEqual([]);
}

/** Kills `command(i)` PARALLEL times per round after `prepare(i)`, then checks the clean-up. */
async function crash(
  name: string,
  command: (target: string) => string[],
  prepare?: () => Promise<string>,
  afterKill?: (targets: string[]) => void,
): Promise<void> {
  const offset = Math.floor(random() * ROUNDS * PARALLEL);
  const seen = ours.size;
  for (let round = 0; round < ROUNDS; round++) {
    const targets = await Promise.all(Array.from({ length: PARALLEL }, () => prepare?.() ?? ''));
    const delays = targets.map((_, slot) => delay(round, slot, offset));
    await Promise.all(targets.map((target, slot) => killAfter(command(target), delays[slot]!)));
    afterKill?.(targets);
    await removeEverything(`${name} killed after ${delays.join(', ')} ms`);
  }
  // On a loaded machine the command may have been slower than the `run --rm` timed at the start,
  // so that every kill came before it made anything: then kill later (twice, four times the span),
  // each round checked as the others, until one did.
  for (let late = 2; !prepare && ours.size === seen && late <= 4; late *= 2) {
    const delays = Array.from({ length: PARALLEL }, (_, slot) =>
      Math.round(finish * late * (0.5 + slot / 4)),
    );
    await Promise.all(delays.map((d) => killAfter(command(''), d)));
    await removeEverything(`${name} killed after ${delays.join(', ')} ms`);
  }
  // Some kills came late enough to leave something to clean up (else this test could not fail).
  if (!prepare) expect(ours.size, `no ${name} got far enough (seed ${seed})`).toBeGreaterThan(seen);
  expect(busyboxHolders(), `busybox is still held after ${name} (seed ${seed})`).toBe(0);
}

/** `box args`, in the background so that a round's containers are made side by side; its ID. */
async function made(args: string[]): Promise<string> {
  const r = await boxAsync(env.root, args).done;
  if (r.code !== 0) throw new Error(`box ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout.trim();
}

const detached = () => made(['run', '-d', 'busybox', 'sh', '-c', 'echo x > /f; exec sleep 30']);

// Each test runs about 20 box commands: slow on a loaded machine.
describe('a box command killed with SIGKILL at any moment', { timeout: 90_000 }, () => {
  it('run (foreground)', async () => {
    await crash('run', () => ['run', 'busybox', 'sleep', '30']);
  });

  it('run --rm (foreground): the next command keeps no container of it, started or not', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const offset = Math.floor(random() * ROUNDS * PARALLEL);
      const delays = Array.from({ length: PARALLEL }, (_, slot) => delay(round, slot, offset));
      await Promise.all(delays.map((d) => killAfter(['run', '--rm', 'busybox', 'sleep', '30'], d)));
      noteOurs();
      // No rm: `ps -a` itself recovers what the killed runs left, and lists none of them.
      const listed = () => bounded(['ps', '-a', '--format', '{{.ID}} {{.Status}}']).stdout;
      await waitFor(() => listed() === '', 5000).catch(() => undefined);
      expect(listed(), `run --rm killed after ${delays.join(', ')} ms (seed ${seed})`).toBe('');
      await removeEverything(`run --rm killed after ${delays.join(', ')} ms`);
    }
  });

  it('run -d', async () => {
    await crash('run -d', () => ['run', '-d', 'busybox', 'sleep', '30']);
  });

  it('run --network slirp4netns -p (foreground and -d): no slirp4netns or API socket left', async () => {
    const slirp = ['--network', 'slirp4netns', '-p', '127.0.0.1::80', 'busybox', 'sleep', '30'];
    await crash('run --network slirp4netns', () => ['run', ...slirp]);
    await crash('run -d --network slirp4netns', () => ['run', '-d', ...slirp]);
  });

  it('create', async () => {
    await crash('create', () => ['create', 'busybox', 'sleep', '30']);
  });

  it('start', async () => {
    await crash(
      'start',
      (id) => ['start', id],
      () => made(['create', 'busybox', 'sleep', '30']),
    );
  });

  it('exec', async () => {
    await crash('exec', (id) => ['exec', id, 'sleep', '30'], detached);
  });

  it('commit: the container is not left frozen, and the image store still works', async () => {
    await crash(
      'commit',
      (id) => ['commit', id],
      detached,
      (ids) => {
        // The next command thaws a container that a killed commit paused.
        bounded(['ps']);
        for (const id of ids) {
          const state = join('/sys/fs/cgroup/freezer/box', id, 'freezer.state');
          if (existsSync(state)) expect(readFileSync(state, 'utf8').trim(), `seed ${seed}`).toBe('THAWED');
        }
      },
    );
    const prune = bounded(['image', 'prune', '-f']);
    expect(prune.code, prune.stderr).toBe(0);
    expect(readdirSync(join(env.root, 'image/tmp'))).toEqual([]);
    expect(bounded(['images', '-q']).stdout.trim().split('\n')).toHaveLength(1);
  });

  it('frees a container whose lock only a process of another PID namespace holds', async () => {
    // What a container's first process is while it waits at its sync point and its box is
    // killed: the box's files, the lock among them, held in a new PID namespace. Made here
    // with flock(1) and unshare(1), both then killed, so that it happens every time; with the
    // marker that start would have written before it made anything.
    const id = await made(['create', 'busybox', 'sleep', '30']);
    ours.add(id);
    writeFileSync(join(env.root, 'containers', id, 'starting'), '');
    const holder = spawn(
      'flock',
      [join(env.root, 'containers', id, 'lock'), 'unshare', '-pf', 'sleep', '300'],
      {
        stdio: 'ignore',
      },
    );
    let child: number | undefined;
    await waitFor(() => {
      const unshare = childrenOf(holder.pid!)[0];
      child = unshare === undefined ? undefined : childrenOf(unshare)[0];
      if (child !== undefined) process.kill(unshare!, 'SIGKILL');
      return child !== undefined;
    });
    holder.kill('SIGKILL');
    await waitFor(() => childrenOf(holder.pid!).length === 0 && !existsSync(`/proc/${holder.pid}/fd`));
    expect(readlinkSync(`/proc/${child}/ns/pid`)).not.toBe(readlinkSync('/proc/self/ns/pid'));
    // The next command kills it (its box is gone), and the container can be removed.
    expect(bounded(['ps', '-a', '-q', '--no-trunc']).stdout.trim()).toBe(id);
    await waitFor(() => !existsSync(`/proc/${child}/fd/0`));
    await removeEverything('a lock held by a process of another PID namespace');
  });

  it('a volume removal cut short is finished by the next command; one still going is left to its remover', () => {
    // What `volume rm` leaves when it dies between moving the volume out of sight and removing
    // it (or with its rm(1), killed by a Ctrl-C to both): made by hand, so that it happens every
    // time. A pid above the kernel's pid_max was never a process's.
    const volumes = join(env.root, 'volumes');
    mkdirSync(volumes, { recursive: true });
    const dead = join(volumes, '.removing-0123456789abcdef-4194305-1');
    mkdirSync(join(dead, '_data', 'a'), { recursive: true });
    writeFileSync(join(dead, '_data', 'a', 'f'), 'left');
    symlinkSync('/etc', join(dead, '_data', 'etc'));
    const start = readFileSync(`/proc/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19];
    const live = join(volumes, `.removing-fedcba9876543210-${process.pid}-${start}`);
    mkdirSync(live);
    try {
      const ps = bounded(['ps', '-a']);
      expect(ps.code, ps.stderr).toBe(0);
      expect(existsSync(dead)).toBe(false);
      expect(readdirSync(volumes).filter((entry) => entry.startsWith('.removing-'))).toEqual([
        `.removing-fedcba9876543210-${process.pid}-${start}`,
      ]);
      expect(existsSync('/etc/passwd')).toBe(true);
      expect(existsSync(live)).toBe(true);
    } finally {
      rmSync(live, { recursive: true, force: true });
    }
  });

  it('a cgroup removal cut short (gone from some hierarchies only): the next command finishes it', async () => {
    // What a box killed inside its cgroup teardown leaves: the record of a container whose
    // owner (the service) and process are dead, its cgroup already gone from cpuset and
    // freezer but still in the other hierarchies. Made by hand, so that it happens every time.
    const id = await detached();
    ours.add(id);
    const init = Number(boxOk(env.root, ['inspect', '-f', '{{.State.Pid}}', id]).trim());
    const service = servicePid(env.root);
    expect(service, 'the box service').toBeDefined();
    process.kill(service!, 'SIGKILL');
    process.kill(init, 'SIGKILL');
    for (const controller of ['cpuset', 'freezer']) {
      const dir = join('/sys/fs/cgroup', controller, 'box', id);
      // The killed process leaves its cgroup once it is reaped (by the host's init, in its time).
      await waitFor(() => {
        try {
          rmdirSync(dir);
          return true;
        } catch {
          return false;
        }
      }, 10_000);
    }
    expect(existsSync(join('/sys/fs/cgroup/memory/box', id))).toBe(true);
    const ps = bounded(['ps', '-a', '--format', '{{.ID}} {{.Status}}', '--no-trunc']);
    expect(ps.code, ps.stderr).toBe(0);
    expect(ps.stdout).toMatch(new RegExp(`^${id} Exited`));
    expect(existsSync(join('/sys/fs/cgroup/memory/box', id))).toBe(false);
    await removeEverything('a cgroup left in some hierarchies only');
  });

  it('rm -f', async () => {
    await crash('rm -f', (id) => ['rm', '-f', id], detached);
  });
});
