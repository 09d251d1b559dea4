import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EventLog, eventFilter, eventMessage, eventTimeNano } from './events.js';
import type { EngineEvent } from './types.js';

const dir = mkdtempSync(join(tmpdir(), 'box-events-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const event = (over: Partial<EngineEvent> = {}): EngineEvent => ({
  type: 'start',
  id: 'abc123'.padEnd(64, '0'),
  name: 'web',
  image: 'busybox:1.36',
  time: '2024-01-01T00:00:01.000000005Z',
  ...over,
});

describe('eventMessage', () => {
  it("docker's events.Message: the container as actor; exit code, image and name as attributes", () => {
    const m = eventMessage(event({ type: 'die', exitCode: 3 }));
    expect(m).toMatchObject({
      status: 'die',
      from: 'busybox:1.36',
      Type: 'container',
      Action: 'die',
      Actor: { ID: event().id, Attributes: { exitCode: '3', image: 'busybox:1.36', name: 'web' } },
      scope: 'local',
      time: 1704067201,
    });
    expect(m.timeNano).toBe(1704067201000000005n);
    expect(eventTimeNano({ time: 'nonsense' })).toBe(0n);
  });

  it('a rename names the old name, with its slash, as docker', () => {
    const m = eventMessage(event({ type: 'rename', name: 'new', oldName: 'old' }));
    expect(m.Actor.Attributes).toEqual({ image: 'busybox:1.36', name: 'new', oldName: '/old' });
  });

  it('the engine records the old name of a rename', async () => {
    const log = new EventLog(join(dir, 'rename.jsonl'));
    log.emit('rename', { id: event().id, name: 'new', image: 'busybox' }, undefined, 'old');
    const read: EngineEvent[] = [];
    for await (const e of log.read()) read.push(e);
    expect(read[0]).toMatchObject({ type: 'rename', name: 'new', oldName: 'old' });
  });
});

describe('eventFilter', () => {
  it('one key: any value; several keys: all', () => {
    const keep = eventFilter({ event: ['start', 'die'], container: ['web'] });
    expect(keep(event())).toBe(true);
    expect(keep(event({ type: 'create' }))).toBe(false);
    expect(keep(event({ name: 'db' }))).toBe(false);
  });

  it('container by name or ID prefix; image with or without its tag; type container only', () => {
    expect(eventFilter({ container: ['abc1'] })(event())).toBe(true);
    expect(eventFilter({ container: ['we'] })(event())).toBe(true);
    expect(eventFilter({ container: ['x'] })(event())).toBe(false);
    expect(eventFilter({ image: ['busybox'] })(event())).toBe(true);
    expect(eventFilter({ image: ['busybox:1.36'] })(event())).toBe(true);
    expect(eventFilter({ image: ['alpine'] })(event())).toBe(false);
    expect(eventFilter({ type: ['container'] })(event())).toBe(true);
    expect(eventFilter({ type: ['image', 'network'] })(event())).toBe(false);
    expect(eventFilter({ label: ['a=b'] })(event())).toBe(false);
  });

  it('an unknown key is refused', () => {
    expect(() => eventFilter({ colour: ['red'] })).toThrow("invalid filter 'colour'");
  });
});

describe('EventLog.read', () => {
  it('since and until in nanoseconds, inclusive; filters applied', async () => {
    const path = join(dir, 'events.jsonl');
    const line = (type: string, name: string, time: string) =>
      `${JSON.stringify({ type, id: name.padEnd(64, '0'), name, image: 'busybox', time })}\n`;
    writeFileSync(
      path,
      line('create', 'one', '2024-01-01T00:00:01.000000001Z') +
        line('start', 'one', '2024-01-01T00:00:02.000000002Z') +
        line('create', 'two', '2024-01-01T00:00:03.000000003Z') +
        line('start', 'two', '2024-01-01T00:00:04.000000004Z'),
    );
    const log = new EventLog(path);
    const names = async (query: Parameters<EventLog['read']>[0]) => {
      const out: string[] = [];
      for await (const e of log.read(query)) out.push(`${e.type} ${e.name}`);
      return out;
    };
    expect(await names({})).toHaveLength(4);
    expect(await names({ since: 1704067202000000002n, until: 1704067203000000003n })).toEqual([
      'start one',
      'create two',
    ]);
    expect(await names({ since: 1704067202000000003n })).toEqual(['create two', 'start two']);
    expect(await names({ filters: { container: ['two'], event: ['create'] } })).toEqual(['create two']);
  });

  it('emit appends one line an event', async () => {
    const log = new EventLog(join(dir, 'emitted.jsonl'));
    log.emit('die', { id: 'a'.repeat(64), name: 'one', image: 'busybox' }, 3);
    const seen: EngineEvent[] = [];
    for await (const e of log.read()) seen.push(e);
    expect(seen).toMatchObject([{ type: 'die', name: 'one', exitCode: 3 }]);
    expect(eventTimeNano(seen[0]!)).toBeGreaterThan(0n);
  });

  it('with follow and until: stops once until has come', async () => {
    const log = new EventLog(join(dir, 'follow.jsonl'));
    const until = BigInt(Date.now() + 300) * 1_000_000n;
    const started = Date.now();
    setTimeout(() => log.emit('start', { id: 'c'.repeat(64), name: 'late', image: 'busybox' }), 50);
    const seen: string[] = [];
    for await (const e of log.read({ follow: true, until })) seen.push(e.name);
    expect(seen).toEqual(['late']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('following across a trim (a new file with the newer lines): nothing twice', async () => {
    const path = join(dir, 'trimmed.jsonl');
    const line = (name: string, second: number) =>
      `${JSON.stringify({ type: 'start', id: name.padEnd(64, '0'), name, image: 'busybox', time: `2024-01-01T00:00:0${second}.000000000Z` })}\n`;
    writeFileSync(path, line('a', 1) + line('b', 2));
    const controller = new AbortController();
    const seen: string[] = [];
    const reading = (async () => {
      for await (const e of new EventLog(path).read({ follow: true, signal: controller.signal })) {
        seen.push(e.name);
        if (seen.length === 3) controller.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 150));
    // As trim() does: the newer half written to a new file renamed over the old one.
    writeFileSync(`${path}.new`, line('b', 2) + line('c', 3));
    renameSync(`${path}.new`, path);
    await Promise.race([reading, new Promise((r) => setTimeout(r, 3000))]);
    controller.abort();
    expect(seen).toEqual(['a', 'b', 'c']);
  });
});
