/**
 * Container events (create, start, die, oom, destroy, …) as docker's `events` reports them,
 * kept in ROOT/events.jsonl: one JSON line each, appended with O_APPEND (one write per event, so
 * lines from several processes never interleave). The file is cut to its newer half past
 * MAX_SIZE. Following it reads what is appended after the last line seen.
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { writePrivateFile } from './atomic.js';
import type { ContainerRecord, EngineEvent, EngineEventType } from './types.js';

const MAX_SIZE = 1024 * 1024;

function now(): string {
  const ns = process.hrtime.bigint() % 1_000_000n;
  return `${new Date().toISOString().slice(0, 23)}${String(ns).padStart(6, '0')}Z`;
}

export class EventLog {
  constructor(readonly path: string) {}

  /** Records an event; never fails the operation it reports. */
  emit(
    type: EngineEventType,
    record: Pick<ContainerRecord, 'id' | 'name' | 'image'>,
    exitCode?: number,
  ): void {
    const event: EngineEvent = { type, id: record.id, name: record.name, image: record.image, time: now() };
    if (exitCode !== undefined) event.exitCode = exitCode;
    try {
      const fd = openSync(this.path, 'a', 0o600);
      try {
        writeSync(fd, `${JSON.stringify(event)}\n`);
        if (fstatSync(fd).size > MAX_SIZE) this.trim();
      } finally {
        closeSync(fd);
      }
    } catch {
      // The state root is gone or full: the operation itself went through.
    }
  }

  private trim(): void {
    const text = readFileSync(this.path, 'utf8');
    const half = text.indexOf('\n', text.length / 2);
    writePrivateFile(this.path, text.slice(half + 1), { durable: false });
  }

  /**
   * Events since `since` (a time, RFC 3339), then, with `follow`, new ones as they come until
   * `signal` aborts.
   */
  async *read(
    options: { since?: string; follow?: boolean; signal?: AbortSignal } = {},
  ): AsyncGenerator<EngineEvent> {
    let offset = 0;
    let ino: number | undefined;
    let partial = '';
    for (;;) {
      let fd: number | undefined;
      try {
        fd = openSync(this.path, 'r');
      } catch {
        fd = undefined;
      }
      if (fd !== undefined) {
        try {
          const stats = fstatSync(fd);
          // Trimmed (a new file) or truncated: start over.
          if (ino !== undefined && (ino !== stats.ino || stats.size < offset)) {
            offset = 0;
            partial = '';
          }
          ino = stats.ino;
          const buffer = Buffer.alloc(Math.max(0, stats.size - offset));
          const read = buffer.length > 0 ? readSync(fd, buffer, 0, buffer.length, offset) : 0;
          offset += read;
          partial += buffer.subarray(0, read).toString('utf8');
        } finally {
          closeSync(fd);
        }
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          let event: EngineEvent;
          try {
            event = JSON.parse(line) as EngineEvent;
          } catch {
            continue;
          }
          if (options.since === undefined || event.time >= options.since) yield event;
        }
      }
      if (!options.follow || options.signal?.aborted) return;
      await sleep(100, undefined, { signal: options.signal }).catch(() => undefined);
      if (options.signal?.aborted) return;
    }
  }
}
