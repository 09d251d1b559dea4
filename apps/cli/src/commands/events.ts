/**
 * `box events` (and `system events`): the engine's events as docker prints them, one a line:
 * `TIME container ACTION ID (image=…, name=…)`, or through `--format` (a template on docker's
 * events.Message, or `json`). Without `--until` it follows until interrupted.
 */
import { type EngineEvent, type EventMessage, eventMessage } from '@box/runtime';
import { openEngine } from '../engine.js';
import { CliError } from '../errors.js';
import { GoStruct } from '../output/gofmt.js';
import { parseTemplate, renderTemplate, TemplateError } from '../output/index.js';
import type { Tree } from '../output/parse.js';
import { formatTimeNano, parseTimestamp } from '../timestamps.js';

export interface EventsFlags {
  since?: string;
  until?: string;
  filter?: string[];
  format?: string;
}

/** docker's --filter KEY=VALUE, gathered by key. */
function filtersOf(values: readonly string[]): Record<string, string[]> {
  const filters: Record<string, string[]> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq === -1) throw new CliError(`bad format of filter (expected name=value)`);
    const key = value.slice(0, eq).trim().toLowerCase();
    filters[key] = [...(filters[key] ?? []), value.slice(eq + 1)];
  }
  return filters;
}

/** The template value of an event: events.Message's fields, and its JSON with docker's names. */
function messageValue(m: EventMessage): GoStruct {
  return new GoStruct(
    '*events.Message',
    {
      Status: m.status,
      ID: m.id,
      From: m.from,
      Type: m.Type,
      Action: m.Action,
      Actor: m.Actor,
      Scope: m.scope,
      Time: m.time,
      TimeNano: m.timeNano,
    },
    {},
    { ...m },
  );
}

/** events.Message's zero value (docker runs a template on it first). */
const EMPTY = {
  status: '',
  id: '',
  from: '',
  Type: '',
  Action: '',
  Actor: { ID: '', Attributes: {} },
  scope: '',
  time: 0,
  timeNano: 0n,
} as unknown as EventMessage;

/** docker's line: time, type, action, actor and its attributes sorted by name. */
function eventLine(event: EngineEvent): string {
  const m = eventMessage(event);
  const attributes = Object.keys(m.Actor.Attributes)
    .sort()
    .map((k) => `${k}=${m.Actor.Attributes[k]}`)
    .join(', ');
  return `${formatTimeNano(m.timeNano)} ${m.Type} ${m.Action} ${m.Actor.ID} (${attributes})\n`;
}

function compile(format: string | undefined): Tree | undefined {
  if (format === undefined || format === '') return undefined;
  try {
    const tree = parseTemplate(format === 'json' ? '{{json .}}' : format);
    // As docker: run once on an empty message, so a field events do not have is refused at once.
    renderTemplate(tree, messageValue(EMPTY));
    return tree;
  } catch (error) {
    if (error instanceof TemplateError) throw new TemplateError(`template parsing error: ${error.message}`);
    throw error;
  }
}

export async function events(flags: EventsFlags): Promise<number> {
  const now = new Date();
  const since =
    flags.since !== undefined ? parseTimestamp(flags.since, now) : BigInt(now.getTime()) * 1_000_000n;
  const until = flags.until !== undefined ? parseTimestamp(flags.until, now) : undefined;
  const filters = filtersOf(flags.filter ?? []);
  const tree = compile(flags.format);
  // A reader that went away (`box events | head -1`) ends the stream, as SIGPIPE ends docker's.
  // The handler stays: a failed write is reported after the write call, maybe after the loop.
  const controller = new AbortController();
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    controller.abort();
  });
  const stream = openEngine().events({ since, until, filters, follow: true, signal: controller.signal });
  for await (const event of stream) {
    if (controller.signal.aborted) break;
    process.stdout.write(
      tree ? `${renderTemplate(tree, messageValue(eventMessage(event)))}\n` : eventLine(event),
    );
  }
  return 0;
}
