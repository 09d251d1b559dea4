// Unpack of a ~200 MB layer with many small files: GNU `tar -xf` against unpackLayer, interleaved.
// Run after a build: `pnpm --filter @box/image build && node packages/image/bench/unpack.bench.mjs`.
// Prints the median of 3 rounds each and unpackLayer's throughput as a ratio of tar's (target ≥ 0.8).
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unpackLayer } from '../dist/index.js';

const FILES = Number(process.env.BENCH_FILES ?? 40_000);
const ROUNDS = 3;
const work = mkdtempSync(join(tmpdir(), 'box-image-bench-'));

const print = (line) => process.stdout.write(`${line}\n`);

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

try {
  // A tree of FILES files, 1–9 KB (average ~5 KB), 100 per directory, then one plain tar of it.
  const src = join(work, 'src');
  let bytes = 0;
  const chunk = Buffer.alloc(9 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7919) & 0xff;
  for (let i = 0; i < FILES; i++) {
    const dir = join(src, `d${Math.floor(i / 100)}`);
    if (i % 100 === 0) mkdirSync(dir, { recursive: true });
    const size = 1024 + ((i * 2654435761) % (8 * 1024));
    writeFileSync(join(dir, `f${i}`), chunk.subarray(0, size));
    bytes += size;
  }
  const layer = join(work, 'layer.tar');
  execFileSync('tar', ['-cf', layer, '-C', src, '.']);
  rmSync(src, { recursive: true, force: true });
  const tarBytes = statSync(layer).size;
  print(
    `layer: ${FILES} files, ${(bytes / 1e6).toFixed(0)} MB of data, ${(tarBytes / 1e6).toFixed(0)} MB tar`,
  );

  const tarTimes = [];
  const boxTimes = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const a = join(work, `tar-${round}`);
    mkdirSync(a);
    execFileSync('sync');
    let t = process.hrtime.bigint();
    execFileSync('tar', ['-xf', layer, '-C', a]);
    tarTimes.push(Number(process.hrtime.bigint() - t) / 1e9);
    rmSync(a, { recursive: true, force: true });

    const b = join(work, `box-${round}`);
    execFileSync('sync');
    t = process.hrtime.bigint();
    await unpackLayer(createReadStream(layer, { highWaterMark: 1 << 20 }), b);
    boxTimes.push(Number(process.hrtime.bigint() - t) / 1e9);
    rmSync(b, { recursive: true, force: true });
    print(
      `round ${round}: tar -xf ${tarTimes.at(-1).toFixed(2)} s, unpackLayer ${boxTimes.at(-1).toFixed(2)} s`,
    );
  }
  const tarMedian = median(tarTimes);
  const boxMedian = median(boxTimes);
  const mbps = (s) => (tarBytes / 1e6 / s).toFixed(0);
  print(
    `median: tar -xf ${tarMedian.toFixed(2)} s (${mbps(tarMedian)} MB/s), unpackLayer ${boxMedian.toFixed(2)} s (${mbps(boxMedian)} MB/s)`,
  );
  print(
    `ratio (unpackLayer throughput / tar -x throughput): ${(tarMedian / boxMedian).toFixed(2)} (target >= 0.8)`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
