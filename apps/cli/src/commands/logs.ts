/** `box logs`: a container's output from its json-file log, optionally followed. */
import { openEngine } from '../engine.js';
import { CliError } from '../errors.js';

export interface LogsFlags {
  follow?: boolean;
  tail?: string;
  timestamps?: boolean;
  /** docker's forms: `10m`, an RFC 3339 timestamp, Unix seconds (read by the engine). */
  since?: string;
  until?: string;
}

function parseTail(value: string | undefined): number | undefined {
  if (value === undefined || value === 'all') return undefined;
  if (!/^-?\d+$/.test(value)) throw new CliError(`invalid --tail "${value}": expected a number or "all"`);
  const n = Number(value);
  return n < 0 ? undefined : n;
}

export async function logs(reference: string, flags: LogsFlags): Promise<number> {
  const tail = parseTail(flags.tail);
  const engine = openEngine();
  // A reader that went away (`box logs c | head -1`) ends the output, as SIGPIPE ends docker's,
  // instead of an unhandled EPIPE.
  let gone = false;
  const onError = (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    gone = true;
  };
  process.stdout.on('error', onError);
  process.stderr.on('error', onError);
  for await (const entry of engine.logs(reference, {
    tail,
    follow: flags.follow,
    since: flags.since,
    until: flags.until,
  })) {
    if (gone) break;
    const out = entry.stream === 'stderr' ? process.stderr : process.stdout;
    const text = flags.timestamps ? `${entry.time} ${entry.log}` : entry.log;
    if (!out.write(text))
      await new Promise((resolve) => {
        out.once('drain', resolve);
        out.once('error', resolve);
      });
  }
  return 0;
}
