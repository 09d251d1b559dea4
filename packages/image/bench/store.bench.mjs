// `box import` and `box load` end to end against GNU `tar -xf` of the same uncompressed tar, and
// the store's footprint against the unpacked tree, interleaved.
// Run after a build: `pnpm --filter @box/image build && node packages/image/bench/store.bench.mjs`.
// The tar is shaped like the one the store's issue measured (812 MB, 8.5k files): BENCH_MB of
// data (default 800) in files of 1 KB–190 KB, 100 per directory.
// Targets: import and load throughput ≥ 0.8 × tar's; the store ≤ 1.1 × the unpacked size.
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const { importRootfsTar, loadArchive, openImageStore, saveArchive } = await import(
  process.env.BENCH_IMAGE_DIST ?? '../dist/index.js'
);

const MB = Number(process.env.BENCH_MB ?? 800);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
// Under /var/tmp (disk), not /tmp (possibly tmpfs): the bench measures writing to a disk.
const work = mkdtempSync(join(process.env.BENCH_DIR ?? '/var/tmp', 'box-store-bench-'));

const print = (line) => process.stdout.write(`${line}\n`);
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
/** Disk use of a tree in bytes (`du`, blocks actually allocated). */
const duBlocks = (path) => Number(execFileSync('du', ['-sB1', path]).toString().split('\t')[0]);

async function timed(fn) {
  execFileSync('sync');
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

try {
  const src = join(work, 'src');
  let bytes = 0;
  let files = 0;
  const chunk = Buffer.alloc(190 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7919 + (i >> 10)) & 0xff;
  while (bytes < MB * 1e6) {
    const dir = join(src, `d${Math.floor(files / 100)}`);
    if (files % 100 === 0) mkdirSync(dir, { recursive: true });
    const size = 1024 + ((files * 2654435761) % (189 * 1024));
    chunk[0] = files & 0xff; // no two files alike
    writeFileSync(join(dir, `f${files}`), chunk.subarray(0, size));
    bytes += size;
    files++;
  }
  const layer = join(work, 'layer.tar');
  execFileSync('tar', ['-cf', layer, '-C', src, '.']);
  const unpacked = duBlocks(src);
  rmSync(src, { recursive: true, force: true });
  const tarBytes = statSync(layer).size;
  print(
    `layer: ${files} files, ${(bytes / 1e6).toFixed(0)} MB of data, ${(tarBytes / 1e6).toFixed(0)} MB tar, ` +
      `${(unpacked / 1e6).toFixed(0)} MB on disk unpacked; ${ROUNDS} rounds, interleaved`,
  );

  // A docker-archive of the imported image, for load.
  const seedStore = await openImageStore({ root: join(work, 'seed') });
  await importRootfsTar(seedStore, createReadStream(layer, { highWaterMark: 1 << 20 }), 'bench:1');
  const archive = join(work, 'image.tar');
  await saveArchive(seedStore, ['bench:1'], archive);
  rmSync(join(work, 'seed'), { recursive: true, force: true });

  const times = { tar: [], import: [], load: [] };
  const footprint = { import: 0, load: 0 };
  for (let round = 1; round <= ROUNDS; round++) {
    const out = join(work, 'tar-out');
    mkdirSync(out);
    times.tar.push(await timed(() => execFileSync('tar', ['-xf', layer, '-C', out])));
    rmSync(out, { recursive: true, force: true });

    for (const kind of ['import', 'load']) {
      const root = join(work, `store-${kind}`);
      const store = await openImageStore({ root });
      times[kind].push(
        await timed(() =>
          kind === 'import'
            ? importRootfsTar(store, createReadStream(layer, { highWaterMark: 1 << 20 }), 'bench:1')
            : loadArchive(store, archive),
        ),
      );
      footprint[kind] = duBlocks(root);
      rmSync(root, { recursive: true, force: true });
    }
    print(
      `round ${round}: tar -xf ${times.tar.at(-1).toFixed(2)} s, import ${times.import.at(-1).toFixed(2)} s, ` +
        `load ${times.load.at(-1).toFixed(2)} s`,
    );
  }
  const tar = median(times.tar);
  const rows = [
    ['import throughput / tar -x throughput', tar / median(times.import), '>= 0.8', (v) => v >= 0.8],
    ['load throughput / tar -x throughput', tar / median(times.load), '>= 0.8', (v) => v >= 0.8],
    ['store after import / unpacked size', footprint.import / unpacked, '<= 1.1', (v) => v <= 1.1],
    ['store after load / unpacked size', footprint.load / unpacked, '<= 1.1', (v) => v <= 1.1],
  ];
  print(
    `median: tar -xf ${tar.toFixed(2)} s, import ${median(times.import).toFixed(2)} s, load ${median(times.load).toFixed(2)} s`,
  );
  print(
    `store on disk: after import ${(footprint.import / 1e6).toFixed(0)} MB, after load ${(footprint.load / 1e6).toFixed(0)} MB`,
  );
  for (const [name, value, target, met] of rows)
    print(
      `${name.padEnd(40)} ${value.toFixed(2).padStart(6)}  ${target.padEnd(7)} ${met(value) ? 'met' : 'MISSED'}`,
    );
} finally {
  rmSync(work, { recursive: true, force: true });
}
