import {
  appendFileSync,
  chmodSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { logEntryTime } from './log-time.js';
import { JsonFileLogger, type ReadLogsOptions, readLogs } from './logs.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'box-logs-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Every byte the log reader reads, counted (the reads themselves are fs's). */
const bytesRead = vi.hoisted(() => ({ count: 0 }));
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  return {
    ...fs,
    readSync: (...args: Parameters<typeof fs.readSync>) => {
      const n = fs.readSync(...args);
      bytesRead.count += n;
      return n;
    },
  };
});

const mode = (path: string) => statSync(path).mode & 0o7777;

describe('json-file logs', () => {
  it('are readable by their owner only, rotated files too', () => {
    const path = join(dir, 'json.log');
    const logger = new JsonFileLogger(path, { maxSize: 64, maxFiles: 3 });
    for (let i = 0; i < 5; i++) logger.write('stdout', `secret line ${i}\n`);
    logger.close();
    const files = readdirSync(dir).sort();
    expect(files).toEqual(['json.log', 'json.log.1', 'json.log.2']);
    for (const file of files) expect({ file, mode: mode(join(dir, file)) }).toEqual({ file, mode: 0o600 });
  });

  it('closes a log an older version made readable by others', () => {
    const path = join(dir, 'json.log');
    writeFileSync(path, '');
    chmodSync(path, 0o644);
    new JsonFileLogger(path).close();
    expect(mode(path)).toBe(0o600);
  });
});

describe('reading a window of the log', () => {
  const entry = (n: number) =>
    `${JSON.stringify({ log: `line ${n}\n`, stream: 'stdout', time: `2024-01-01T00:00:0${n}.000000005Z` })}\n`;
  const at = (n: number, nanos = 0n) => logEntryTime(`2024-01-01T00:00:0${n}Z`) + nanos;
  const lines = async (options: ReadLogsOptions) => {
    const out: string[] = [];
    for await (const e of readLogs(join(dir, 'json.log'), options)) out.push(e.log.trim());
    return out;
  };
  beforeEach(() => writeFileSync(join(dir, 'json.log'), [1, 2, 3, 4, 5].map(entry).join('')));

  it('since and until are inclusive, to the nanosecond', async () => {
    expect(await lines({ sinceNs: at(2, 5n), untilNs: at(4, 5n) })).toEqual(['line 2', 'line 3', 'line 4']);
    expect(await lines({ sinceNs: at(2, 6n), untilNs: at(4, 4n) })).toEqual(['line 3']);
    expect(await lines({ sinceNs: at(6) })).toEqual([]);
  });

  it('takes the tail before the window, as docker', async () => {
    expect(await lines({ tail: 2, sinceNs: at(2) })).toEqual(['line 4', 'line 5']);
    expect(await lines({ tail: 3, untilNs: at(3, 5n) })).toEqual(['line 3']);
  });

  it('does not follow past an until that has passed', async () => {
    const started = Date.now();
    expect(await lines({ follow: true, untilNs: at(9) })).toEqual([
      'line 1',
      'line 2',
      'line 3',
      'line 4',
      'line 5',
    ]);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('stops following at an until in the future, with what came before it', async () => {
    const until = BigInt(Date.now() + 400) * 1_000_000n;
    const logger = new JsonFileLogger(join(dir, 'json.log'));
    const writing = setTimeout(() => logger.write('stdout', 'live\n'), 100);
    const started = Date.now();
    try {
      const got = await lines({ follow: true, untilNs: until, pollMs: 20 });
      expect(got.slice(-1)).toEqual(['live']);
      expect(Date.now() - started).toBeGreaterThanOrEqual(380);
      expect(Date.now() - started).toBeLessThan(1500);
    } finally {
      clearTimeout(writing);
      logger.close();
    }
  });
});

describe('reading a large log', () => {
  it('reads it a chunk at a time: lines across chunks whole, a tail of the last lines, a runaway line dropped', async () => {
    const path = join(dir, 'json.log');
    // 3000 lines of ~1 KiB: about 3 MiB, three read chunks, most lines not ending on a boundary.
    const line = (n: number, text = `${n}`.padEnd(1000, 'x')) =>
      `${JSON.stringify({ log: `${text}\n`, stream: 'stdout', time: '2024-01-01T00:00:00Z' })}\n`;
    const body = Array.from({ length: 3000 }, (_, n) => line(n)).join('');
    // A line of 2 MiB without its end (no log line of box's is that long), then a whole one.
    writeFileSync(path, `${body}${'y'.repeat(2 << 20)}\n${line(3000)}`);
    const all: string[] = [];
    for await (const entry of readLogs(path)) all.push(entry.log.slice(0, 4));
    expect(all).toHaveLength(3001);
    expect(all.slice(0, 2)).toEqual(['0xxx', '1xxx']);
    expect(all.at(-1)).toBe('3000');
    const last: string[] = [];
    for await (const entry of readLogs(path, { tail: 2 })) last.push(entry.log.slice(0, 4));
    expect(last).toEqual(['2999', '3000']);
  });
});

describe('the tail of a log', () => {
  const line = (n: number, length = 40) =>
    `${JSON.stringify({ log: `${n} ${'x'.repeat(length)}\n`, stream: 'stdout', time: '2024-01-01T00:00:00Z' })}\n`;
  const numbers = async (path: string, options: ReadLogsOptions) => {
    const out: number[] = [];
    for await (const entry of readLogs(path, options)) out.push(Number.parseInt(entry.log, 10));
    return out;
  };

  it('is the last lines of a reading from the start, whatever the lines and the chunks', async () => {
    const path = join(dir, 'json.log');
    // Seeded, so a failure shows again: lines of 0 to 300 KiB (many across the 1 MiB chunks), torn
    // lines, empty lines, a runaway line, and a line being written at the end.
    let seed = 7;
    const random = (below: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % below;
    };
    for (let round = 0; round < 4; round++) {
      const parts: string[] = [];
      for (let n = 0; n < 60; n++) {
        const kind = random(20);
        if (kind === 0) parts.push('{"log":"torn\n');
        else if (kind === 1) parts.push('\n');
        else if (kind === 2 && round === 3) parts.push(`${'y'.repeat(3 << 20)}\n`);
        else parts.push(line(n, random(5) === 0 ? random(300 << 10) : random(200)));
      }
      if (round % 2 === 0) parts.push('{"log":"being writ');
      writeFileSync(path, parts.join(''));
      const all = await numbers(path, {});
      for (const tail of [0, 1, 2, 7, 30, all.length, all.length + 5])
        expect({ round, tail, got: await numbers(path, { tail }) }).toEqual({
          round,
          tail,
          got: tail === 0 ? [] : all.slice(-tail),
        });
    }
  });

  it('goes back through the rotated files, newest last', async () => {
    const path = join(dir, 'json.log');
    const logger = new JsonFileLogger(path, { maxSize: 200, maxFiles: 4 });
    for (let i = 0; i < 12; i++) logger.write('stdout', `${i}\n`);
    logger.close();
    expect(readdirSync(dir).sort()).toEqual(['json.log', 'json.log.1', 'json.log.2', 'json.log.3']);
    const all = await numbers(path, {});
    expect(all.length).toBeGreaterThan(6);
    expect(all.at(-1)).toBe(11);
    for (const tail of [1, 3, 6, all.length, all.length + 1])
      expect(await numbers(path, { tail })).toEqual(all.slice(-tail));
  });

  it('reads the end of a large log only', async () => {
    const path = join(dir, 'json.log');
    // 64 MiB of log, as a hole (no newline in it), then three lines.
    writeFileSync(path, '');
    truncateSync(path, 64 << 20);
    appendFileSync(path, [1, 2, 3].map((n) => line(n)).join(''));
    bytesRead.count = 0;
    expect(await numbers(path, { tail: 2 })).toEqual([2, 3]);
    expect(bytesRead.count).toBeLessThanOrEqual(1 << 20);
  });

  /** What following the log from a tail of `tail` shows while `write` adds to it. */
  const followed = async (path: string, tail: number, write: () => void) => {
    let stop = () => {};
    const until = new Promise<void>((resolve) => {
      stop = resolve;
    });
    const reading = numbers(path, { tail, follow: true, until, pollMs: 10 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    write();
    await new Promise((resolve) => setTimeout(resolve, 100));
    stop();
    return reading;
  };

  it('follows from where the tail ended: a line being written is shown once, when whole', async () => {
    const path = join(dir, 'json.log');
    writeFileSync(path, `${line(1)}${line(2)}${line(3).slice(0, 20)}`);
    expect(await followed(path, 1, () => appendFileSync(path, `${line(3).slice(20)}${line(4)}`))).toEqual([
      2, 3, 4,
    ]);
    // A tail of none still follows from the end.
    writeFileSync(path, `${line(5)}${line(6)}`);
    expect(await followed(path, 0, () => appendFileSync(path, line(7)))).toEqual([7]);
  });
});
