/**
 * `box attach`, `run -dit` and docker's detach keys, driven through a real pseudo-terminal
 * (util-linux `script`): what a user types reaches the container's terminal through the box
 * service, and Ctrl-P Ctrl-Q leaves the container running there.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { box, boxAsync, boxBin, boxOk, useBoxRoot, waitFor } from '../helpers/box.js';

// Each test's containers are removed after it, and their owners' ends waited for.
const env = useBoxRoot({ removeContainers: true });

const CTRL_P = '\u0010';
const CTRL_Q = '\u0011';
const CTRL_X = '\u0018';

const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/**
 * Runs `box ARGS` in a pseudo-terminal of ROWSxCOLS; `typed` is what is typed, each piece after
 * its delay (seconds), as a user would, one key press at a time for control keys.
 */
function inTerminal(
  args: string,
  typed: [number, string][],
  options: { rows?: number; cols?: number; before?: string } = {},
) {
  const command = `stty rows ${options.rows ?? 30} cols ${options.cols ?? 100}; ${options.before ?? ''}exec ${process.execPath} ${boxBin} ${args}`;
  const keys = typed.map(([delay, text]) => `sleep ${delay}; printf %s ${quote(text)}`).join('; ');
  // The input side stays open a little after the last key, so that `script` does not end the
  // session before box has read it.
  return spawnSync('sh', ['-c', `(${keys}; sleep 3) | script -qefc ${quote(command)} /dev/null`], {
    env: { ...process.env, BOX_ROOT: env.root },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

const status = (name: string) =>
  boxOk(env.root, ['ps', '-a', '--filter', `name=${name}`, '--format', '{{.Names}} {{.Status}}'])
    .split('\n')
    .find((line) => line.startsWith(`${name} `))
    ?.slice(name.length + 1) ?? '';

/** A `run -dit` container. */
function runDit(name: string, ...command: string[]): string {
  const id = boxOk(env.root, [
    'run',
    '-dit',
    '--name',
    name,
    'busybox',
    ...(command.length ? command : ['sh']),
  ]);
  expect(id).toMatch(/^[0-9a-f]{64}$/);
  return id;
}

describe('box run -dit and box attach', () => {
  it('run -dit keeps a shell on a terminal; attach types into it and ends with its exit code; logs keep it', () => {
    runDit('dit-shell');
    expect(status('dit-shell')).toMatch(/^Up /);
    expect(boxOk(env.root, ['inspect', '-f', '{{.Config.Tty}} {{.Config.OpenStdin}}', 'dit-shell'])).toBe(
      'true true',
    );
    const r = inTerminal('attach dit-shell', [
      [1.5, 'tty; echo hi-$((40+2))\n'],
      [0.5, 'exit 3\n'],
    ]);
    expect(r.stdout).toContain('/dev/pts/0');
    expect(r.stdout).toContain('hi-42');
    expect(r.status).toBe(3);
    expect(status('dit-shell')).toMatch(/^Exited \(3\)/);
    // As docker's for a terminal: what it wrote is its log, as stdout.
    expect(boxOk(env.root, ['logs', 'dit-shell'])).toContain('hi-42');
  });

  it('attach passes our window size on, and again when it changes (SIGWINCH)', () => {
    runDit('dit-size');
    const r = inTerminal(
      'attach dit-size',
      [
        [1.5, 'echo "A=$(stty size)"\n'],
        [2.5, 'echo "B=$(stty size)"\n'],
        [0.5, 'exit 0\n'],
      ],
      // The terminal grows 2.5 s in: the kernel tells box (SIGWINCH), box tells the container's.
      { rows: 33, cols: 101, before: '(sleep 2.5; stty rows 40 cols 120 </dev/tty) & ' },
    );
    expect(r.stdout).toContain('A=33 101');
    expect(r.stdout).toContain('B=40 120');
    expect(r.status).toBe(0);
  });

  it('Ctrl-P Ctrl-Q detaches: "read escape sequence", exit 0, the container runs on as it was', () => {
    runDit('dit-detach');
    const first = inTerminal('attach dit-detach', [
      [1.5, 'KEPT=yes\n'],
      [0.5, CTRL_P],
      [0.3, CTRL_Q],
    ]);
    expect(first.stdout).toContain('read escape sequence');
    expect(first.status).toBe(0);
    expect(status('dit-detach')).toMatch(/^Up /);
    // The same shell, still there.
    const again = inTerminal('attach dit-detach', [[1.5, 'echo "kept=$KEPT"; exit 5\n']]);
    expect(again.stdout).toContain('kept=yes');
    expect(again.status).toBe(5);
  });

  it('foreground run -it detaches with Ctrl-P Ctrl-Q and leaves the container running under the service', () => {
    const first = inTerminal('run -it --name it-detach busybox sh', [
      [1.5, 'FG=here\n'],
      [0.5, `${CTRL_P}${CTRL_Q}`],
    ]);
    expect(first.stdout).toContain('read escape sequence');
    expect(first.status).toBe(0);
    expect(status('it-detach')).toMatch(/^Up /);
    const again = inTerminal('attach it-detach', [[1.5, 'echo "fg=$FG"; exit 6\n']]);
    expect(again.stdout).toContain('fg=here');
    expect(again.status).toBe(6);
    expect(status('it-detach')).toMatch(/^Exited \(6\)/);
  });

  it('start -ai attaches to a created -it container from its first byte; Ctrl-P Ctrl-Q leaves it running', () => {
    boxOk(env.root, ['create', '-it', '--name', 'ai-shell', 'busybox', 'sh']);
    const r = inTerminal('start -ai ai-shell', [
      [1.5, 'echo started-$((1+1))\n'],
      [0.5, CTRL_P],
      [0.3, CTRL_Q],
    ]);
    expect(r.stdout).toContain('started-2');
    expect(r.stdout).toContain('read escape sequence');
    expect(r.status).toBe(0);
    expect(status('ai-shell')).toMatch(/^Up /);
  });

  it('--detach-keys ctrl-x,y: a broken sequence reaches the container whole, the full one detaches', () => {
    // Not a shell with line editing: the terminal's own line discipline, which passes ^X on.
    runDit('dit-keys', 'sh', '-c', 'read x; printf %s "$x" | od -An -tx1; sleep 60');
    const r = inTerminal('attach --detach-keys ctrl-x,y dit-keys', [
      [1.5, 'a'],
      [0.3, CTRL_X],
      [0.3, 'b\n'],
      [0.5, CTRL_X],
      [0.3, 'y'],
    ]);
    expect(r.stdout).toMatch(/61 18 62/);
    expect(r.stdout).toContain('read escape sequence');
    expect(r.status).toBe(0);
    expect(status('dit-keys')).toMatch(/^Up /);
  });

  it('a detach key spec docker refuses: its error, exit 125, nothing made', () => {
    runDit('dit-badkeys');
    const attach = box(env.root, ['attach', '--detach-keys', 'ctrl-xx', 'dit-badkeys']);
    expect(attach.stderr).toContain('Invalid detach keys (ctrl-xx) provided');
    expect(attach.code).toBe(125);
    const before = boxOk(env.root, ['ps', '-aq']);
    const run = box(env.root, ['run', '--detach-keys', 'ctrl-', '-dit', 'busybox', 'sh']);
    expect(run.stderr).toContain('Invalid detach keys (ctrl-) provided');
    expect(run.code).toBe(125);
    expect(boxOk(env.root, ['ps', '-aq'])).toBe(before);
  });

  it('a container that does not read its terminal never stops the service: the input waits', () => {
    // Raw mode: the terminal takes about 68 KB, then writes to its master would block. The box
    // service holds every terminal's master: a blocking write there would stop it for every
    // container it watches.
    runDit('dit-flood', 'sh', '-c', 'stty raw; sleep 600');
    const flood = inTerminal('attach dit-flood', [
      [1.5, 'x'.repeat(100_000)],
      [1, CTRL_P],
      [0.3, CTRL_Q],
    ]);
    expect(flood.stdout).toContain('read escape sequence');
    expect(flood.status).toBe(0);
    const started = Date.now();
    expect(status('dit-flood')).toMatch(/^Up /);
    expect(boxOk(env.root, ['exec', 'dit-flood', 'echo', 'service answers'])).toBe('service answers');
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('several attachers see the same output', async () => {
    runDit('dit-shared');
    // One watches without input (no terminal needed), one types.
    const watcher = boxAsync(env.root, ['attach', '--no-stdin', 'dit-shared']);
    const typist = inTerminal('attach dit-shared', [
      [2, 'echo shared-$((6*7))\n'],
      [0.5, 'exit 2\n'],
    ]);
    expect(typist.stdout).toContain('shared-42');
    expect(typist.status).toBe(2);
    const watched = await watcher.done;
    expect(watched.stdout).toContain('shared-42');
    expect(watched.code).toBe(2);
  });
});

describe('box attach without a terminal', () => {
  it('streams a detached container output, stdout and stderr apart, and ends with its exit code', () => {
    boxOk(env.root, [
      'run',
      '-d',
      '--name',
      'd-out',
      'busybox',
      'sh',
      '-c',
      'sleep 1; echo late; echo oops >&2; exit 7',
    ]);
    const r = box(env.root, ['attach', 'd-out']);
    expect(r.stdout).toBe('late\n');
    expect(r.stderr).toBe('oops\n');
    expect(r.code).toBe(7);
  });

  it('start -a: its output from its start only, and its exit code', () => {
    boxOk(env.root, [
      'create',
      '--name',
      'a-start',
      'busybox',
      'sh',
      '-c',
      'echo from-start; echo oops >&2; exit 3',
    ]);
    const first = box(env.root, ['start', '-a', 'a-start']);
    expect(first.stdout).toBe('from-start\n');
    expect(first.stderr).toBe('oops\n');
    expect(first.code).toBe(3);
    // Again: what the first run wrote (kept in its log) is not shown again, as docker's.
    const again = box(env.root, ['start', '-a', 'a-start']);
    expect(again.stdout).toBe('from-start\n');
    expect(again.code).toBe(3);
    expect(boxOk(env.root, ['logs', 'a-start'])).toBe('from-start\nfrom-start');
  });

  it('run -di keeps stdin open: attach sends ours', () => {
    boxOk(env.root, ['run', '-di', '--name', 'di-in', 'busybox', 'sh', '-c', 'read x; echo got-$x']);
    const r = box(env.root, ['attach', 'di-in'], { input: 'abc\n' });
    expect(r.stdout).toBe('got-abc\n');
    expect(r.code).toBe(0);
  });

  it('passes our signals on (--sig-proxy); --sig-proxy=false does not', async () => {
    const script = 'trap "echo got-INT; exit 4" INT; while :; do echo tick; sleep 0.2; done';
    boxOk(env.root, ['run', '-d', '--name', 'd-sig', 'busybox', 'sh', '-c', script]);
    const proxied = boxAsync(env.root, ['attach', 'd-sig']);
    await waitFor(() => proxied.output().includes('tick'), 10_000);
    proxied.child.kill('SIGINT');
    const r = await proxied.done;
    expect(r.stdout).toContain('got-INT');
    expect(r.code).toBe(4);

    boxOk(env.root, ['run', '-d', '--name', 'd-nosig', 'busybox', 'sh', '-c', script]);
    const plain = boxAsync(env.root, ['attach', '--sig-proxy=false', 'd-nosig']);
    await waitFor(() => plain.output().includes('tick'), 10_000);
    plain.child.kill('SIGINT');
    const p = await plain.done;
    expect(p.stdout).not.toContain('got-INT');
    expect(p.code).toBe(-1); // box itself ended by the signal
    expect(status('d-nosig')).toMatch(/^Up /);
  });

  it('a stopped container: docker refusal, exit 1', () => {
    boxOk(env.root, ['run', '-d', '--name', 'd-done', 'busybox', 'true']);
    boxOk(env.root, ['wait', 'd-done']);
    const r = box(env.root, ['attach', 'd-done']);
    expect(r.stderr).toContain('You cannot attach to a stopped container, start it first');
    expect(r.code).toBe(1);
  });

  it('attach to a -it container with our stdin not a terminal: "the input device is not a TTY"', () => {
    runDit('dit-notty');
    const r = box(env.root, ['attach', 'dit-notty'], { input: 'exit\n' });
    expect(r.stderr).toContain('the input device is not a TTY');
    expect(r.code).toBe(1);
    expect(status('dit-notty')).toMatch(/^Up /);
  });
});
