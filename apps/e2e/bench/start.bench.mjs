#!/usr/bin/env node
/**
 * Start-up benchmark: what it costs to start a container, or a process in a running one, or
 * just a `box` command, side by side with the reference in ONE run:
 *
 *   library run    @box/runtime startContainer() + await exited of `true`, timed inside this
 *                  process (no Node start-up: what an embedder of the library pays per container)
 *   runc run       `runc run` of an OCI bundle with the same rootfs, the reference for it;
 *   library run [seccomp], runc run [seccomp]
 *                  the same with docker's default seccomp profile (resolved for docker's default
 *                  capabilities) in the config: box compiles it to BPF (cached in the process,
 *                  as a long-lived embedder or the box service sees it), runc through libseccomp;
 *   library exec   @box/runtime execInContainer() + await exited of `true` into a container
 *                  this process started with startContainer() (running `sleep`, in its own cgroup)
 *   runc exec      `runc exec ID true` into a `runc run -d` container of the same rootfs (`sleep`);
 *   box run        `node apps/cli/dist/box.js run --rm busybox true`: a whole CLI process with
 *                  its image lookup, container record and overlay (and, cold in each process,
 *                  its seccomp profile resolved and compiled) and the default bridge network;
 *                  also with seccomp=unconfined, and with --network none;
 *   box exec       `box exec ID true` into a detached `box run -d busybox sleep 1000`;
 *   box ps         `box ps` (one running container), `box images` (one image);
 *   node -e 0      the floor of any Node CLI: start-up and exit of an empty Node process,
 *                  so that `box X - node` is what box itself adds.
 *
 * Every spawned Node process (node -e 0 and the box commands) runs twice per round: with
 * NODE_EXTRA_CA_CERTS unset and set to the system's CA bundle (Node then reads the
 * certificates at start-up), so that each `box X - node` is given for both.
 *
 * All use one rootfs: the busybox image's single layer in the image store of a temp BOX_ROOT made by
 * scripts/busybox-image.sh. The library runs it as defaultSpec() gives it (not
 * read-only); runc with root.readonly, so that its runs cannot write to it; the
 * CLI through its own overlay on the image.
 *
 * The spawned contenders are timed around spawnSync, so each includes the same
 * fork/exec/wait cost of this process.
 *
 * The contenders run INTERLEAVED: each round runs every contender once (the
 * order rotated each round, so none always runs first, right after the
 * previous round's last), after a few warm-up rounds that are not recorded. Drifts in the
 * machine's load, CPU frequency or page cache during the run then touch every
 * contender alike instead of biasing whichever ran in that stretch, which keeps
 * the ratios meaningful on a small shared machine. Figures are differences or
 * ratios of the medians.
 *
 * Targets (reported, not enforced): box run and box exec <= node -e 0 + 15 ms, box ps and
 * box images <= node -e 0 + 10 ms (each with NODE_EXTRA_CA_CERTS unset and set),
 * library run <= 0.25 x runc run, library exec <= 0.25 x runc exec, the seccomp filter's cost per
 * container (library run [seccomp] - library run, and box run - box run unconfined) <= 1 ms, the
 * default bridge network's cost per container (box run - box run --network none) <= 15 ms.
 * Exit status: 0 when every contender ran every time (targets met or not), 1 when
 * a contender failed or something was left behind (runc container, cgroup, mount,
 * box container or its service).
 *
 * Usage: pnpm bench (root) or `node bench/start.bench.mjs` in apps/e2e, as root.
 * Env: BENCH_ITERATIONS (recorded rounds, default 30).
 */
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
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
import { DEFAULT_CAPABILITIES, defaultSpec, execInContainer, startContainer } from '@box/runtime';
import { DOCKER_DEFAULT_PROFILE, resolveProfile } from '@box/runtime/seccomp';
import {
  ensureRunc,
  isInterrupted,
  median,
  percentile,
  positiveInteger,
  printTargets,
  problemList,
  removeRootNetworks,
  run,
  runBench,
  sleep,
  unmountUnder,
} from './lib.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BOX_JS = join(REPO, 'apps/cli/dist/box.js');
const IMAGE_SCRIPT = join(REPO, 'scripts/busybox-image.sh');
/** The CA bundle given as NODE_EXTRA_CA_CERTS in the "set" variant. */
const CA_CERTS = '/etc/ssl/certs/ca-certificates.crt';

const WARMUP_ROUNDS = 3;
const ITERATIONS = positiveInteger('BENCH_ITERATIONS', 30, 'bench');
/** runc container ids, their cgroups and the library's exec container's cgroup start with this; unique per run. */
const RUN_PREFIX = `box-bench-${process.pid}-`;
const RUNC_EXEC_ID = `${RUN_PREFIX}exec`;
const LIBRARY_CGROUP = `${RUN_PREFIX}library`;

/** The CLI commands compared with `node -e 0`, and how much they may add to it. */
const CLI_COMMANDS = [
  { name: 'box run --rm busybox true', args: () => ['run', '--rm', 'busybox', 'true'], targetMs: 15 },
  { name: 'box exec ID true', args: (ctx) => ['exec', ctx.boxExecId, 'true'], targetMs: 15 },
  { name: 'box ps', args: () => ['ps'], targetMs: 10 },
  { name: 'box images', args: () => ['images'], targetMs: 10 },
];
/** What the seccomp filter costs a container: the same start with and without it. */
const SECCOMP_COSTS = [
  {
    figure: 'seccomp, library: library run [seccomp] - library run',
    with: 'library run [seccomp]',
    without: 'library run',
    targetMs: 1,
  },
  {
    figure: 'seccomp, CLI: box run - box run unconfined',
    with: 'box run --rm busybox true',
    without: 'box run unconfined',
    targetMs: 1,
  },
];
/** What the default bridge network costs a container: the same run with --network none. */
const NETWORK_COSTS = [
  {
    figure: 'network, CLI: box run - box run --network none',
    with: 'box run --rm busybox true',
    without: 'box run --network none',
    targetMs: 15,
  },
];
/** The library contenders compared with runc, and the ratio they may reach. */
const RATIOS = [
  { library: 'library run', runc: 'runc run', target: 0.25 },
  { library: 'library run [seccomp]', runc: 'runc run [seccomp]', target: 0.25 },
  { library: 'library exec', runc: 'runc exec', target: 0.25 },
];
const NODE = 'node -e 0';
/** The two environments of every spawned Node process; `label` ends the contender's name. */
const VARIANTS = [
  { label: '', caption: 'NODE_EXTRA_CA_CERTS unset' },
  { label: ' [CA]', caption: 'NODE_EXTRA_CA_CERTS set' },
];

/**
 * The environments of the spawned Node processes (node -e 0 and box alike): NODE_EXTRA_CA_CERTS
 * unset, and set to the CA bundle, which must exist (else the "set" figures would mean nothing).
 */
function makeEnvs(boxRoot) {
  // A short idle time, so that the service of the detached container leaves soon after it is removed.
  const unset = { ...process.env, BOX_ROOT: boxRoot, BOX_SERVICE_IDLE_MS: '1000' };
  delete unset.NODE_EXTRA_CA_CERTS;
  return [unset, { ...unset, NODE_EXTRA_CA_CERTS: CA_CERTS }];
}

/** Throws unless the CA bundle for the NODE_EXTRA_CA_CERTS variant is a readable, non-empty file. */
function checkCaCerts() {
  let bytes;
  try {
    bytes = readFileSync(CA_CERTS).length;
  } catch (error) {
    throw new Error(`the CA bundle for NODE_EXTRA_CA_CERTS cannot be read: ${error.message}`);
  }
  if (bytes === 0) throw new Error(`the CA bundle for NODE_EXTRA_CA_CERTS is empty: ${CA_CERTS}`);
}

/** An OCI bundle for runc: `runc spec`'s config running `args` on the read-only shared rootfs. */
function makeRuncBundle(bundle, rootfs, args, seccomp) {
  mkdirSync(bundle);
  run('runc', ['spec'], { cwd: bundle });
  const configPath = join(bundle, 'config.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8'));
  config.process.args = args;
  config.process.terminal = false;
  config.root = { path: rootfs, readonly: true };
  if (seccomp) config.linux.seccomp = seccomp;
  writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
}

/**
 * `runc run -d`: the container's process inherits runc's stdio, so none of it may be a pipe
 * (spawnSync would wait for it to close); runc's errors go to a file instead.
 */
function runcRunDetached(runcRoot, bundle, id, logPath) {
  const log = openSync(logPath, 'w');
  try {
    const result = spawnSync('runc', ['--root', runcRoot, 'run', '-d', '--bundle', bundle, id], {
      stdio: ['ignore', 'ignore', log],
    });
    if (result.error) throw new Error(`runc: ${result.error.message}`);
    if (result.status !== 0) {
      throw new Error(`runc run -d ${id} failed (${result.status}): ${readFileSync(logPath, 'utf8').trim()}`);
    }
  } finally {
    closeSync(log);
  }
}

/** The contenders; each run() starts one container (or process) and resolves once it has exited with 0. */
function makeContenders(ctx) {
  const { rootfs, runcRoot, bundle, devNull, envs } = ctx;
  let runcCount = 0;
  const contenders = [
    {
      name: 'library run',
      async run() {
        const c = await startContainer({
          spec: defaultSpec({ rootfs, args: ['true'] }),
          stdio: [devNull, devNull, devNull],
        });
        const status = await c.exited;
        if (status.exitCode !== 0) throw new Error(`true ended with ${JSON.stringify(status)}`);
      },
    },
    {
      // `runc run` (not detached) deletes the container when its process exits.
      name: 'runc run',
      run: () => run('runc', ['--root', runcRoot, 'run', '--bundle', bundle, `${RUN_PREFIX}${runcCount++}`]),
    },
    {
      name: 'library run [seccomp]',
      async run() {
        const spec = defaultSpec({ rootfs, args: ['true'] });
        spec.linux.seccomp = ctx.seccomp;
        const c = await startContainer({ spec, stdio: [devNull, devNull, devNull] });
        const status = await c.exited;
        if (status.exitCode !== 0) throw new Error(`true ended with ${JSON.stringify(status)}`);
      },
    },
    {
      name: 'runc run [seccomp]',
      run: () =>
        run('runc', [
          '--root',
          runcRoot,
          'run',
          '--bundle',
          ctx.seccompBundle,
          `${RUN_PREFIX}${runcCount++}`,
        ]),
    },
    {
      name: 'box run --network none',
      run: () =>
        run(process.execPath, [BOX_JS, 'run', '--rm', '--network', 'none', 'busybox', 'true'], {
          env: envs[0],
        }),
    },
    {
      name: 'box run unconfined',
      run: () =>
        run(
          process.execPath,
          [BOX_JS, 'run', '--rm', '--security-opt', 'seccomp=unconfined', 'busybox', 'true'],
          {
            env: envs[0],
          },
        ),
    },
    {
      name: 'library exec',
      async run() {
        const p = await execInContainer({
          pid: ctx.library.pid,
          process: { ...ctx.librarySpec.process, args: ['true'] },
          cgroupsPath: LIBRARY_CGROUP,
          stdio: [devNull, devNull, devNull],
          dieWithParent: true,
        });
        const status = await p.exited;
        if (status.exitCode !== 0) throw new Error(`true ended with ${JSON.stringify(status)}`);
      },
    },
    { name: 'runc exec', run: () => run('runc', ['--root', runcRoot, 'exec', RUNC_EXEC_ID, 'true']) },
  ];
  VARIANTS.forEach((variant, i) => {
    // The same env for node and box, so that both Node processes start alike.
    const env = envs[i];
    contenders.push({
      name: `${NODE}${variant.label}`,
      run: () => run(process.execPath, ['-e', '0'], { env }),
    });
    for (const command of CLI_COMMANDS) {
      contenders.push({
        name: `${command.name}${variant.label}`,
        run: () => run(process.execPath, [BOX_JS, ...command.args(ctx)], { env }),
      });
    }
  });
  return contenders;
}

/** Runs warm-up + measured rounds, round-robin; returns the samples (ms) per contender name. */
async function measure(contenders) {
  const samples = new Map(contenders.map((c) => [c.name, []]));
  const rounds = WARMUP_ROUNDS + ITERATIONS;
  for (let round = 0; round < rounds; round++) {
    // Rotate the order each round: contender k runs at position (k - round) mod n.
    for (let i = 0; i < contenders.length; i++) {
      if (isInterrupted()) throw new Error('interrupted');
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

function report(samples) {
  const m = Object.fromEntries([...samples].map(([name, values]) => [name, median(values)]));
  const width = Math.max(...[...samples.keys()].map((name) => name.length), 'contender'.length);
  console.log(`${'contender'.padEnd(width)}  ${'median ms'.padStart(9)}  ${'p90 ms'.padStart(8)}`);
  for (const [name, values] of samples) {
    console.log(
      `${name.padEnd(width)}  ${m[name].toFixed(1).padStart(9)}  ${percentile(values, 90).toFixed(1).padStart(8)}`,
    );
  }
  console.log(`([CA]: NODE_EXTRA_CA_CERTS=${CA_CERTS}; without it, unset)`);

  const rows = [];
  for (const variant of VARIANTS) {
    for (const command of CLI_COMMANDS) {
      const overhead = m[`${command.name}${variant.label}`] - m[`${NODE}${variant.label}`];
      rows.push({
        figure: `${command.name} - ${NODE}, ${variant.caption.replace('NODE_EXTRA_CA_CERTS', 'CA')}`,
        value: `${overhead >= 0 ? '+' : ''}${overhead.toFixed(1)} ms`,
        target: `<= +${command.targetMs} ms`,
        met: overhead <= command.targetMs,
      });
    }
  }
  for (const cost of SECCOMP_COSTS) {
    const ms = m[cost.with] - m[cost.without];
    rows.push({
      figure: cost.figure,
      value: `${ms >= 0 ? '+' : ''}${ms.toFixed(2)} ms`,
      target: `<= ${cost.targetMs} ms`,
      met: ms <= cost.targetMs,
    });
  }
  for (const cost of NETWORK_COSTS) {
    const ms = m[cost.with] - m[cost.without];
    rows.push({
      figure: cost.figure,
      value: `${ms >= 0 ? '+' : ''}${ms.toFixed(1)} ms`,
      target: `<= ${cost.targetMs} ms`,
      met: ms <= cost.targetMs,
    });
  }
  for (const { library, runc, target } of RATIOS) {
    const ratio = m[library] / m[runc];
    rows.push({
      figure: `${library} / ${runc}`,
      value: `${ratio.toFixed(2)} x`,
      target: `<= ${target} x`,
      met: ratio <= target,
    });
  }
  printTargets(rows);
  const ca = m[`${NODE}${VARIANTS[1].label}`] - m[NODE];
  const execOverRunc = m['box exec ID true'] - m['runc exec'];
  console.log('');
  console.log(`targets met: ${rows.filter((r) => r.met).length} of ${rows.length}`);
  console.log(
    `(for reference: NODE_EXTRA_CA_CERTS adds ${ca.toFixed(1)} ms to ${NODE}; ` +
      `box exec ID true - runc exec = ${execOverRunc.toFixed(1)} ms)`,
  );
}

/** The containers' cgroups box makes (box/<64 hex>), on every hierarchy (v1) or the unified one. */
function boxCgroups() {
  const parents = ['/sys/fs/cgroup/box'];
  for (const h of readdirSync('/sys/fs/cgroup')) parents.push(join('/sys/fs/cgroup', h, 'box'));
  return parents.flatMap((parent) => {
    try {
      return readdirSync(parent)
        .filter((d) => /^[0-9a-f]{64}$/.test(d))
        .map((d) => join(parent, d));
    } catch {
      return [];
    }
  });
}

/** Processes with BOX_ROOT=boxRoot in their environment: the box service of our detached container. */
function processesOfRoot(boxRoot) {
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(`BOX_ROOT=${boxRoot}`)) {
        pids.push(Number(entry));
      }
    } catch {
      // gone, or a kernel thread
    }
  }
  return pids;
}

/**
 * Removes what the run may have left: box containers (through box, as `box rm -f`) and the
 * box service, runc containers in our state root, mounts under the temp dir (unmounted
 * before rm -r so it cannot descend into them), runc and library cgroups named with our
 * prefix, box cgroups that appeared during the run, then the temp dir. Returns the problems
 * found; a clean run has none.
 */
async function cleanUp({ tmp, boxRoot, runcRoot, env, cgroupsBefore }) {
  const { problems, attempt } = problemList();
  await attempt('box containers', () => {
    if (!existsSync(join(boxRoot, 'containers'))) return;
    const ps = run(process.execPath, [BOX_JS, 'ps', '-a', '-q', '--no-trunc'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const ids = ps.stdout.split('\n').filter(Boolean);
    for (const id of ids) problems.push(`box container ${id} was left behind`);
    if (ids.length > 0) run(process.execPath, [BOX_JS, 'rm', '-f', ...ids], { env });
    const records = readdirSync(join(boxRoot, 'containers'));
    if (records.length > 0) problems.push(`${records.length} box container record(s) were left behind`);
  });
  await attempt('box service', async () => {
    // It leaves by itself once idle (BOX_SERVICE_IDLE_MS=1000 above).
    const end = Date.now() + 10_000;
    while (processesOfRoot(boxRoot).length > 0 && Date.now() < end) await sleep(100);
    for (const pid of processesOfRoot(boxRoot)) {
      problems.push(`process ${pid} of the bench's BOX_ROOT (the box service?) was still running`);
      process.kill(pid, 'SIGKILL');
    }
  });
  await attempt('runc state', () => {
    const list = spawnSync('runc', ['--root', runcRoot, 'list', '-q'], { encoding: 'utf8' });
    for (const id of (list.stdout ?? '').split('\n').filter(Boolean)) {
      problems.push(`runc container ${id} was left behind`);
      spawnSync('runc', ['--root', runcRoot, 'delete', '-f', id]);
    }
  });
  await attempt('mounts', () => unmountUnder(tmp, problems));
  await attempt('cgroups', async () => {
    const found = spawnSync('find', ['/sys/fs/cgroup', '-type', 'd', '-name', `${RUN_PREFIX}*`], {
      encoding: 'utf8',
    });
    const dirs = (found.stdout ?? '').split('\n').filter(Boolean);
    for (const dir of dirs.sort((a, b) => b.length - a.length)) {
      problems.push(`cgroup ${dir} was left behind`);
      rmdirSync(dir);
    }
    // Box's cgroups are named by container id only: the ones that appeared during this run and
    // stay empty are ours (another box on this machine may run containers meanwhile, not leak).
    // They are reported, not removed: they are box's to remove.
    let fresh = boxCgroups().filter((dir) => !cgroupsBefore.has(dir));
    const end = Date.now() + 3000;
    while (fresh.length > 0 && Date.now() < end) {
      await sleep(100);
      fresh = fresh.filter((dir) => existsSync(dir));
    }
    for (const dir of fresh) {
      let procs = '';
      try {
        procs = readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim();
      } catch {
        continue; // gone
      }
      if (procs === '') problems.push(`box cgroup ${dir} was left behind`);
    }
  });
  await attempt('networks', async () => {
    // The temp root's default network: its bridge and firewall chains leave the host with it.
    await removeRootNetworks(boxRoot);
  });
  await attempt('temp dir', () => rmSync(tmp, { recursive: true, force: true }));
  return problems;
}

async function main() {
  const runcVersion = ensureRunc();
  const cgroupsBefore = new Set(boxCgroups());
  const tmp = mkdtempSync(join(tmpdir(), 'box-bench-'));
  const boxRoot = join(tmp, 'box');
  const runcRoot = join(tmp, 'runc-state');
  const bundle = join(tmp, 'bundle');
  const envs = makeEnvs(boxRoot);
  const ctx = { boxRoot, runcRoot, bundle, envs };
  let failed = false;
  try {
    checkCaCerts();
    run('bash', [IMAGE_SCRIPT], { env: envs[0] });
    // The busybox image has one layer: its directory is the rootfs the CLI's overlay stacks.
    const inspect = run(process.execPath, [BOX_JS, 'image', 'inspect', 'busybox'], {
      env: envs[0],
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const [diffID] = JSON.parse(inspect.stdout)[0].RootFS.Layers;
    const rootfs = join(boxRoot, 'image/layers', diffID.replace('sha256:', ''), 'diff');
    ctx.rootfs = rootfs;
    makeRuncBundle(bundle, rootfs, ['true']);
    ctx.seccomp = resolveProfile(DOCKER_DEFAULT_PROFILE, { capabilities: DEFAULT_CAPABILITIES });
    ctx.seccompBundle = join(tmp, 'bundle-seccomp');
    makeRuncBundle(ctx.seccompBundle, rootfs, ['true'], ctx.seccomp);
    makeRuncBundle(join(tmp, 'bundle-sleep'), rootfs, ['sleep', '1000']);
    mkdirSync(runcRoot);
    ctx.devNull = openSync('/dev/null', 'r+');

    // The running containers the exec contenders go into.
    runcRunDetached(runcRoot, join(tmp, 'bundle-sleep'), RUNC_EXEC_ID, join(tmp, 'runc-exec.log'));
    ctx.runcExecStarted = true;
    ctx.librarySpec = defaultSpec({ rootfs, args: ['sleep', '1000'], cgroupsPath: LIBRARY_CGROUP });
    ctx.library = await startContainer({
      spec: ctx.librarySpec,
      stdio: [ctx.devNull, ctx.devNull, ctx.devNull],
      dieWithParent: true,
    });
    const detached = run(process.execPath, [BOX_JS, 'run', '-d', 'busybox', 'sleep', '1000'], {
      env: envs[0],
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    ctx.boxExecId = detached.stdout.trim();

    console.log(
      `box start-up bench: ${ITERATIONS} rounds after ${WARMUP_ROUNDS} warm-up, interleaved; ` +
        `node ${process.version}, runc ${runcVersion}, ${availableParallelism()} CPUs`,
    );
    const samples = await measure(makeContenders(ctx));
    report(samples);
  } catch (error) {
    failed = true;
    console.error(`bench: ${error.message}`);
  } finally {
    // The exec targets, removed as a user would; what this misses, cleanUp finds and reports.
    const teardown = [
      [
        'box rm -f',
        () => ctx.boxExecId && run(process.execPath, [BOX_JS, 'rm', '-f', ctx.boxExecId], { env: envs[0] }),
      ],
      [
        'runc delete -f',
        () => ctx.runcExecStarted && run('runc', ['--root', runcRoot, 'delete', '-f', RUNC_EXEC_ID]),
      ],
      [
        'library container',
        async () => {
          if (!ctx.library) return;
          ctx.library.kill('SIGKILL');
          await ctx.library.exited;
        },
      ],
    ];
    for (const [what, fn] of teardown) {
      try {
        await fn();
      } catch (error) {
        failed = true;
        console.error(`bench: ${what}: ${error.message}`);
      }
    }
    if (ctx.devNull !== undefined) closeSync(ctx.devNull);
    const problems = await cleanUp({ tmp, boxRoot, runcRoot, env: envs[0], cgroupsBefore });
    for (const problem of problems) console.error(`bench: ${problem}`);
    if (problems.length > 0) failed = true;
  }
  return failed ? 1 : 0;
}

await runBench(main);
