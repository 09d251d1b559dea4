/**
 * Container logs in docker's json-file layout: one JSON object per line,
 * `{"log":"text\n","stream":"stdout","time":"2024-01-01T00:00:00.000000000Z"}`,
 * rotated by size into `NAME.1` … `NAME.<maxFiles-1>` (newest first), as
 * `--log-opt max-size=, max-file=` do in docker.
 */
import {
  closeSync,
  fchmodSync,
  fstatSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { logEntryTime } from './log-time.js';

export type LogStream = 'stdout' | 'stderr';

export interface LogEntry {
  stream: LogStream;
  /** The text, including its newline when the line was complete. */
  log: string;
  /** RFC 3339 with nanoseconds, UTC. */
  time: string;
}

export interface LogOptions {
  /** Rotate when the file would grow past this many bytes (default: never). */
  maxSize?: number;
  /** Files kept, the live one included (default 1; with maxSize, 1 means truncate). */
  maxFiles?: number;
}

/** Longest line kept in one entry; longer output is split, as docker does at 16 KiB. */
const MAX_LINE = 16 * 1024;

/**
 * The wall clock in nanoseconds, from the monotonic clock counted from one reading of the wall
 * clock: entries of one writer never go back in time, so `--since`/`--until` windows, which
 * compare to the nanosecond, keep their order.
 */
let clockOrigin: bigint | undefined;
function timestamp(): string {
  clockOrigin ??= BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  const now = clockOrigin + process.hrtime.bigint();
  const nanos = String(now % 1_000_000_000n).padStart(9, '0');
  return `${new Date(Number(now / 1_000_000n)).toISOString().slice(0, 19)}.${nanos}Z`;
}

/**
 * A container's output may hold its secrets: the log is readable by its owner only (0600), also
 * when an older file was made with a looser mode.
 */
function openLog(path: string): number {
  const fd = openSync(path, 'a', 0o600);
  try {
    if ((fstatSync(fd).mode & 0o7777) !== 0o600) fchmodSync(fd, 0o600);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return fd;
}

export class JsonFileLogger {
  private fd: number;
  private size: number;
  private readonly partial: Record<LogStream, string> = { stdout: '', stderr: '' };

  constructor(
    readonly path: string,
    private readonly options: LogOptions = {},
  ) {
    this.fd = openLog(path);
    this.size = fstatSync(this.fd).size;
  }

  /** Appends output of one stream; complete lines become entries, the rest waits for more. */
  write(stream: LogStream, chunk: Buffer | string): void {
    let text = this.partial[stream] + chunk.toString();
    let newline = text.indexOf('\n');
    while (newline !== -1 || text.length >= MAX_LINE) {
      const end = newline !== -1 && newline < MAX_LINE ? newline + 1 : MAX_LINE;
      this.append({ log: text.slice(0, end), stream, time: timestamp() });
      text = text.slice(end);
      newline = text.indexOf('\n');
    }
    this.partial[stream] = text;
  }

  /** Writes what is left of unfinished lines and closes the file. */
  close(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream]) this.append({ log: this.partial[stream], stream, time: timestamp() });
      this.partial[stream] = '';
    }
    closeSync(this.fd);
  }

  private append(entry: LogEntry): void {
    const line = Buffer.from(`${JSON.stringify(entry)}\n`);
    const { maxSize } = this.options;
    if (maxSize !== undefined && this.size > 0 && this.size + line.length > maxSize) this.rotate();
    writeSync(this.fd, line);
    this.size += line.length;
  }

  private rotate(): void {
    const keep = Math.max(1, this.options.maxFiles ?? 1);
    closeSync(this.fd);
    if (keep === 1) rmSync(this.path, { force: true });
    else {
      rmSync(`${this.path}.${keep - 1}`, { force: true });
      for (let i = keep - 2; i >= 1; i--) {
        try {
          renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
        } catch {
          // not there yet
        }
      }
      renameSync(this.path, `${this.path}.1`);
    }
    this.fd = openLog(this.path);
    this.size = 0;
  }
}

export interface ReadLogsOptions {
  /** Only the last N entries (of everything kept). */
  tail?: number;
  /** Keep waiting for new entries until `until` settles (or forever, or `untilNs` has passed). */
  follow?: boolean;
  until?: Promise<unknown>;
  /** How often to look for new output while following, in ms. */
  pollMs?: number;
  /** Only entries at or after this time (nanoseconds since the epoch, see log-time.ts). */
  sinceNs?: bigint;
  /**
   * Only entries at or before this time; following stops once it has passed (and does not start
   * when it already has), as docker's `logs -f --until`.
   */
  untilNs?: bigint;
}

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

function parseLines(text: string): LogEntry[] {
  const entries: LogEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      entries.push(JSON.parse(line) as LogEntry);
    } catch {
      // a torn last line of a crashed writer
    }
  }
  return entries;
}

function readFrom(path: string, offset: number): { text: string; size: number; ino: number } | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const { size, ino } = fstatSync(fd);
    if (size <= offset) return { text: '', size, ino };
    const buf = Buffer.alloc(size - offset);
    const n = readSync(fd, buf, 0, buf.length, offset);
    const text = buf.subarray(0, n).toString();
    // Only whole lines: the writer may be mid-line.
    const end = text.lastIndexOf('\n') + 1;
    return { text: text.slice(0, end), size: offset + Buffer.byteLength(text.slice(0, end)), ino };
  } finally {
    closeSync(fd);
  }
}

/** The wait before the next look for output: not past `until`, so following ends on time. */
function pollDelay(pollMs: number, until: bigint | undefined): number {
  if (until === undefined) return pollMs;
  const left = Number((until - nowNs()) / 1_000_000n) + 1;
  return Math.max(0, Math.min(pollMs, left));
}

/**
 * Reads a json-file log, oldest first across rotated files, and with `follow`
 * keeps yielding new entries, carrying on into the new file after a rotation.
 */
export async function* readLogs(path: string, options: ReadLogsOptions = {}): AsyncGenerator<LogEntry> {
  const rotated: string[] = [];
  for (let i = 1; ; i++) {
    try {
      statSync(`${path}.${i}`);
      rotated.unshift(`${path}.${i}`);
    } catch {
      break;
    }
  }
  let entries: LogEntry[] = [];
  for (const file of rotated) entries.push(...parseLines(readFrom(file, 0)?.text ?? ''));
  const live = readFrom(path, 0);
  entries.push(...parseLines(live?.text ?? ''));
  // As docker's json-file reader: the tail is taken first, the time window applied to it.
  if (options.tail !== undefined) entries = options.tail <= 0 ? [] : entries.slice(-options.tail);
  const { sinceNs: since, untilNs: until } = options;
  /** Whether the entry is in the window; false with `past` set once it is after `until`. */
  let past = false;
  const inWindow = (entry: LogEntry): boolean => {
    if (since === undefined && until === undefined) return true;
    const time = logEntryTime(entry.time);
    if (until !== undefined && time > until) {
      past = true;
      return false;
    }
    return since === undefined || time >= since;
  };
  for (const entry of entries) {
    if (!inWindow(entry)) {
      if (past) return;
      continue;
    }
    yield entry;
  }
  if (!options.follow || (until !== undefined && until <= nowNs())) return;

  let offset = live?.size ?? 0;
  let ino = live?.ino ?? -1;
  let done = false;
  void options.until?.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  for (;;) {
    // Past `until` nothing more can be in the window: one last read, then stop.
    const finished = done || (until !== undefined && until < nowNs());
    let current = readFrom(path, ino === -1 ? 0 : offset);
    if (current && current.ino !== ino) {
      // Rotated: first the rest of the old file (now NAME.1), then the new one from its start.
      if (ino !== -1) {
        const old = readFrom(`${path}.1`, offset);
        if (old && old.ino === ino)
          for (const entry of parseLines(old.text)) {
            if (inWindow(entry)) yield entry;
            else if (past) return;
          }
      }
      ino = current.ino;
      offset = 0;
      current = readFrom(path, 0);
    }
    if (current) {
      for (const entry of parseLines(current.text)) {
        if (inWindow(entry)) yield entry;
        else if (past) return;
      }
      offset = current.size;
    }
    if (finished) return;
    await sleep(pollDelay(options.pollMs ?? 100, until));
  }
}
