/**
 * Pull and push progress as docker prints it: one line per layer (`a1b2c3d4e5f6: Downloading
 * [====>      ]  1.2MB/4.5MB`), redrawn in place on a terminal; on anything else (a pipe, a log
 * file) one line per change of status, never the bars. The events come from @box/image.
 */
import type { ProgressEvent } from '@box/image';
import { humanSize } from './units.js';

type Write = (text: string) => void;

const STATUS_WORDS: Record<string, string> = {
  waiting: 'Waiting',
  exists: 'Already exists',
  downloading: 'Downloading',
  verifying: 'Verifying Checksum',
  extracting: 'Extracting',
  complete: 'Pull complete',
  pushing: 'Pushing',
  pushed: 'Pushed',
  mounted: 'Mounted from',
  retrying: 'Retrying',
};

/** docker's progress bar: 50 columns, `=` for what is done and `>` at its edge. */
function bar(current: number, total: number): string {
  const width = 50;
  const done = total > 0 ? Math.min(width, Math.floor((current / total) * width)) : 0;
  const fill = done === 0 ? '' : done === width ? '='.repeat(width) : `${'='.repeat(done - 1)}>`;
  return `[${fill.padEnd(width)}] ${humanSize(current).padStart(7)}/${humanSize(total)}`;
}

export interface ProgressPrinter {
  (event: ProgressEvent): void;
  /** Leaves the terminal's cursor below the last line. */
  end(): void;
}

/**
 * A progress printer writing to `write`; `tty` chooses in-place redraws. `quiet` prints
 * nothing (`pull -q`).
 */
export function progressPrinter(
  write: Write,
  options: { tty: boolean; quiet?: boolean; push?: boolean },
): ProgressPrinter {
  const words = options.push ? { ...STATUS_WORDS, exists: 'Layer already exists' } : STATUS_WORDS;
  const order: string[] = [];
  const lines = new Map<string, string>();
  const lastStatus = new Map<string, string>();
  let drawn = 0;

  const redraw = () => {
    // Up to the first layer line, then every line again, each cleared first.
    let out = drawn > 0 ? `\x1b[${drawn}A` : '';
    for (const id of order) out += `\x1b[2K${id}: ${lines.get(id)}\n`;
    drawn = order.length;
    write(out);
  };

  const printer = ((event: ProgressEvent) => {
    if (options.quiet || event.type !== 'layer') return;
    const id = event.digest.replace(/^sha256:/, '').slice(0, 12);
    const word = words[event.status] ?? event.status;
    const withBar =
      (event.status === 'downloading' || event.status === 'pushing' || event.status === 'extracting') &&
      event.total !== undefined &&
      event.current !== undefined;
    if (!order.includes(id)) order.push(id);
    if (options.tty) {
      lines.set(id, withBar ? `${word} ${bar(event.current!, event.total!)}` : word);
      redraw();
      return;
    }
    // Not a terminal: a line when the status changes, none for each chunk.
    if (lastStatus.get(id) === event.status) return;
    lastStatus.set(id, event.status);
    write(`${id}: ${word}\n`);
  }) as ProgressPrinter;
  printer.end = () => {
    drawn = 0;
  };
  return printer;
}
