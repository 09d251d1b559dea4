import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { boxBin, useBoxRoot } from '../helpers/box.js';

const env = useBoxRoot();

/** Runs `box ARGS` under util-linux `script`, which gives it a real pseudo-terminal of ROWSxCOLS. */
function inTerminal(args: string, input: string, rows = 30, cols = 100, delay = 0) {
  const command = `stty rows ${rows} cols ${cols}; ${process.execPath} ${boxBin} ${args}`;
  const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  // The input is typed after `delay` seconds, once the container has started.
  return spawnSync(
    'sh',
    ['-c', `(sleep ${delay}; printf %s ${quote(input)}) | script -qefc ${quote(command)} /dev/null`],
    {
      env: { ...process.env, BOX_ROOT: env.root },
      encoding: 'utf8',
      timeout: 20_000,
    },
  );
}

describe('box run -it', () => {
  it('gives the container a terminal from its own devpts, with our window size', () => {
    const r = inTerminal('run --rm -it busybox sh', 'tty; stty size; echo "T=$TERM"; exit 4\n');
    expect(r.stdout).toContain('/dev/pts/0');
    expect(r.stdout).toContain('30 100');
    expect(r.stdout).toContain('T=xterm');
    expect(r.status).toBe(4);
  });

  it('puts the terminal in raw mode: control characters reach the container', () => {
    // ^C is a byte for the container's terminal to turn into SIGINT for its foreground job.
    const r = inTerminal(
      'run --rm -it busybox sh -c "trap \'echo INTERRUPTED; exit 9\' INT; echo READY; read x"',
      '\u0003',
      30,
      100,
      1.5,
    );
    expect(r.stdout).toContain('INTERRUPTED');
    expect(r.status).toBe(9);
  });

  it('-t without -i does not read our input', () => {
    const r = inTerminal('run --rm -t busybox sh -c "test -t 0 && test -t 1 && echo both-tty"', '');
    expect(r.stdout).toContain('both-tty');
    expect(r.status).toBe(0);
  });
});
