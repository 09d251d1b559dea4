/**
 * Container events (create, start, die, oom, destroy, …) as docker's `events` reports them,
 * kept in ROOT/events.jsonl: one JSON line each, appended with O_APPEND (one write per event, so
 * lines from several processes never interleave). The file is cut to its newer half past
 * MAX_SIZE. Following it reads what is appended after the last line seen.
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFileAtomic } from '@box/sys';
import { EngineError } from '../errors.js';
import type { ContainerRecord, EngineEvent, EngineEventType } from './types.js';

/** What `events` reads: a time window, docker's filters, and whether to wait for more. */
export interface EventQuery {
  /** Events at or after this time (nanoseconds since the epoch). */
  since?: bigint;
  /**
   * Events at or before this time; with `follow`, reading goes on until this time has come
   * (then stops), as docker's `events --until`.
   */
  until?: bigint;
  /**
   * docker's `--filter KEY=VALUE`s by key: values of one key are alternatives, different keys
   * must all match. Keys: container (ID or name, or a prefix of either), event, type, image;
   * docker's other keys are taken and match nothing box reports.
   */
  filters?: Record<string, readonly string[]>;
  /** Wait for new events until `signal` aborts (or `until` has come). */
  follow?: boolean;
  signal?: AbortSignal;
}

/** An event as docker's API gives it (events.Message, API 1.43). */
export interface EventMessage {
  status: string;
  id: string;
  from: string;
  Type: 'container';
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: bigint;
}

/** The event's time in nanoseconds since the epoch (its `time` is RFC 3339 with nanoseconds). */
export function eventTimeNano(event: Pick<EngineEvent, 'time'>): bigint {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(event.time);
  if (!match) return 0n;
  const seconds = Date.parse(`${match[1]}${match[3]}`);
  if (Number.isNaN(seconds)) return 0n;
  return BigInt(seconds) * 1_000_000n + BigInt((match[2] ?? '').padEnd(9, '0'));
}

/** docker's events.Message for an event: the container as actor, image and name (and exit code) as attributes. */
export function eventMessage(event: EngineEvent): EventMessage {
  const attributes: Record<string, string> = {};
  if (event.exitCode !== undefined) attributes.exitCode = String(event.exitCode);
  attributes.image = event.image;
  attributes.name = event.name;
  // docker's rename event names the old name with its slash.
  if (event.oldName !== undefined) attributes.oldName = `/${event.oldName}`;
  const timeNano = eventTimeNano(event);
  return {
    status: event.type,
    id: event.id,
    from: event.image,
    Type: 'container',
    Action: event.type,
    Actor: { ID: event.id, Attributes: attributes },
    scope: 'local',
    time: Number(timeNano / 1_000_000_000n),
    timeNano,
  };
}

/** docker's filter keys: those box reports on, and the rest (networks, volumes, …: never matched). */
const FILTERS: Record<string, ((event: EngineEvent, value: string) => boolean) | null> = {
  container: (e, v) => v !== '' && (e.id.startsWith(v) || e.name.startsWith(v)),
  event: (e, v) => e.type === v,
  type: (_, v) => v === 'container',
  image: (e, v) =>
    [e.image, stripTag(e.image)].includes(v) || [e.image, stripTag(e.image)].includes(stripTag(v)),
  label: null,
  network: null,
  volume: null,
  daemon: null,
  plugin: null,
  node: null,
  service: null,
  secret: null,
  config: null,
  scope: null,
};

/** busybox:1.36 → busybox; a registry's port is not a tag. */
function stripTag(reference: string): string {
  const at = reference.indexOf('@');
  if (at !== -1) return reference.slice(0, at);
  const colon = reference.lastIndexOf(':');
  return colon > reference.lastIndexOf('/') ? reference.slice(0, colon) : reference;
}

/** A test of events for docker's filters; an unknown key is refused ("invalid filter"). */
export function eventFilter(
  filters: Record<string, readonly string[]> = {},
): (event: EngineEvent) => boolean {
  const tests: [(event: EngineEvent, value: string) => boolean, readonly string[]][] = [];
  for (const [key, values] of Object.entries(filters)) {
    if (!(key in FILTERS)) throw new EngineError('EINVAL', `invalid filter '${key}'`);
    if (values.length === 0) continue;
    tests.push([FILTERS[key] ?? (() => false), values]);
  }
  return (event) => tests.every(([test, values]) => values.some((value) => test(event, value)));
}

const MAX_SIZE = 1024 * 1024;

function now(): string {
  const ns = process.hrtime.bigint() % 1_000_000n;
  return `${new Date().toISOString().slice(0, 23)}${String(ns).padStart(6, '0')}Z`;
}

/** The clock events are stamped with, in nanoseconds since the epoch. */
export function nowNano(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

export class EventLog {
  constructor(readonly path: string) {}

  /** Records an event; never fails the operation it reports. */
  emit(
    type: EngineEventType,
    record: Pick<ContainerRecord, 'id' | 'name' | 'image'>,
    exitCode?: number,
    oldName?: string,
  ): void {
    const event: EngineEvent = { type, id: record.id, name: record.name, image: record.image, time: now() };
    if (exitCode !== undefined) event.exitCode = exitCode;
    if (oldName !== undefined) event.oldName = oldName;
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
    writeFileAtomic(this.path, text.slice(half + 1), { fsync: false });
  }

  /**
   * Events in the query's window that pass its filters; with `follow`, new ones as they come
   * until `signal` aborts or `until` has come.
   */
  async *read(options: EventQuery = {}): AsyncGenerator<EngineEvent> {
    const keep = eventFilter(options.filters);
    const { since, until } = options;
    let offset = 0;
    let ino: number | undefined;
    let partial = '';
    // After a trim the file starts over with lines already read: those up to here are skipped.
    let seen: Set<string> | undefined;
    const current = new Set<string>();
    for (;;) {
      // Read once more after `until` has come: what was written up to it is then all there.
      const over = until !== undefined && nowNano() > until;
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
            seen = new Set(current);
            current.clear();
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
          // Only while following can the file be trimmed under the reader.
          if (options.follow) {
            current.add(line);
            if (seen?.has(line)) continue;
          }
          let event: EngineEvent;
          try {
            event = JSON.parse(line) as EngineEvent;
          } catch {
            continue;
          }
          const time = eventTimeNano(event);
          if (since !== undefined && time < since) continue;
          // Lines from several processes may be a little out of time order: skipped, not an end.
          if (until !== undefined && time > until) continue;
          if (keep(event)) yield event;
        }
      }
      if (!options.follow || over || options.signal?.aborted) return;
      await sleep(100, undefined, { signal: options.signal }).catch(() => undefined);
      if (options.signal?.aborted) return;
    }
  }
}
