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

/** Bytes read at a time: a log can be larger than memory, or than a string can be. */
const CHUNK = 1 << 20;
/** A line longer than this is none of box's (they are cut at 16 KiB of text): dropped. */
const LINE_MAX = 1 << 20;

/** Where a read of a log file ended: after its last whole line, and which file it was. */
interface Position {
  end: number;
  ino: number;
}

/**
 * The entries of the log file `path` from byte `offset`, read a chunk at a time; only whole lines
 * (the writer may be mid-line). `at` gets the file's inode and the offset after the last whole
 * line; with `expectIno`, a file that is another one now (rotated meanwhile) is not read.
 */
function* entriesFrom(path: string, offset: number, at?: Position, expectIno?: number): Generator<LogEntry> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return;
  }
  try {
    const { size, ino } = fstatSync(fd);
    if (at) {
      at.ino = ino;
      at.end = Math.min(offset, size);
    }
    if (expectIno !== undefined && ino !== expectIno) return;
    const buf = Buffer.allocUnsafe(CHUNK);
    let carry = Buffer.alloc(0);
    let position = offset;
    while (position < size) {
      const n = readSync(fd, buf, 0, Math.min(CHUNK, size - position), position);
      if (n === 0) break;
      position += n;
      const bytes = carry.length > 0 ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n);
      const last = bytes.lastIndexOf(0x0a);
      // The rest is kept for the next chunk, copied: buf is reused.
      carry = Buffer.from(bytes.subarray(last + 1));
      if (carry.length > LINE_MAX) carry = Buffer.alloc(0);
      if (at) at.end = position - carry.length;
      if (last < 0) continue;
      for (const line of bytes.subarray(0, last).toString().split('\n')) {
        if (!line) continue;
        let entry: LogEntry;
        try {
          entry = JSON.parse(line) as LogEntry;
        } catch {
          continue; // a torn line of a crashed writer
        }
        yield entry;
      }
    }
  } finally {
    closeSync(fd);
  }
}

function inodeOf(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

/** Reads exactly `length` bytes at `position` into the start of `buf` (the file is at least that long). */
function readAt(fd: number, buf: Buffer, length: number, position: number): void {
  for (let done = 0; done < length; ) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) throw new Error('the log file was truncated while it was read');
    done += n;
  }
}

/** A whole line's entry, or undefined for a torn line of a crashed writer (or an empty one). */
function parseLine(line: Buffer): LogEntry | undefined {
  if (line.length === 0) return undefined;
  try {
    return JSON.parse(line.toString()) as LogEntry;
  } catch {
    return undefined;
  }
}

/**
 * The last `count` entries of the log file `path` (oldest first), read backwards from its end a
 * chunk at a time: `logs --tail 10` of a log of gigabytes reads its last chunk, not the whole file
 * (docker's json-file reader seeks back the same way). Lines are counted and dropped as
 * entriesFrom reads them: the bytes after the last newline are a line being written, a torn line
 * is skipped, a line over LINE_MAX is dropped. `at` gets the file's inode and the offset after
 * its last whole line, where following goes on.
 */
function lastEntriesOf(path: string, count: number, at?: Position): LogEntry[] {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return [];
  }
  const found: LogEntry[] = []; // newest first
  try {
    const { size, ino } = fstatSync(fd);
    if (at) {
      at.ino = ino;
      at.end = 0;
    }
    const buf = Buffer.allocUnsafe(CHUNK);
    /** The end of a line whose start is in bytes not read yet (copies: buf is reused). */
    let carry: Buffer[] = [];
    /** How long that end is; a runaway line's bytes are counted, not kept. */
    let carried = 0;
    /** Whether the next newline found ends the file's last whole line (what follows it is not). */
    let last = true;
    /** A whole line, `length` bytes long; `line()` makes it when it is kept (not over LINE_MAX). */
    const complete = (line: () => Buffer, length: number): void => {
      if (last) {
        last = false;
        return;
      }
      const entry = length > LINE_MAX ? undefined : parseLine(line());
      if (entry) found.push(entry);
    };
    const wanted = () => last || found.length < count;
    let position = size;
    while (position > 0 && wanted()) {
      const n = Math.min(CHUNK, position);
      position -= n;
      readAt(fd, buf, n, position);
      let end = n;
      for (let newline = buf.lastIndexOf(0x0a, end - 1); newline >= 0 && wanted(); ) {
        if (last && at) at.end = position + newline + 1;
        const head = buf.subarray(newline + 1, end);
        complete(() => Buffer.concat([head, ...carry]), head.length + carried);
        carry = [];
        carried = 0;
        end = newline;
        newline = end > 0 ? buf.lastIndexOf(0x0a, end - 1) : -1;
      }
      if (!wanted()) break;
      // The chunk's start continues a line that began before it.
      if (carried + end <= LINE_MAX) carry.unshift(Buffer.from(buf.subarray(0, end)));
      carried += end;
    }
    // The file's first line, which no newline starts.
    if (position === 0 && wanted() && carried > 0) complete(() => Buffer.concat(carry), carried);
  } finally {
    closeSync(fd);
  }
  return found.reverse();
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
  const live: Position = { end: 0, ino: -1 };
  function* all(): Generator<LogEntry> {
    for (const file of rotated) yield* entriesFrom(file, 0);
    yield* entriesFrom(path, 0, live);
  }
  /** The last `count` entries, from the live file back through the rotated ones as needed. */
  function tail(count: number): LogEntry[] {
    const newest = lastEntriesOf(path, count, live);
    const parts = [newest];
    let found = newest.length;
    for (const file of [...rotated].reverse()) {
      if (found >= count) break;
      const older = lastEntriesOf(file, count - found);
      parts.unshift(older);
      found += older.length;
    }
    return parts.flat();
  }
  // As docker's json-file reader: the tail is taken first, the time window applied to it. Read a
  // chunk at a time, never the whole log at once: a container writes as much as it likes.
  const entries = options.tail !== undefined ? tail(options.tail) : all();
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

  let offset = live.end;
  let ino = live.ino;
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
    const current = inodeOf(path);
    if (current !== undefined && current !== ino) {
      // Rotated: first the rest of the old file (now NAME.1), then the new one from its start.
      if (ino !== -1)
        for (const entry of entriesFrom(`${path}.1`, offset, undefined, ino)) {
          if (inWindow(entry)) yield entry;
          else if (past) return;
        }
      ino = current;
      offset = 0;
    }
    if (current !== undefined) {
      const at: Position = { end: offset, ino };
      for (const entry of entriesFrom(path, offset, at, ino)) {
        if (inWindow(entry)) yield entry;
        else if (past) return;
      }
      // Rotated again between the look and the read: the next turn reads the new file.
      if (at.ino === ino) offset = at.end;
    }
    if (finished) return;
    await sleep(pollDelay(options.pollMs ?? 100, until));
  }
}
