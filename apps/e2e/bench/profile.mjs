#!/usr/bin/env node
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { positiveInteger, run } from './lib.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const CLI_DIR = join(REPO, 'apps/cli');
const BOX_JS = join(CLI_DIR, 'dist/box.js');
const DIST_URL = `${pathToFileURL(join(CLI_DIR, 'dist')).href}/`;
const IMAGE_SCRIPT = join(REPO, 'scripts/busybox-image.sh');

const RUNS = positiveInteger('PROFILE_RUNS', 5, 'profile');
const INTERVAL_US = positiveInteger('PROFILE_INTERVAL_US', 200, 'profile');
const KEEP = process.env.PROFILE_KEEP ? resolve(process.env.PROFILE_KEEP) : undefined;
const WARMUP_ROUNDS = 1;

/** The commands profiled: a column each. */
const COMMANDS = [
  { column: 'node -e 0', node: ['-e', '0'] },
  { column: '--version', box: () => ['--version'] },
  { column: 'ps', box: () => ['ps'] },
  { column: 'images', box: () => ['images'] },
  { column: 'run --rm', box: () => ['run', '--rm', 'busybox', 'true'] },
  { column: 'exec', box: (ctx) => ['exec', ctx.execId, 'true'] },
];

const PHASES = [
  ['startup', 'node start-up (bootstrap)'],
  ['load', 'bundle load: resolve, read, compile'],
  ['builtins', 'node builtins the bundle imports'],
  ['koffi', 'koffi load (JS + native addon)'],
  ['eval', 'bundle top-level evaluation'],
  ['sys', 'libc via koffi (@box/sys libc())'],
  ['setup', 'CLI set-up: main(), commander'],
  ['command', 'command: CPU'],
  ['idle', 'command: waiting (idle)'],
  ['gc', 'GC'],
];

/** Runs a command; returns its wall time in ms and the hrtime (µs) it was spawned and reaped at. */
function timed(args, options) {
  const start = process.hrtime.bigint();
  run(process.execPath, args, options);
  const end = process.hrtime.bigint();
  return { ms: Number(end - start) / 1e6, startUs: Number(start / 1000n), endUs: Number(end / 1000n) };
}

// ---------------------------------------------------------------------------------------------
// The bundle's modules: esbuild writes a `// path` comment where each bundled module starts.

const regionCache = new Map();

/** The sorted [line, module] starts of a bundled file (0-based lines), or [] if it has none. */
function regionsOf(url) {
  let regions = regionCache.get(url);
  if (regions) return regions;
  regions = [];
  try {
    const lines = readFileSync(fileURLToPath(url), 'utf8').split('\n');
    lines.forEach((line, i) => {
      const m = /^\/\/ (\S+\.[cm]?[jt]sx?)$/.exec(line);
      if (m) regions.push([i, shortModule(m[1])]);
    });
  } catch {
    // not readable: no regions
  }
  regionCache.set(url, regions);
  return regions;
}

/** `../../node_modules/.pnpm/x@1/node_modules/x/lib/a.js` → `x`; `../../packages/sys/dist/...` → `@box/sys`. */
function shortModule(path) {
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (pkg) return pkg[1];
  const box = /packages\/([^/]+)\//.exec(path);
  if (box) return `@box/${box[1]}`;
  return path.replace(/^(\.\.\/)+/, '');
}

/** The bundled module a frame of a dist file is in: `box.js › @box/image`. */
function moduleOf(frame) {
  const file = frame.url.slice(DIST_URL.length);
  const regions = regionsOf(frame.url);
  let name = '(esbuild runtime)';
  for (const [line, module] of regions) {
    if (line > frame.lineNumber) break;
    name = module;
  }
  return regions.length === 0 ? file : `${file} › ${name}`;
}

// ---------------------------------------------------------------------------------------------
// Sorting a profile's samples into phases.

const isDist = (f) => f.url.startsWith(DIST_URL);
const isKoffi = (f) => /\/koffi|@koromix\/koffi/.test(f.url);
const isCommander = (f) => isDist(f) && moduleOf(f).endsWith('› commander');
const isMainTs = (f) => isDist(f) && /› src\/main\.ts$/.test(moduleOf(f));
/** @box/sys's libc(): koffi.load('libc.so.6') and the declarations of its functions, once per process. */
const isLibcSetUp = (f) =>
  (f.functionName === 'libc' || f.functionName === 'declare') &&
  isDist(f) &&
  moduleOf(f).endsWith('› @box/sys');
const isModuleBody = (f) => f.functionName === '' && f.lineNumber === 0 && f.columnNumber === 0;
const BUILTIN_LOADERS = new Set([
  'compileForPublicLoader',
  'loadBuiltinModule',
  'builtinStrategy',
  'getESMFacade',
]);
const isBuiltinLoad = (f) => BUILTIN_LOADERS.has(f.functionName) && f.url.startsWith('node:internal/');
const isModuleLoader = (f) => f.url.startsWith('node:internal/modules/');
/** Node's own start-up steps: before the main module (pre-execution), or all of `node -e`. */
const isNodeStartup = (f) =>
  f.url === 'node:internal/process/pre_execution' || f.url === 'node:internal/main/eval_string';

/** The phase of one stack (root first, without "(root)"), or undefined: that of the sample before. */
function phaseOfStack(frames) {
  const leaf = frames.at(-1);
  if (leaf.functionName === '(garbage collector)') return 'gc';
  if (leaf.functionName === '(idle)') return 'idle';
  if (leaf.functionName === '(program)') return undefined;
  if (frames.some(isNodeStartup)) return 'startup';
  if (frames.some(isBuiltinLoad)) return 'builtins';
  if (frames.some(isKoffi)) return 'koffi';
  const first = frames.findIndex(isDist);
  if (first >= 0) {
    // Not under a module body: a callback or the continuation after an await, in the command.
    if (frames.some(isLibcSetUp)) return 'sys';
    if (!isModuleBody(frames[first])) return 'command';
    const main = frames.findIndex((f, i) => i > first && isMainTs(f));
    if (main < 0) return 'eval';
    const commander = frames.findIndex((f, i) => i > main && isCommander(f));
    if (commander < 0) return 'setup';
    // Below commander, in box's code again: the action (or its preAction hook).
    return frames.some((f, i) => i > commander && isDist(f) && !isCommander(f)) ? 'command' : 'setup';
  }
  if (frames.some(isModuleLoader)) return 'load';
  return undefined;
}

/** A profile's samples: [{ phase, frame (the leaf's callFrame), ms }], in time order. */
function samplesOf(profile) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stackPhase = new Map();
  const phaseOfNode = (id) => {
    if (!stackPhase.has(id)) {
      const frames = [];
      for (let at = id; at !== undefined; at = parent.get(at)) frames.unshift(nodes.get(at).callFrame);
      stackPhase.set(id, phaseOfStack(frames.slice(1)));
    }
    return stackPhase.get(id);
  };
  const result = [];
  let time = profile.startTime;
  let current = 'startup';
  let started = false;
  for (let i = 0; i < profile.samples.length; i++) {
    time += profile.timeDeltas[i];
    const next = i + 1 < profile.samples.length ? time + profile.timeDeltas[i + 1] : profile.endTime;
    let phase = phaseOfNode(profile.samples[i]);
    // Everything before the main module's loading is Node's own start-up.
    if (!started && phase !== undefined && phase !== 'gc' && phase !== 'idle' && phase !== 'startup') {
      started = true;
    }
    if (!started) phase = phase === 'gc' ? 'gc' : 'startup';
    else if (phase === undefined) phase = current;
    if (phase !== 'gc' && phase !== 'idle') current = phase;
    result.push({
      phase,
      frame: nodes.get(profile.samples[i]).callFrame,
      ms: Math.max(0, next - time) / 1000,
    });
  }
  return result;
}

// ---------------------------------------------------------------------------------------------

function median(values) {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function scriptOf(frame) {
  if (!frame.url)
    return frame.functionName.startsWith('(') ? frame.functionName : `native ${frame.functionName}`;
  if (isDist(frame)) return moduleOf(frame);
  if (isKoffi(frame)) return 'koffi';
  return frame.url.replace(/^file:\/\/.*\/node_modules\//, '');
}

function functionOf(frame) {
  if (!frame.url) return scriptOf(frame);
  const file = isDist(frame) ? moduleOf(frame) : scriptOf(frame);
  return `${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
}

/** Adds ms to map[key]. */
function add(map, key, ms) {
  map.set(key, (map.get(key) ?? 0) + ms);
}

/** Measures everything, interleaved; returns { wall, profiles } per column. */
function measure(ctx) {
  const env = ctx.env;
  const wallContenders = [
    ...COMMANDS.map((c) => ({
      name: c.column,
      args: () => (c.node ? c.node : [BOX_JS, ...c.box(ctx)]),
    })),
    { name: "import('koffi')", args: () => ['-e', "import('koffi')"] },
  ];
  const wall = new Map(wallContenders.map((c) => [c.name, []]));
  const profiled = new Map(COMMANDS.map((c) => [c.column, []]));
  const jobs = [
    ...wallContenders.map((c) => ({ kind: 'wall', c })),
    ...COMMANDS.map((c) => ({ kind: 'profile', c })),
  ];
  for (let round = 0; round < WARMUP_ROUNDS + RUNS; round++) {
    const record = round >= WARMUP_ROUNDS;
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[(round + i) % jobs.length];
      // cwd apps/cli: `import('koffi')` resolves from there, as the bundle's import does.
      const options = { env, cwd: CLI_DIR };
      if (job.kind === 'wall') {
        const t = timed(job.c.args(), options);
        if (record) wall.get(job.c.name).push(t.ms);
        continue;
      }
      const dir = join(ctx.tmp, `prof-${round}-${i}`);
      const args = job.c.node ?? [BOX_JS, ...job.c.box(ctx)];
      const t = timed(
        ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-interval=${INTERVAL_US}`, ...args],
        options,
      );
      const files = readdirSync(dir);
      if (files.length !== 1) throw new Error(`${job.c.column}: ${files.length} profiles in ${dir}`);
      const file = join(dir, files[0]);
      if (record) {
        const profile = JSON.parse(readFileSync(file, 'utf8'));
        profiled.get(job.c.column).push({
          wall: t.ms,
          before: (profile.startTime - t.startUs) / 1000,
          inProfile: (profile.endTime - profile.startTime) / 1000,
          after: (t.endUs - profile.endTime) / 1000,
          samples: samplesOf(profile),
        });
        if (KEEP) renameSync(file, join(KEEP, `${job.c.column.replace(/\W+/g, '_')}-${round}.cpuprofile`));
      }
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return { wall, profiled };
}

function report({ wall, profiled }) {
  const columns = COMMANDS.map((c) => c.column);
  const labelWidth = 42;
  const colWidth = Math.max(...columns.map((c) => c.length)) + 2;
  const row = (label, values) =>
    console.log(
      `${label.padEnd(labelWidth)}${values.map((v) => (Number.isNaN(v) ? '' : v.toFixed(1)).padStart(colWidth)).join('')}`,
    );
  const m = (name) => median(wall.get(name));
  const node = m('node -e 0');

  console.log(`${'ms (medians)'.padEnd(labelWidth)}${columns.map((c) => c.padStart(colWidth)).join('')}`);
  row('wall, no profiler', columns.map(m));
  row(
    '  - node -e 0 (what box adds)',
    columns.map((c) => m(c) - node),
  );
  row(
    'wall, --cpu-prof',
    columns.map((c) => median(profiled.get(c).map((p) => p.wall))),
  );
  row(
    '  before the profiler starts (exec, V8)',
    columns.map((c) => median(profiled.get(c).map((p) => p.before))),
  );
  for (const [phase, label] of PHASES) {
    row(
      `  ${label}`,
      columns.map((c) =>
        median(profiled.get(c).map((p) => p.samples.reduce((s, x) => s + (x.phase === phase ? x.ms : 0), 0))),
      ),
    );
  }
  row(
    '  after it stops (writing it, exit)',
    columns.map((c) => median(profiled.get(c).map((p) => p.after))),
  );
  console.log('');
  const koffi = m("import('koffi')") - node;
  console.log(
    `koffi on its own, no profiler: node -e "import('koffi')" ${m("import('koffi')").toFixed(1)} ms` +
      ` - node -e 0 ${node.toFixed(1)} ms = ${koffi.toFixed(1)} ms`,
  );

  // Where the bundle's load goes, over all box commands' profiles (it is the same work for each).
  const boxRuns = COMMANDS.filter((c) => !c.node).flatMap((c) => profiled.get(c.column));
  const load = breakdown(boxRuns, ['load', 'builtins']);
  console.log('');
  console.log(
    `bundle load + node builtins: ${load.ms.toFixed(1)} ms (mean of every box profile), top self time:`,
  );
  for (const [key, ms] of load.byFunction.slice(0, 6)) console.log(`  ${ms.toFixed(1).padStart(5)}  ${key}`);

  for (const c of COMMANDS) {
    if (c.node) continue;
    const command = breakdown(profiled.get(c.column), ['command']);
    console.log('');
    console.log(
      `box ${c.box({ execId: 'ID' }).join(' ')}: command CPU ${command.ms.toFixed(1)} ms (mean), self time`,
    );
    for (const [key, ms] of command.byScript.slice(0, 5))
      console.log(`  ${ms.toFixed(1).padStart(5)}  ${key}`);
    console.log('  top functions:');
    for (const [key, ms] of command.byFunction.slice(0, 5))
      console.log(`  ${ms.toFixed(1).padStart(5)}  ${key}`);
  }
}

/** The samples of some phases in some profiles: their mean ms, and self time by script and function. */
function breakdown(runs, phases) {
  const byScript = new Map();
  const byFunction = new Map();
  let ms = 0;
  for (const p of runs) {
    for (const s of p.samples) {
      if (!phases.includes(s.phase)) continue;
      ms += s.ms;
      add(byScript, scriptOf(s.frame), s.ms);
      add(byFunction, functionOf(s.frame), s.ms);
    }
  }
  const sorted = (map) =>
    [...map].map(([key, total]) => [key, total / runs.length]).sort((a, b) => b[1] - a[1]);
  return { ms: ms / runs.length, byScript: sorted(byScript), byFunction: sorted(byFunction) };
}

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'box-profile-'));
  const boxRoot = join(tmp, 'box');
  const env = { ...process.env, BOX_ROOT: boxRoot, BOX_SERVICE_IDLE_MS: '1000' };
  delete env.NODE_EXTRA_CA_CERTS;
  const ctx = { tmp, env };
  let failed = false;
  try {
    if (KEEP) mkdirSync(KEEP, { recursive: true });
    run('bash', [IMAGE_SCRIPT], { env });
    ctx.execId = run(process.execPath, [BOX_JS, 'run', '-d', 'busybox', 'sleep', '1000'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    }).stdout.trim();
    const [load1] = loadavg();
    console.log(
      `box start-up profile: ${RUNS} profiled runs per command (sampling every ${INTERVAL_US} µs) and ` +
        `${RUNS} without the profiler, interleaved, after ${WARMUP_ROUNDS} warm-up round; node ${process.version}, ` +
        `${availableParallelism()} CPUs (${cpus()[0]?.model.trim()}), load ${load1.toFixed(2)} at start; ` +
        'NODE_EXTRA_CA_CERTS unset',
    );
    report(measure(ctx));
  } catch (error) {
    failed = true;
    console.error(`profile: ${error.message}`);
  } finally {
    const problem = await cleanUp(ctx, boxRoot);
    if (problem) {
      failed = true;
      console.error(`profile: clean-up: ${problem} (left: ${tmp})`);
    }
  }
  return failed ? 1 : 0;
}

/** Removes the exec target (box rm -f), waits for the box service to leave, removes the temp dir. */
async function cleanUp(ctx, boxRoot) {
  try {
    if (ctx.execId) run(process.execPath, [BOX_JS, 'rm', '-f', ctx.execId], { env: ctx.env });
    if (existsSync(join(boxRoot, 'containers')) && readdirSync(join(boxRoot, 'containers')).length > 0) {
      return 'container records were left behind';
    }
    // The box service leaves once idle (BOX_SERVICE_IDLE_MS above); the temp root goes after it.
    const end = Date.now() + 10_000;
    while (serviceRunning(boxRoot) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    if (serviceRunning(boxRoot)) return `the box service of ${boxRoot} is still running`;
    rmSync(ctx.tmp, { recursive: true, force: true });
    return undefined;
  } catch (error) {
    return error.message;
  }
}

function serviceRunning(boxRoot) {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(`BOX_ROOT=${boxRoot}`))
        return true;
    } catch {
      // gone
    }
  }
  return false;
}

// Ctrl-C reaches the running child too: it fails, and the clean-up runs. A second one exits at once.
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
  });
}

process.exit(await main());
