#!/usr/bin/env node
/**
 * Runtime benchmark: create + start + delete of `/bin/true` from one OCI bundle, as podman and
 * containerd's shim drive a runtime (one process per step), side by side in ONE run:
 *
 *   runc create+start+delete          `runc --root R create --pid-file F ID`, `runc start ID`,
 *                                     the container's end, `runc delete ID`
 *   box-runtime create+start+delete   the same three commands with `node apps/cli/dist/runtime/box-runtime.js`
 *   library create+start+delete       @box/runtime/oci's OciRuntime: create(), start(), the end,
 *                                     delete(), inside this process (what an embedder pays)
 *   node -e 0                         the floor of any Node CLI, so that `box-runtime X - node`
 *                                     is what box-runtime itself adds to each command.
 *
 * Each step is timed on its own: create, start, the wait for the container's process to end
 * (in this process, through a pidfd opened after create: the same wait for every contender;
 * under the CLIs it has mostly ended by the time `start` returns), delete. A contender's total
 * is the sum of its four steps in the round. delete is runc's plain `delete` (no --force): the
 * container has stopped by then, as when a shim deletes a container whose end it has seen.
 *
 * One bundle for all: `runc spec`'s config running `true` on a read-only busybox rootfs (busybox
 * copied in, `true` a link to it), without ambient capabilities (`runc spec` lists some but no
 * inheritable ones: runc runs the container anyway, box refuses to raise them), and
 * linux.cgroupsPath rewritten before each create to `/box-bench-<pid>-rt/<ID>`, so that no
 * container uses a runtime's default cgroup.
 * Ids are unique per round; each contender has its own state root in the temp dir.
 *
 * A container's stdio is /dev/null, and for the CLIs' `create` a file as stderr (never a pipe:
 * the container keeps create's stdio, and spawnSync would wait for it). That file must stay empty;
 * the library's container is this process's child, so its exit status is read and must be 0.
 *
 * The contenders run INTERLEAVED as in start.bench.mjs: one of each per round, the order rotated
 * every round, after a few warm-up rounds that are not recorded; medians and p90 per step and
 * total, figures from the medians.
 *
 * Targets (reported, not enforced): each box-runtime command <= node -e 0 + 15 ms, and so the
 * three on average ((total - 3 x node -e 0) / 3); library create+start+delete <= 0.25 x runc's.
 * Exit status: 0 when every contender ran every time (targets met or not), 1 when a contender
 * failed or something was left behind (a container's state, process, mount or cgroup).
 *
 * Usage: pnpm bench (root) or `node bench/runtime.bench.mjs` in apps/e2e, as root.
 * Env: BENCH_ITERATIONS (recorded rounds, default 30).
 */
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { openProcess } from '@box/runtime';
import { OciRuntime } from '@box/runtime/oci';
import { tryWait } from '@box/sys';
import {
  ensureRunc,
  isInterrupted,
  median,
  percentile,
  positiveInteger,
  printTargets,
  problemList,
  run,
  runBench,
  sleep,
  unmountUnder,
} from './lib.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BOX_RUNTIME_JS = join(REPO, 'apps/cli/dist/runtime/box-runtime.js');

const WARMUP_ROUNDS = 3;
const ITERATIONS = positiveInteger('BENCH_ITERATIONS', 30, 'bench');
/** The parent cgroup of every container of this run (on each hierarchy); unique per run. */
const CGROUP_PARENT = `box-bench-${process.pid}-rt`;
/** A command that hangs fails the bench instead of holding it. */
const TIMEOUT_MS = 60_000;

const NODE = 'node -e 0';
const STEPS = ['create', 'start', 'wait for exit', 'delete'];
/** What box-runtime may add to node -e 0 per command, and the library's ratio to runc. */
const COMMAND_TARGET_MS = 15;
const RATIO_TARGET = 0.25;

const RUNC = 'runc';
const BOX_RUNTIME = 'box-runtime';
const LIBRARY = 'library';
const total = (who) => `${who} create+start+delete`;
const step = (who, name) => `${who} ${name}`;

/**
 * The bundle: busybox as the rootfs (read-only in the config), `runc spec`'s config running `true`.
 * Returns the config; writeConfig() writes it with each container's cgroup.
 */
function makeBundle(bundle) {
  const rootfs = join(bundle, 'rootfs');
  for (const sub of ['bin', 'dev', 'etc', 'proc', 'sys', 'tmp'])
    mkdirSync(join(rootfs, sub), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
  symlinkSync('busybox', join(rootfs, 'bin/true'));
  run('runc', ['spec'], { cwd: bundle, timeout: TIMEOUT_MS });
  const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  config.process.args = ['true'];
  config.process.terminal = false;
  // `runc spec` lists ambient capabilities but no inheritable ones, which the kernel requires to
  // raise them: runc runs the container anyway, box refuses it. The config does without them.
  delete config.process.capabilities.ambient;
  config.root = { path: 'rootfs', readonly: true };
  return config;
}

function writeConfig(ctx, id) {
  const config = { ...ctx.config, linux: { ...ctx.config.linux, cgroupsPath: `/${CGROUP_PARENT}/${id}` } };
  writeFileSync(join(ctx.bundle, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
}

/** A pinned handle on the container's process, opened while it waits at its gate. */
function pin(pid, who) {
  const proc = Number.isInteger(pid) && pid > 0 ? openProcess(pid) : undefined;
  if (!proc) throw new Error(`${who}: the container's process (pid ${pid}) is gone before start`);
  return proc;
}

/**
 * A CLI contender: `command [...prefix] --root ROOT create|start|delete`. `create` leaves the
 * container's process holding its stdio: /dev/null, and a file as stderr (read after the round).
 */
function cliContender(ctx, who, command, prefix, root) {
  const { tmp, bundle, env } = ctx;
  const pidFile = join(tmp, `${who}.pid`);
  const stderrPath = join(tmp, `${who}.stderr`);
  const runtime = (args, options = {}) =>
    run(command, [...prefix, '--root', root, ...args], { env, timeout: TIMEOUT_MS, ...options });
  let count = 0;
  return {
    name: who,
    async run() {
      const id = `${who}-${++count}`;
      writeConfig(ctx, id);
      rmSync(pidFile, { force: true });
      const times = {};
      const stderr = openSync(stderrPath, 'w');
      try {
        const start = performance.now();
        runtime(['create', '--bundle', bundle, '--pid-file', pidFile, id], {
          stdio: ['ignore', 'ignore', stderr],
        });
        times.create = performance.now() - start;
      } catch (error) {
        throw new Error(`${error.message}: ${readFileSync(stderrPath, 'utf8').trim()}`);
      } finally {
        closeSync(stderr);
      }
      const proc = pin(Number(readFileSync(pidFile, 'utf8')), `${who} create`);
      try {
        let start = performance.now();
        runtime(['start', id]);
        times.start = performance.now() - start;
        start = performance.now();
        await proc.exited;
        times['wait for exit'] = performance.now() - start;
      } finally {
        proc.close();
      }
      const start = performance.now();
      runtime(['delete', id]);
      times.delete = performance.now() - start;
      const written = readFileSync(stderrPath, 'utf8').trim();
      if (written !== '') throw new Error(`the container's stderr (and create's): ${written}`);
      return times;
    },
  };
}

/** The library in this process: the container is its child (create detaches: it is never reaped by the library). */
function libraryContender(ctx) {
  const { bundle, devNull } = ctx;
  let count = 0;
  return {
    name: LIBRARY,
    async run() {
      const id = `${LIBRARY}-${++count}`;
      writeConfig(ctx, id);
      const times = {};
      let start = performance.now();
      const state = await ctx.library.create(id, { bundle, stdio: [devNull, devNull, devNull] });
      times.create = performance.now() - start;
      ctx.libraryPids.add(state.pid);
      const proc = pin(state.pid, `${LIBRARY} create`);
      try {
        start = performance.now();
        await ctx.library.start(id);
        times.start = performance.now() - start;
        start = performance.now();
        await proc.exited;
        times['wait for exit'] = performance.now() - start;
      } finally {
        proc.close();
      }
      const status = tryWait(state.pid);
      ctx.libraryPids.delete(state.pid);
      if (status?.exitCode !== 0) throw new Error(`true ended with ${JSON.stringify(status)}`);
      start = performance.now();
      await ctx.library.delete(id);
      times.delete = performance.now() - start;
      return times;
    },
  };
}

function makeContenders(ctx) {
  return [
    cliContender(ctx, RUNC, 'runc', [], ctx.roots.runc),
    cliContender(ctx, BOX_RUNTIME, process.execPath, [BOX_RUNTIME_JS], ctx.roots.boxRuntime),
    libraryContender(ctx),
    {
      name: NODE,
      run() {
        const start = performance.now();
        run(process.execPath, ['-e', '0'], { env: ctx.env, timeout: TIMEOUT_MS });
        return { [NODE]: performance.now() - start };
      },
    },
  ];
}

/**
 * Runs warm-up + measured rounds, round-robin; returns the samples (ms) per row: each step of a
 * contender (`runc create`, ...) and its total (`runc create+start+delete`), and node -e 0.
 */
async function measure(contenders) {
  const samples = new Map();
  for (const c of contenders) {
    if (c.name === NODE) {
      samples.set(NODE, []);
      continue;
    }
    samples.set(total(c.name), []);
    for (const s of STEPS) samples.set(step(c.name, s), []);
  }
  const rounds = WARMUP_ROUNDS + ITERATIONS;
  for (let round = 0; round < rounds; round++) {
    // Rotate the order each round: contender k runs at position (k - round) mod n.
    for (let i = 0; i < contenders.length; i++) {
      if (isInterrupted()) throw new Error('interrupted');
      const contender = contenders[(round + i) % contenders.length];
      let times;
      try {
        times = await contender.run();
      } catch (error) {
        throw new Error(`${contender.name} failed in round ${round + 1}: ${error.message}`);
      }
      if (round < WARMUP_ROUNDS) continue;
      if (contender.name === NODE) {
        samples.get(NODE).push(times[NODE]);
        continue;
      }
      let sum = 0;
      for (const s of STEPS) {
        samples.get(step(contender.name, s)).push(times[s]);
        sum += times[s];
      }
      samples.get(total(contender.name)).push(sum);
    }
  }
  return samples;
}

const signed = (ms, digits = 1) => `${ms >= 0 ? '+' : ''}${ms.toFixed(digits)} ms`;

function report(samples) {
  const m = Object.fromEntries([...samples].map(([name, values]) => [name, median(values)]));
  // Steps indented under their total.
  const label = (name) => (name === NODE || name.endsWith('create+start+delete') ? name : `  ${name}`);
  const width = Math.max(...[...samples.keys()].map((name) => label(name).length), 'contender'.length);
  console.log(`${'contender'.padEnd(width)}  ${'median ms'.padStart(9)}  ${'p90 ms'.padStart(8)}`);
  for (const [name, values] of samples) {
    console.log(
      `${label(name).padEnd(width)}  ${m[name].toFixed(1).padStart(9)}  ${percentile(values, 90).toFixed(1).padStart(8)}`,
    );
  }

  const rows = [];
  for (const s of ['create', 'start', 'delete']) {
    const overhead = m[step(BOX_RUNTIME, s)] - m[NODE];
    rows.push({
      figure: `${step(BOX_RUNTIME, s)} - ${NODE}`,
      value: signed(overhead),
      target: `<= +${COMMAND_TARGET_MS} ms`,
      met: overhead <= COMMAND_TARGET_MS,
    });
  }
  const perCommand = (m[total(BOX_RUNTIME)] - 3 * m[NODE]) / 3;
  rows.push({
    figure: `${BOX_RUNTIME} per command: (total - 3 x ${NODE}) / 3`,
    value: signed(perCommand),
    target: `<= +${COMMAND_TARGET_MS} ms`,
    met: perCommand <= COMMAND_TARGET_MS,
  });
  const ratio = m[total(LIBRARY)] / m[total(RUNC)];
  rows.push({
    figure: `${total(LIBRARY)} / ${total(RUNC)}`,
    value: `${ratio.toFixed(2)} x`,
    target: `<= ${RATIO_TARGET} x`,
    met: ratio <= RATIO_TARGET,
  });
  printTargets(rows);
  const over = ['create', 'start', 'delete']
    .map((s) => `${s} ${signed(m[step(BOX_RUNTIME, s)] - m[step(RUNC, s)])}`)
    .join(', ');
  const ratios = ['create', 'start', 'delete']
    .map((s) => `${s} ${(m[step(LIBRARY, s)] / m[step(RUNC, s)]).toFixed(2)}`)
    .join(', ');
  console.log('');
  console.log(`targets met: ${rows.filter((r) => r.met).length} of ${rows.length}`);
  console.log(`(for reference: ${BOX_RUNTIME} - ${RUNC}: ${over}; ${LIBRARY} / ${RUNC}: ${ratios})`);
}

/** Processes whose root or command line is in the temp dir: containers and runtimes of this run. */
function processesIn(tmp) {
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const root = readlinkSync(`/proc/${entry}/root`);
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (root === tmp || root.startsWith(`${tmp}/`) || cmdline.includes(tmp)) pids.push(Number(entry));
    } catch {
      // gone, a zombie or a kernel thread
    }
  }
  return pids;
}

/** This run's cgroups: the parent `box-bench-<pid>-rt` on each hierarchy, and the containers' under it. */
function runCgroups() {
  const parents = [];
  for (const hierarchy of readdirSync('/sys/fs/cgroup')) {
    const dir = join('/sys/fs/cgroup', hierarchy, CGROUP_PARENT);
    if (existsSync(dir)) parents.push(dir);
  }
  // The unified hierarchy may be /sys/fs/cgroup itself (cgroup v2 only).
  if (existsSync(join('/sys/fs/cgroup', CGROUP_PARENT))) parents.push(join('/sys/fs/cgroup', CGROUP_PARENT));
  const children = parents.flatMap((parent) =>
    readdirSync(parent, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => join(parent, entry.name)),
  );
  return { parents: [...new Set(parents)], children };
}

/**
 * Removes what the run may have left, reporting each: containers in the three state roots (with
 * their own runtime, forced), their processes, mounts under the temp dir (unmounted before rm -r so
 * it cannot descend into them), the containers' cgroups; then the parent cgroup (runc leaves it
 * when it deletes the last container in it: not counted) and the temp dir. Returns the problems.
 */
async function cleanUp(ctx) {
  const { tmp, roots, env } = ctx;
  const { problems, attempt } = problemList();
  const ids = (root) => (existsSync(root) ? readdirSync(root) : []);
  await attempt('runc state', () => {
    const list = spawnSync('runc', ['--root', roots.runc, 'list', '-q'], {
      encoding: 'utf8',
      timeout: TIMEOUT_MS,
    });
    for (const id of (list.stdout ?? '').split('\n').filter(Boolean)) {
      problems.push(`runc container ${id} was left behind`);
      spawnSync('runc', ['--root', roots.runc, 'delete', '-f', id], { timeout: TIMEOUT_MS });
    }
  });
  await attempt('box-runtime state', () => {
    for (const id of ids(roots.boxRuntime)) {
      problems.push(`box-runtime container ${id} was left behind`);
      spawnSync(process.execPath, [BOX_RUNTIME_JS, '--root', roots.boxRuntime, 'delete', '--force', id], {
        env,
        timeout: TIMEOUT_MS,
      });
    }
  });
  await attempt('library state', async () => {
    for (const id of ids(roots.library)) {
      problems.push(`library container ${id} was left behind`);
      await ctx.library?.delete(id, { force: true });
    }
  });
  await attempt('library children', () => {
    // Reaped each round; one left is a round that failed between create and the end.
    for (const pid of ctx.libraryPids ?? []) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // ended
      }
      tryWait(pid);
    }
  });
  await attempt('processes', async () => {
    for (const pid of processesIn(tmp)) {
      problems.push(`process ${pid} in the temp dir was left behind`);
      process.kill(pid, 'SIGKILL');
    }
    const end = Date.now() + 3000;
    while (processesIn(tmp).length > 0 && Date.now() < end) await sleep(50);
  });
  await attempt('mounts', () => unmountUnder(tmp, problems));
  await attempt('cgroups', async () => {
    const { parents, children } = runCgroups();
    for (const dir of children) {
      problems.push(`cgroup ${dir} was left behind`);
      for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
        problems.push(`process ${pid} in cgroup ${dir} was left behind`);
        process.kill(Number(pid), 'SIGKILL');
      }
    }
    const end = Date.now() + 3000;
    for (const dir of [...children, ...parents]) {
      for (;;) {
        try {
          rmdirSync(dir);
          break;
        } catch (error) {
          if (error.code === 'ENOENT') break;
          if (error.code !== 'EBUSY' || Date.now() > end) throw error;
          await sleep(50);
        }
      }
    }
  });
  await attempt('temp dir', () => rmSync(tmp, { recursive: true, force: true }));
  return problems;
}

async function main() {
  const runcVersion = ensureRunc();
  const tmp = mkdtempSync(join(tmpdir(), 'box-runtime-bench-'));
  // The same environment for node -e 0 and box-runtime; Node reads NODE_EXTRA_CA_CERTS at start-up.
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const ctx = {
    tmp,
    env,
    bundle: join(tmp, 'bundle'),
    roots: { runc: join(tmp, 'runc'), boxRuntime: join(tmp, 'box-runtime'), library: join(tmp, 'library') },
    libraryPids: new Set(),
  };
  let failed = false;
  try {
    mkdirSync(ctx.bundle);
    ctx.config = makeBundle(ctx.bundle);
    ctx.devNull = openSync('/dev/null', 'r+');
    ctx.library = new OciRuntime(ctx.roots.library);
    console.log(
      `box-runtime bench: ${ITERATIONS} rounds after ${WARMUP_ROUNDS} warm-up, interleaved; ` +
        `node ${process.version}, runc ${runcVersion}, ${availableParallelism()} CPUs; NODE_EXTRA_CA_CERTS unset`,
    );
    const samples = await measure(makeContenders(ctx));
    report(samples);
  } catch (error) {
    failed = true;
    console.error(`bench: ${error.message}`);
  } finally {
    const problems = await cleanUp(ctx);
    if (ctx.devNull !== undefined) closeSync(ctx.devNull);
    for (const problem of problems) console.error(`bench: ${problem}`);
    if (problems.length > 0) failed = true;
  }
  return failed ? 1 : 0;
}

await runBench(main);
