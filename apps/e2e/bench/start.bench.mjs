#!/usr/bin/env node
/**
 * Container start-up benchmark: the time from "start" to "exited" of `/bin/true`
 * in a container made from the same busybox rootfs, for
 *
 *   library   @box/runtime startContainer() + await exited, timed inside this process
 *             (no Node start-up: what an embedder of the library pays per container);
 *   cli       `node apps/cli/dist/box.js run --rm busybox /bin/true`, a whole CLI
 *             process with its image lookup, container record and overlay;
 *   node -e 0 the floor of any Node CLI: start-up and exit of an empty Node process,
 *             so that `cli - node` is what box itself adds;
 *   runc      `runc run` of an OCI bundle with the same rootfs, the reference.
 *
 * All use one rootfs: the busybox image's single layer in the image store of a temp BOX_ROOT made by
 * scripts/busybox-image.sh. The library runs it as defaultSpec() gives it (not
 * read-only); runc with root.readonly, so that its runs cannot write to it; the
 * CLI through its own overlay on the image.
 *
 * The spawned contenders (cli, node, runc) are timed around spawnSync, so each
 * includes the same fork/exec/wait cost of this process.
 *
 * The contenders run INTERLEAVED: each round runs every contender once (the
 * order rotated each round, so none always runs first, right after the
 * previous round's last), after a few warm-up rounds that are not recorded. Drifts in the
 * machine's load, CPU frequency or page cache during the run then touch every
 * contender alike instead of biasing whichever ran in that stretch, which keeps
 * the ratios meaningful on a small shared machine.
 *
 * Targets (reported, not enforced): library <= 0.25 x runc, cli <= node -e 0 + 15 ms.
 * Exit status: 0 when every contender ran every time (targets met or not), 1 when
 * a contender failed or something was left behind (runc container, cgroup, mount).
 *
 * Usage: pnpm bench (root) or `node bench/start.bench.mjs` in apps/e2e, as root.
 * Env: BENCH_ITERATIONS (recorded rounds, default 30).
 */
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { defaultSpec, startContainer } from '@box/runtime';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BOX_JS = join(REPO, 'apps/cli/dist/box.js');
const IMAGE_SCRIPT = join(REPO, 'scripts/busybox-image.sh');

const WARMUP_ROUNDS = 3;
const ITERATIONS = parseIterations(process.env.BENCH_ITERATIONS);
const TARGET_LIBRARY_RUNC_RATIO = 0.25;
const TARGET_CLI_OVER_NODE_MS = 15;
/** runc container ids (and so their cgroups) start with this; unique per run. */
const RUNC_ID_PREFIX = `box-bench-${process.pid}-`;

function parseIterations(value) {
  if (value === undefined || value === '') return 30;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`bench: BENCH_ITERATIONS must be a positive integer, not "${value}"`);
    process.exit(2);
  }
  return n;
}

/** spawnSync that throws, with the command's stderr, unless the command exits 0. */
function run(command, args, options = {}) {
  const result = spawnSync(command, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    ...options,
  });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  if (result.status !== 0) {
    const how = result.signal ? `signal ${result.signal}` : `exit code ${result.status}`;
    const stderr = result.stderr ? `: ${result.stderr.trim()}` : '';
    throw new Error(`${[command, ...args].join(' ')} failed with ${how}${stderr}`);
  }
  return result;
}

/** Finds runc on PATH, installing Debian's package when it is missing. */
function ensureRunc() {
  const probe = () => spawnSync('runc', ['--version'], { encoding: 'utf8' });
  let version = probe();
  if (version.error?.code === 'ENOENT') {
    console.error('bench: runc not found, installing the Debian package "runc"');
    const apt = {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    };
    if (spawnSync('apt-get', ['install', '-y', '-qq', 'runc'], apt).status !== 0) {
      run('apt-get', ['update', '-qq'], apt);
      run('apt-get', ['install', '-y', '-qq', 'runc'], apt);
    }
    version = probe();
  }
  if (version.error || version.status !== 0) {
    throw new Error(`runc does not run: ${version.error?.message ?? version.stderr}`);
  }
  return version.stdout.split('\n')[0].replace(/^runc version /, '');
}

/** An OCI bundle for runc: `runc spec`'s config running /bin/true on the read-only shared rootfs. */
function makeRuncBundle(bundle, rootfs) {
  mkdirSync(bundle);
  run('runc', ['spec'], { cwd: bundle });
  const configPath = join(bundle, 'config.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8'));
  config.process.args = ['/bin/true'];
  config.process.terminal = false;
  config.root = { path: rootfs, readonly: true };
  writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
}

/** The contenders; each run() starts one container (or process) and resolves once it has exited with 0. */
function makeContenders({ rootfs, boxRoot, runcRoot, bundle, devNull }) {
  const cliEnv = { ...process.env, BOX_ROOT: boxRoot };
  let runcCount = 0;
  return [
    {
      name: 'library',
      async run() {
        const c = await startContainer({
          spec: defaultSpec({ rootfs, args: ['/bin/true'] }),
          stdio: [devNull, devNull, devNull],
        });
        const status = await c.exited;
        if (status.exitCode !== 0) throw new Error(`/bin/true ended with ${JSON.stringify(status)}`);
      },
    },
    {
      name: 'cli',
      run: () => run(process.execPath, [BOX_JS, 'run', '--rm', 'busybox', '/bin/true'], { env: cliEnv }),
    },
    {
      // Same env as the CLI so that both Node processes start alike.
      name: 'node -e 0',
      run: () => run(process.execPath, ['-e', '0'], { env: cliEnv }),
    },
    {
      // `runc run` (not detached) deletes the container when its process exits.
      name: 'runc',
      run: () =>
        run('runc', ['--root', runcRoot, 'run', '--bundle', bundle, `${RUNC_ID_PREFIX}${runcCount++}`]),
    },
  ];
}

let interrupted = false;

/** Runs warm-up + measured rounds, round-robin; returns the samples (ms) per contender name. */
async function measure(contenders) {
  const samples = new Map(contenders.map((c) => [c.name, []]));
  const rounds = WARMUP_ROUNDS + ITERATIONS;
  for (let round = 0; round < rounds; round++) {
    // Rotate the order each round: contender k runs at position (k - round) mod n.
    for (let i = 0; i < contenders.length; i++) {
      if (interrupted) throw new Error('interrupted');
      const contender = contenders[(round + i) % contenders.length];
      const start = performance.now();
      try {
        await contender.run();
      } catch (error) {
        throw new Error(`${contender.name} failed in round ${round + 1}: ${error.message}`);
      }
      const elapsed = performance.now() - start;
      if (round >= WARMUP_ROUNDS) samples.get(contender.name).push(elapsed);
    }
  }
  return samples;
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Nearest-rank percentile. */
function percentile(values, p) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)];
}

function report(samples) {
  const rows = [...samples].map(([name, values]) => ({
    name,
    median: median(values),
    p90: percentile(values, 90),
  }));
  const width = Math.max(...rows.map((r) => r.name.length), 'contender'.length);
  console.log(`${'contender'.padEnd(width)}  ${'median ms'.padStart(9)}  ${'p90 ms'.padStart(8)}`);
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(width)}  ${r.median.toFixed(1).padStart(9)}  ${r.p90.toFixed(1).padStart(8)}`,
    );
  }
  const m = Object.fromEntries(rows.map((r) => [r.name, r.median]));
  const ratio = m.library / m.runc;
  const overhead = m.cli - m['node -e 0'];
  console.log('');
  console.log(`library / runc = ${ratio.toFixed(2)} (target <= ${TARGET_LIBRARY_RUNC_RATIO})`);
  console.log(`cli - node = ${overhead.toFixed(1)} ms (target <= ${TARGET_CLI_OVER_NODE_MS})`);
  const verdict = (ok) => (ok ? 'met' : 'MISSED');
  console.log(
    `targets: library/runc ${verdict(ratio <= TARGET_LIBRARY_RUNC_RATIO)}, ` +
      `cli-node ${verdict(overhead <= TARGET_CLI_OVER_NODE_MS)}`,
  );
}

/**
 * Removes what the run may have left: runc containers in our state root, mounts
 * under the temp dir (unmounted before rm -r so it cannot descend into them),
 * runc cgroups named with our prefix, then the temp dir. Returns the problems
 * found; a clean run has none.
 */
function cleanUp(tmp, runcRoot) {
  const problems = [];
  const attempt = (what, fn) => {
    try {
      fn();
    } catch (error) {
      problems.push(`${what}: ${error.message}`);
    }
  };
  attempt('runc state', () => {
    const list = spawnSync('runc', ['--root', runcRoot, 'list', '-q'], { encoding: 'utf8' });
    for (const id of (list.stdout ?? '').split('\n').filter(Boolean)) {
      problems.push(`runc container ${id} was left behind`);
      spawnSync('runc', ['--root', runcRoot, 'delete', '-f', id]);
    }
  });
  attempt('mounts', () => {
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((line) => line.split(' ')[4])
      .filter((point) => point === tmp || point?.startsWith(`${tmp}/`))
      .sort((a, b) => b.length - a.length);
    for (const point of mounts) {
      problems.push(`mount ${point} was left behind`);
      run('umount', ['-l', point]);
    }
  });
  attempt('cgroups', () => {
    const found = spawnSync('find', ['/sys/fs/cgroup', '-type', 'd', '-name', `${RUNC_ID_PREFIX}*`], {
      encoding: 'utf8',
    });
    const dirs = (found.stdout ?? '').split('\n').filter(Boolean);
    for (const dir of dirs.sort((a, b) => b.length - a.length)) {
      problems.push(`cgroup ${dir} was left behind`);
      rmdirSync(dir);
    }
  });
  attempt('temp dir', () => rmSync(tmp, { recursive: true, force: true }));
  return problems;
}

async function main() {
  const runcVersion = ensureRunc();
  const tmp = mkdtempSync(join(tmpdir(), 'box-bench-'));
  const boxRoot = join(tmp, 'box');
  const runcRoot = join(tmp, 'runc-state');
  const bundle = join(tmp, 'bundle');
  let devNull;
  let failed = false;
  try {
    run('bash', [IMAGE_SCRIPT], { env: { ...process.env, BOX_ROOT: boxRoot } });
    // The busybox image has one layer: its directory is the rootfs the CLI's overlay stacks.
    const inspect = spawnSync(process.execPath, [BOX_JS, 'image', 'inspect', 'busybox'], {
      env: { ...process.env, BOX_ROOT: boxRoot },
      encoding: 'utf8',
    });
    const [diffID] = JSON.parse(inspect.stdout)[0].RootFS.Layers;
    const rootfs = join(boxRoot, 'image/layers', diffID.replace('sha256:', ''), 'diff');
    makeRuncBundle(bundle, rootfs);
    mkdirSync(runcRoot);
    devNull = openSync('/dev/null', 'r+');

    console.log(
      `box start-up bench: /bin/true in busybox, ${ITERATIONS} rounds after ${WARMUP_ROUNDS} warm-up, ` +
        `interleaved; node ${process.version}, runc ${runcVersion}, ${availableParallelism()} CPUs`,
    );
    const samples = await measure(makeContenders({ rootfs, boxRoot, runcRoot, bundle, devNull }));
    report(samples);

    const records = readdirSync(join(boxRoot, 'containers'));
    if (records.length > 0) throw new Error(`box run --rm left ${records.length} container record(s)`);
  } catch (error) {
    failed = true;
    console.error(`bench: ${error.message}`);
  } finally {
    if (devNull !== undefined) closeSync(devNull);
    const problems = cleanUp(tmp, runcRoot);
    for (const problem of problems) console.error(`bench: ${problem}`);
    if (problems.length > 0) failed = true;
  }
  return failed ? 1 : 0;
}

// A first Ctrl-C stops after the current contender and cleans up; a second one exits at once.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
  });
}

// Exit explicitly: a failed library start may leave a watched child keeping the loop alive.
process.exit(
  await main().catch((error) => {
    console.error(`bench: ${error.message}`);
    return 1;
  }),
);
