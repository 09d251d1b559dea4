/**
 * What a docker user types first, as docker answers it: one row per habit (the docker CLI issue).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boxBin, boxOk, useBoxRoot } from '../helpers/box.js';

const env = useBoxRoot({ removeContainers: true });
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'box-e2e-habits-'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The box command as a user runs it: the built file through its #! line, not `node FILE`. */
function box(root: string, args: string[], options: { env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(boxBin, args, {
    env: { ...process.env, ...options.env, BOX_ROOT: root },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('run --env-file and --entrypoint', () => {
  it('--env-file: KEY=VALUE as written, a bare KEY from the host, comments skipped; -e wins', () => {
    const file = join(dir, 'app.env');
    writeFileSync(
      file,
      '# settings\nGREETING=hello world\n\n  SPACED=  kept  \nFROM_HOST\nUNSET_ON_HOST\nOVERRIDDEN=file\n',
    );
    const r = box(env.root, ['run', '--rm', '--env-file', file, '-e', 'OVERRIDDEN=flag', 'busybox', 'env'], {
      env: { FROM_HOST: 'from the host', UNSET_ON_HOST: undefined },
    });
    expect(r.code, r.stderr).toBe(0);
    const vars = r.stdout.split('\n');
    expect(vars).toContain('GREETING=hello world');
    expect(vars).toContain('SPACED=  kept  ');
    expect(vars).toContain('FROM_HOST=from the host');
    expect(vars).toContain('OVERRIDDEN=flag');
    expect(vars.some((v) => v.startsWith('UNSET_ON_HOST'))).toBe(false);
    expect(vars.some((v) => v.startsWith('#'))).toBe(false);
  });

  it('--env-file that is missing, or a name with a space: one line, exit 125, nothing made', () => {
    const missing = box(env.root, ['run', '--rm', '--env-file', join(dir, 'nope.env'), 'busybox', 'true']);
    expect([missing.code, missing.stderr.trim()]).toEqual([
      125,
      `box: open ${join(dir, 'nope.env')}: no such file or directory`,
    ]);
    const bad = join(dir, 'bad.env');
    writeFileSync(bad, 'MY VAR=1\n');
    const spaced = box(env.root, ['run', '--rm', '--env-file', bad, 'busybox', 'true']);
    expect([spaced.code, spaced.stderr.trim()]).toEqual([125, "box: variable 'MY VAR' contains whitespaces"]);
    expect(boxOk(env.root, ['ps', '-aq'])).toBe('');
  });

  it("--entrypoint replaces the image's and drops its Cmd; arguments follow it", () => {
    expect(boxOk(env.root, ['run', '--rm', '--entrypoint', 'echo', 'busybox', 'via', 'entrypoint'])).toBe(
      'via entrypoint',
    );
    // busybox's Cmd (sh) is not passed to the new entrypoint.
    expect(boxOk(env.root, ['run', '--rm', '--entrypoint', 'echo', 'busybox'])).toBe('');
    expect(boxOk(env.root, ['run', '--rm', '--entrypoint', '', 'busybox', 'echo', 'cleared'])).toBe(
      'cleared',
    );
  });
});

describe('save and load through stdout and stdin', () => {
  it('box save IMG > FILE, box save IMG | tar, box load < FILE; never to a terminal', () => {
    const archive = join(dir, 'busybox.tar');
    const saved = spawnSync('sh', ['-c', `${boxBin} save busybox > ${archive}`], {
      env: { ...process.env, BOX_ROOT: env.root },
      encoding: 'utf8',
    });
    expect(saved.status, saved.stderr).toBe(0);
    const listed = spawnSync('sh', ['-c', `${boxBin} save busybox | tar -t`], {
      env: { ...process.env, BOX_ROOT: env.root },
      encoding: 'utf8',
    });
    expect(listed.stdout.split('\n')).toContain('manifest.json');
    const id = boxOk(env.root, ['image', 'inspect', '-f', '{{.Id}}', 'busybox']);
    // Gone from the store, then back from the archive on stdin, with the same ID.
    boxOk(env.root, ['rmi', 'busybox']);
    expect(boxOk(env.root, ['images', '-q'])).toBe('');
    const loaded = spawnSync('sh', ['-c', `${boxBin} load < ${archive}`], {
      env: { ...process.env, BOX_ROOT: env.root },
      encoding: 'utf8',
    });
    expect([loaded.status, loaded.stdout]).toEqual([0, 'Loaded image: busybox:latest\n']);
    expect(boxOk(env.root, ['image', 'inspect', '-f', '{{.Id}}', 'busybox'])).toBe(id);
    const empty = spawnSync('sh', ['-c', `${boxBin} load < /dev/null`], {
      env: { ...process.env, BOX_ROOT: env.root },
      encoding: 'utf8',
    });
    expect([empty.status, empty.stderr.trim()]).toEqual([
      1,
      'box: requested load from stdin, but stdin is empty',
    ]);
    // On a terminal (util-linux script gives it one): refused, nothing written to it.
    const tty = spawnSync('script', ['-qec', `${boxBin} save busybox`, '/dev/null'], {
      env: { ...process.env, BOX_ROOT: env.root },
      encoding: 'utf8',
    });
    expect(tty.status).toBe(1);
    expect(tty.stdout).toContain('cowardly refusing to save to a terminal. Use the -o flag or redirect');
  });
});

describe('-it without a terminal', () => {
  it('echo cmd | box run -it … and box exec -it …: "the input device is not a TTY", exit 1, at once', () => {
    const run = box(env.root, ['run', '--rm', '-it', 'busybox', 'sh'], {});
    expect([run.code, run.stderr.trim()]).toEqual([1, 'box: the input device is not a TTY']);
    const id = boxOk(env.root, ['run', '-d', 'busybox', 'sleep', '100']);
    const exec = box(env.root, ['exec', '-it', id, 'sh']);
    expect([exec.code, exec.stderr.trim()]).toEqual([1, 'box: the input device is not a TTY']);
    // -t alone (no input asked for) still runs.
    expect(boxOk(env.root, ['exec', '-t', id, 'echo', 'tty without input'])).toBe('tty without input');
    boxOk(env.root, ['rm', '-f', id]);
  });
});

describe('prune asks first', () => {
  /** `args` run on a terminal (util-linux script) that types `input` a moment later. */
  function onTerminal(args: string[], input: string) {
    const line = [boxBin, ...args].join(' ');
    return spawnSync('sh', ['-c', `(sleep 1; printf '${input}') | script -qefc '${line}' /dev/null`], {
      env: { ...process.env, BOX_ROOT: env.root },
      encoding: 'utf8',
      timeout: 20_000,
    });
  }

  it('refused without -f when stdin is not a terminal; [y/N] on one; -f does it at once', () => {
    boxOk(env.root, ['create', '--name', 'stopped1', 'busybox', 'true']);
    for (const args of [
      ['system', 'prune'],
      ['image', 'prune', '-a'],
      ['volume', 'prune'],
      ['network', 'prune'],
    ]) {
      const r = box(env.root, args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toContain('stdin is not a terminal to confirm on (use -f)');
    }
    expect(boxOk(env.root, ['ps', '-aq'])).not.toBe('');
    const no = onTerminal(['system', 'prune'], 'n\\n');
    expect(no.stdout).toContain('WARNING! This will remove:');
    expect(no.stdout).toContain('Are you sure you want to continue? [y/N]');
    expect(boxOk(env.root, ['ps', '-aq'])).not.toBe('');
    const yes = onTerminal(['system', 'prune'], 'y\\n');
    expect(yes.stdout).toContain('Deleted Containers:');
    expect(boxOk(env.root, ['ps', '-aq'])).toBe('');
    boxOk(env.root, ['create', '--name', 'stopped2', 'busybox', 'true']);
    expect(boxOk(env.root, ['system', 'prune', '-f'])).toContain('Total: 1');
  });
});

describe('cp with archive streams', () => {
  it('box cp C:PATH - writes a tar; box cp - C:DIR extracts one; no staging left', () => {
    const id = boxOk(env.root, ['run', '-d', 'busybox', 'sleep', '100']);
    boxOk(env.root, ['exec', id, 'sh', '-c', 'mkdir -p /data && echo inside > /data/file']);
    const sh = (line: string) =>
      spawnSync('sh', ['-c', line], { env: { ...process.env, BOX_ROOT: env.root }, encoding: 'utf8' });
    const out = sh(`${boxBin} cp ${id}:/data - | tar -xOf - data/file`);
    expect([out.status, out.stdout]).toEqual([0, 'inside\n']);
    writeFileSync(join(dir, 'from-host.txt'), 'from the host\n');
    const put = sh(`tar -C ${dir} -cf - from-host.txt | ${boxBin} cp - ${id}:/data`);
    expect(put.status, put.stderr).toBe(0);
    expect(boxOk(env.root, ['exec', id, 'cat', '/data/from-host.txt'])).toBe('from the host');
    const missing = sh(`${boxBin} cp ${id}:/nope - > /dev/null`);
    expect([missing.status, missing.stderr.trim()]).toEqual([
      1,
      `box: Could not find the file /nope in container ${id}`,
    ]);
    boxOk(env.root, ['rm', '-f', id]);
    expect(readdirSync(env.root).filter((f) => f.startsWith('cp-'))).toEqual([]);
  });
});

describe('history', () => {
  it("box history lists the image's steps newest first, the top one with the image ID", () => {
    const c = boxOk(env.root, ['run', '-d', 'busybox', 'sh', '-c', 'echo x > /made; sleep 100']);
    const image = boxOk(env.root, ['commit', '-m', 'a note', c, 'historic:1']);
    // docker's spelling of commit without the pause (box's own is --no-pause).
    boxOk(env.root, ['commit', '--pause=false', c, 'unpaused:1']);
    expect(boxOk(env.root, ['run', '--rm', 'unpaused:1', 'cat', '/made'])).toBe('x');
    boxOk(env.root, ['rmi', 'unpaused:1']);
    boxOk(env.root, ['rm', '-f', c]);
    const lines = boxOk(env.root, ['history', 'historic:1']).split('\n');
    expect(lines[0]).toMatch(/^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(new RegExp(`^${image.replace('sha256:', '').slice(0, 12)}\\s.*a note$`));
    expect(lines[2]).toMatch(/^<missing>\s.*box import/);
    expect(boxOk(env.root, ['image', 'history', '-q', 'historic:1']).split('\n')).toHaveLength(2);
    const missing = box(env.root, ['history', 'no-such-image']);
    expect([missing.code, missing.stderr.trim().split('\n').length]).toEqual([1, 1]);
    boxOk(env.root, ['rmi', 'historic:1']);
  });
});

describe('inspect and the container group', () => {
  it('box inspect IMAGE shows the image; an unknown name is "No such object", exit 1', () => {
    const [image] = JSON.parse(boxOk(env.root, ['inspect', 'busybox']));
    expect(image.Id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(image.RepoTags).toContain('busybox:latest');
    const r = box(env.root, ['inspect', 'no-such-thing']);
    expect([r.code, r.stdout.trim(), r.stderr.trim()]).toEqual([
      1,
      '[]',
      'box: No such object: no-such-thing',
    ]);
  });

  it('Config.User is the user as given, not its ids', () => {
    const id = boxOk(env.root, ['create', '-u', 'nobody', 'busybox', 'id']);
    expect(boxOk(env.root, ['inspect', '-f', '{{.Config.User}}', id])).toBe('nobody');
    const plain = boxOk(env.root, ['create', 'busybox', 'true']);
    expect(boxOk(env.root, ['inspect', '-f', '{{json .Config.User}}', plain])).toBe('""');
    boxOk(env.root, ['rm', id, plain]);
  });

  it('box container ls|run|rm|prune are the container commands', () => {
    expect(boxOk(env.root, ['container', 'run', '--rm', 'busybox', 'echo', 'grouped'])).toBe('grouped');
    const id = boxOk(env.root, ['container', 'create', '--name', 'grouped1', 'busybox', 'true']);
    expect(boxOk(env.root, ['container', 'ls', '-a', '--format', '{{.Names}}'])).toBe('grouped1');
    expect(boxOk(env.root, ['container', 'rm', id])).toBe(id);
    expect(boxOk(env.root, ['container', 'ls', '-aq'])).toBe('');
  });
});

describe('ps -n, -l and --filter', () => {
  it('picks the last created, and filters by name, status, ancestor, exit code', async () => {
    const first = boxOk(env.root, ['run', '-d', '--name', 'filt-run', 'busybox', 'sleep', '100']);
    const second = boxOk(env.root, ['create', '--name', 'filt-created', 'busybox', 'true']);
    expect(box(env.root, ['run', '--name', 'filt-exited', 'busybox', 'sh', '-c', 'exit 3']).code).toBe(3);
    const names = (args: string[]) => boxOk(env.root, ['ps', ...args, '--format', '{{.Names}}']).split('\n');
    expect(names(['-l'])).toEqual(['filt-exited']);
    expect(names(['-n', '2'])).toEqual(['filt-exited', 'filt-created']);
    expect(names(['--filter', 'name=filt-'])).toEqual(['filt-run']);
    expect(names(['-a', '--filter', 'name=filt-', '--filter', 'status=created'])).toEqual(['filt-created']);
    expect(names(['--filter', 'status=exited'])).toEqual(['filt-exited']);
    expect(names(['--filter', 'exited=3'])).toEqual(['filt-exited']);
    expect(names(['-a', '--filter', 'ancestor=busybox']).sort()).toEqual([
      'filt-created',
      'filt-exited',
      'filt-run',
    ]);
    expect(boxOk(env.root, ['ps', '-q', '--filter', `id=${first.slice(0, 6)}`])).toBe(first.slice(0, 12));
    const bad = box(env.root, ['ps', '--filter', 'colour=red']);
    expect([bad.code, bad.stderr.trim()]).toEqual([125, "box: invalid filter 'colour'"]);
    boxOk(env.root, ['rm', '-f', first, second, 'filt-exited']);
  });
});

describe('version and info', () => {
  it("box version and box info in docker's shapes, with --format", () => {
    expect(boxOk(env.root, ['version'])).toMatch(/^Client:\n Version: +\S+\n Node\.js version: +v\d+/);
    expect(boxOk(env.root, ['version', '-f', '{{.Server.Os}}/{{.Client.Os}}'])).toBe('linux/linux');
    const id = boxOk(env.root, ['create', 'busybox', 'true']);
    expect(
      boxOk(env.root, ['info', '-f', '{{.Containers}} {{.ContainersStopped}} {{.Driver}} {{.OSType}}']),
    ).toBe('1 1 overlay2 linux');
    expect(Number(boxOk(env.root, ['info', '-f', '{{.Images}}']))).toBeGreaterThanOrEqual(1);
    expect(boxOk(env.root, ['info'])).toMatch(
      /^Server:\n Containers: 1\n {2}Running: 0\n {2}Paused: 0\n {2}Stopped: 1\n/,
    );
    boxOk(env.root, ['rm', id]);
  });
});

describe('images REPOSITORY[:TAG], --digests, -a', () => {
  it('lists only that repository (and tag); --digests adds the column', () => {
    boxOk(env.root, ['tag', 'busybox', 'other/repo:v1']);
    boxOk(env.root, ['tag', 'busybox', 'other/repo:v2']);
    const rows = (args: string[]) =>
      boxOk(env.root, ['images', ...args, '--format', '{{.Repository}}:{{.Tag}}'])
        .split('\n')
        .sort();
    expect(rows(['other/repo'])).toEqual(['other/repo:v1', 'other/repo:v2']);
    expect(rows(['other/repo:v2'])).toEqual(['other/repo:v2']);
    expect(rows(['-a', 'busybox'])).toEqual(['busybox:latest']);
    expect(boxOk(env.root, ['images', 'nothing/here'])).toMatch(
      /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/,
    );
    expect(boxOk(env.root, ['images', '--digests', 'other/repo']).split('\n')[0]).toMatch(
      /^REPOSITORY\s+TAG\s+DIGEST\s+IMAGE ID\s+CREATED\s+SIZE$/,
    );
    expect(boxOk(env.root, ['images', '--digests', '--format', '{{.Digest}}', 'other/repo:v1'])).toBe(
      '<none>',
    );
    boxOk(env.root, ['rmi', 'other/repo:v1', 'other/repo:v2']);
  });
});

describe('run -a stdin|stdout|stderr', () => {
  it('attaches only the streams named; -a with -d or a bad stream: one line, exit 125', () => {
    const script = 'echo out; echo err >&2';
    const out = box(env.root, ['run', '--rm', '-a', 'stdout', 'busybox', 'sh', '-c', script]);
    expect([out.code, out.stdout, out.stderr]).toEqual([0, 'out\n', '']);
    const err = box(env.root, ['run', '--rm', '-a', 'STDERR', 'busybox', 'sh', '-c', script]);
    expect([err.code, err.stdout, err.stderr]).toEqual([0, '', 'err\n']);
    const both = spawnSync(boxBin, ['run', '--rm', '-i', '-a', 'stdin', '-a', 'stdout', 'busybox', 'cat'], {
      env: { ...process.env, BOX_ROOT: env.root },
      input: 'piped in\n',
      encoding: 'utf8',
    });
    expect([both.status, both.stdout]).toEqual([0, 'piped in\n']);
    boxOk(env.root, ['create', '--name', 'attach-out', '-a', 'stdout', 'busybox', 'true']);
    expect(
      boxOk(env.root, [
        'inspect',
        '-f',
        '{{.Config.AttachStdin}} {{.Config.AttachStdout}} {{.Config.AttachStderr}}',
        'attach-out',
      ]),
    ).toBe('false true false');
    boxOk(env.root, ['rm', 'attach-out']);
    const detached = box(env.root, ['run', '-d', '-a', 'stdout', 'busybox', 'true']);
    expect([detached.code, detached.stderr.trim()]).toEqual([125, 'box: Conflicting options: -a and -d']);
    const bad = box(env.root, ['run', '-a', 'nope', 'busybox', 'true']);
    expect([bad.code, bad.stderr.trim()]).toEqual([
      125,
      'box: invalid argument "nope" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR',
    ]);
    expect(boxOk(env.root, ['ps', '-aq'])).toBe('');
  });
});

describe('logs of a foreground container', () => {
  it('what a foreground run wrote is in its log, stdout and stderr apart; nothing is kept with --rm', () => {
    const r = box(env.root, ['run', '--name', 'fg-logged', 'busybox', 'sh', '-c', 'echo out; echo err >&2']);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, 'out\n', 'err\n']);
    const logs = box(env.root, ['logs', 'fg-logged']);
    expect([logs.code, logs.stdout, logs.stderr]).toEqual([0, 'out\n', 'err\n']);
    // A second run of it adds to the same log, as docker's.
    boxOk(env.root, ['start', '-a', 'fg-logged']);
    expect(box(env.root, ['logs', 'fg-logged']).stdout).toBe('out\nout\n');
    boxOk(env.root, ['rm', 'fg-logged']);
    const gone = box(env.root, ['run', '--rm', 'busybox', 'echo', 'not kept']);
    expect(gone.stdout).toBe('not kept\n');
    expect(boxOk(env.root, ['ps', '-aq'])).toBe('');
  });
});
