/**
 * `top CONTAINER [ps OPTIONS]` as docker's daemon does it: the host's `ps` with the caller's
 * options (`-ef` by default), restricted with `-q PIDS` to the container's processes, and its
 * table kept only for rows whose PID is one of them (ps options that cannot take `-q`, such as
 * `f`, run over every process and are filtered here).
 */
import { execFile } from 'node:child_process';
import { EngineError } from '../errors.js';

export interface ProcessTable {
  /** ps's column titles, as it printed them. */
  titles: string[];
  /** One row per process (threads too with ps's `m`/`-L`); the last column holds the rest of the line. */
  processes: string[][];
}

/**
 * docker refuses a renamed column that would pass for the PID column (`-o user=PID`): the rows
 * would be filtered by another column's values.
 */
export function validatePsArgs(psArgs: string): void {
  for (const m of psArgs.matchAll(/\s+(\S*)=\s*(PID\S*)/g)) {
    if (m[1] !== 'pid') throw new EngineError('EINVAL', `specifying "${m[1]}=${m[2]}" is not allowed`);
  }
}

/** Splits on runs of ASCII white space only, as docker (a command may hold other spaces). */
function fields(line: string): string[] {
  return line.split(/[ \t\n\v\f\r]+/).filter(Boolean);
}

/** The rows of `output` whose PID is in `pids`, with the lines ps prints for their threads. */
export function parsePsOutput(output: string, pids: readonly number[]): ProcessTable {
  const lines = output.split('\n');
  const titles = fields(lines[0] ?? '');
  const pidIndex = titles.indexOf('PID');
  if (pidIndex === -1) throw new EngineError('EPS', "Couldn't find PID field in ps output");
  const wanted = new Set(pids);
  const processes: string[][] = [];
  const row = (cells: string[]) => [
    ...cells.slice(0, titles.length - 1),
    cells.slice(titles.length - 1).join(' '),
  ];
  // A thread's line (PID "-", with `m`) belongs to the process line above it.
  let inContainer = false;
  for (const line of lines.slice(1)) {
    if (!line) continue;
    const cells = fields(line);
    const pid = cells[pidIndex];
    if (pid === '-') {
      if (inContainer) processes.push(row(cells));
      continue;
    }
    if (pid === undefined || !/^\d+$/.test(pid))
      throw new EngineError('EPS', `Unexpected pid '${pid ?? ''}': not a number`);
    inContainer = wanted.has(Number(pid));
    if (inContainer) processes.push(row(cells));
  }
  return { titles, processes };
}

function runPs(args: string[]): Promise<{ ok: true; stdout: string } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    execFile('ps', args, { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (!error) resolve({ ok: true, stdout });
      // As docker: the first line of ps's complaint, or how it ended.
      else
        resolve({ ok: false, error: stderr.split('\n')[0] || `exit status ${error.code ?? error.signal}` });
    });
  });
}

/** The host's `ps` over `pids` with `psArgs` (docker's single string, split at spaces). */
export async function psTable(pids: readonly number[], psArgs = ''): Promise<ProcessTable> {
  const given = psArgs === '' ? '-ef' : psArgs;
  validatePsArgs(given);
  const args = given.split(' ');
  let result = await runPs([...args, `-q${pids.join(',')}`]);
  if (!result.ok) result = await runPs(args);
  if (!result.ok) throw new EngineError('EPS', `ps: ${result.error}`);
  return parsePsOutput(result.stdout, pids);
}
