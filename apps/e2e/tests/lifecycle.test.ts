import { spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { box, boxAsync, boxOk, useBoxRoot, waitFor } from '../helpers/box.js';

const env = useBoxRoot({ removeContainers: true });

beforeAll(() => {
  process.env.BOX_SERVICE_IDLE_MS = '2000';
});

const ok = (args: string[]) => boxOk(env.root, args);
const state = (name: string) => JSON.parse(ok(['inspect', name]))[0];

describe('detached containers', () => {
  it('runs, lists, logs, stops and removes a container after the CLI has gone', async () => {
    const id = ok([
      'run',
      '-d',
      '--name',
      'web',
      'busybox',
      'sh',
      '-c',
      'echo out; echo err >&2; exec sleep 30',
    ]);
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    await waitFor(() => box(env.root, ['logs', 'web']).stderr.includes('err'));
    const logs = box(env.root, ['logs', 'web']);
    expect(logs.stdout).toBe('out\n');
    expect(logs.stderr).toBe('err\n');
    expect(box(env.root, ['logs', '-t', 'web']).stdout).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z out\n$/,
    );
    const ps = ok(['ps']);
    expect(ps).toMatch(/^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$/m);
    expect(ps).toMatch(new RegExp(`^${id.slice(0, 12)}\\s+busybox\\s+.*Up .*web$`, 'm'));
    expect(ok(['ps', '-q'])).toBe(id.slice(0, 12));
    expect(JSON.parse(ok(['ps', '--format', 'json']))).toMatchObject({
      ID: id.slice(0, 12),
      Names: 'web',
      State: 'running',
    });
    expect(ok(['ps', '--format', '{{.Names}}:{{.State}}'])).toBe('web:running');
    expect(state('web').State).toMatchObject({ Status: 'running', Running: true });
    // Short unique prefixes work everywhere a container is named.
    expect(ok(['inspect', '-f', '{{.Name}}', id.slice(0, 5)])).toBe('/web');

    // `sleep` as PID 1 ignores SIGTERM: stop waits -t seconds, then kills.
    const started = Date.now();
    expect(ok(['stop', '-t', '1', 'web'])).toBe('web');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(state('web').State).toMatchObject({ Status: 'exited', Running: false, ExitCode: 137 });
    expect(ok(['ps'])).not.toContain('web');
    expect(ok(['ps', '-a'])).toMatch(/Exited \(137\) .* ago\s+web/);
    expect(ok(['rm', 'web'])).toBe('web');
    expect(box(env.root, ['inspect', 'web']).code).toBe(1);
  });

  it('records the exit code after the CLI exited, and box wait returns it', () => {
    ok(['run', '-d', '--name', 'three', 'busybox', 'sh', '-c', 'sleep 0.3; exit 3']);
    expect(ok(['wait', 'three'])).toBe('3');
    expect(state('three').State).toMatchObject({ Status: 'exited', ExitCode: 3 });
  });

  it('stops a process that handles SIGTERM without waiting for the timeout', () => {
    ok([
      'run',
      '-d',
      '--name',
      'polite',
      'busybox',
      'sh',
      '-c',
      'trap "exit 0" TERM; while true; do sleep 0.1; done',
    ]);
    const started = Date.now();
    ok(['stop', '-t', '20', 'polite']);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(state('polite').State.ExitCode).toBe(0);
  });

  it('create + start [-a], restart, kill -s, rename', async () => {
    const id = ok(['create', '--name', 'later', 'busybox', 'sh', '-c', 'echo started; exit 4']);
    expect(state('later').State.Status).toBe('created');
    const attached = box(env.root, ['start', '-a', 'later']);
    expect(attached.stdout).toBe('started\n');
    expect(attached.code).toBe(4);

    ok([
      'run',
      '-d',
      '--name',
      'svc',
      'busybox',
      'sh',
      '-c',
      'trap "echo hup" HUP; while true; do sleep 0.1; done',
    ]);
    ok(['kill', '-s', 'HUP', 'svc']);
    await waitFor(() => box(env.root, ['logs', 'svc']).stdout.includes('hup'));
    const firstStart = state('svc').State.StartedAt;
    ok(['restart', '-t', '1', 'svc']);
    expect(state('svc').State.Running).toBe(true);
    expect(state('svc').State.StartedAt).not.toBe(firstStart);
    ok(['rename', 'svc', 'svc2']);
    expect(state('svc2').Name).toBe('/svc2');
    expect(box(env.root, ['inspect', 'svc']).code).toBe(1);
    ok(['kill', 'svc2']);
    expect(ok(['wait', 'svc2'])).toBe('137');
    void id;
  });

  it('restarts on failure up to the limit, and --rm removes a detached container when it ends', async () => {
    ok([
      'run',
      '-d',
      '--name',
      'flaky',
      '--restart',
      'on-failure:2',
      'busybox',
      'sh',
      '-c',
      'echo try; exit 1',
    ]);
    await waitFor(() => {
      const s = state('flaky');
      return s.RestartCount === 2 && s.State.Status === 'exited';
    }, 10_000);
    expect(box(env.root, ['logs', 'flaky']).stdout).toBe('try\ntry\ntry\n');

    ok(['run', '-d', '--rm', '--name', 'gone', 'busybox', 'true']);
    await waitFor(() => box(env.root, ['inspect', 'gone']).code === 1);
  });

  it('follows logs live with -f, across rotation', async () => {
    ok([
      'run',
      '-d',
      '--name',
      'chatty',
      '--log-opt',
      'max-size=2k',
      '--log-opt',
      'max-file=2',
      'busybox',
      'sh',
      '-c',
      'i=0; while [ $i -lt 300 ]; do echo "line $i"; i=$((i+1)); sleep 0.005; done',
    ]);
    const follow = boxAsync(env.root, ['logs', '-f', '--tail', '0', 'chatty']);
    const r = await follow.done;
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    // Follows to the end, in order, with nothing repeated.
    expect(lines.at(-1)).toBe('line 299');
    const numbers = lines.map((l) => Number(l.split(' ')[1]));
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    expect(new Set(numbers).size).toBe(numbers.length);
    const dir = join(env.root, 'containers', state('chatty').Id);
    expect(
      readdirSync(dir)
        .filter((f) => f.startsWith('json.log'))
        .sort(),
    ).toEqual(['json.log', 'json.log.1']);
    expect(readFileSync(join(dir, 'json.log')).length).toBeLessThanOrEqual(2048);
  });
});

describe('box exec', () => {
  it("joins the container's namespaces and cgroup, sees its processes, hostname and files", () => {
    ok([
      'run',
      '-d',
      '--name',
      'target',
      '--hostname',
      'inside',
      'busybox',
      'sh',
      '-c',
      'echo data > /tmp/file; exec sleep 30',
    ]);
    const r = box(env.root, [
      'exec',
      '-e',
      'X=1',
      '-w',
      '/tmp',
      'target',
      'sh',
      '-c',
      'hostname; cat file; echo $X $(pwd); ps -o pid,comm; cat /proc/self/cgroup | grep memory',
    ]);
    expect(r.code).toBe(0);
    const [host, file, vars] = r.stdout.split('\n');
    expect([host, file, vars]).toEqual(['inside', 'data', '1 /tmp']);
    expect(r.stdout).toMatch(/^\s*1 sleep$/m);
    expect(r.stdout).toContain(`memory:/box/${state('target').Id}`);
    expect(box(env.root, ['exec', 'target', 'sh', '-c', 'exit 7']).code).toBe(7);
    expect(box(env.root, ['exec', 'target', 'nope']).code).toBe(127);
    expect(box(env.root, ['exec', '-u', 'nobody', 'target', 'id', '-u']).stdout.trim()).toBe('65534');
  });

  it('works in an image without a shell', () => {
    const rootfs = mkdtempSync(join(tmpdir(), 'box-noshell-'));
    try {
      mkdirSync(join(rootfs, 'bin'));
      for (const applet of ['sleep', 'ls', 'cat']) copyFileSync('/bin/busybox', join(rootfs, 'bin', applet));
      for (const dir of ['proc', 'dev', 'sys', 'etc']) mkdirSync(join(rootfs, dir));
      writeFileSync(join(rootfs, 'etc/motd'), 'no shell here\n');
      expect(
        spawnSync('tar', ['-C', rootfs, '-cf', join(rootfs, '..', `${rootfs.split('/').pop()}.tar`), '.'])
          .status,
      ).toBe(0);
      ok(['import', '-c', 'ENV PATH=/bin', '-c', 'CMD ["sleep", "30"]', `${rootfs}.tar`, 'noshell']);
    } finally {
      rmSync(rootfs, { recursive: true, force: true });
      rmSync(`${rootfs}.tar`, { force: true });
    }
    ok(['run', '-d', '--name', 'bare', 'noshell']);
    expect(ok(['exec', 'bare', 'cat', '/etc/motd'])).toBe('no shell here');
    expect(ok(['exec', 'bare', 'ls', '/bin']).split('\n')).toEqual(['cat', 'ls', 'sleep']);
    expect(box(env.root, ['exec', 'bare', 'sh']).code).toBe(127);
  });
});

describe('box cp', () => {
  it('copies both ways, running or stopped, and never follows a container symlink to the host', () => {
    const dir = mkdtempSync(join(tmpdir(), 'box-cp-'));
    try {
      writeFileSync(join(dir, 'in.txt'), 'to the container\n');
      ok([
        'run',
        '-d',
        '--name',
        'cpd',
        'busybox',
        'sh',
        '-c',
        'echo from > /root/out.txt; ln -s /etc /root/hostlink; exec sleep 30',
      ]);
      ok(['cp', join(dir, 'in.txt'), 'cpd:/tmp/']);
      expect(ok(['exec', 'cpd', 'cat', '/tmp/in.txt'])).toBe('to the container');
      ok(['cp', 'cpd:/root/out.txt', join(dir, 'out.txt')]);
      expect(readFileSync(join(dir, 'out.txt'), 'utf8')).toBe('from\n');
      // /root/hostlink -> /etc is the container's /etc, not the host's.
      ok(['cp', 'cpd:/root/hostlink/passwd', join(dir, 'passwd')]);
      expect(readFileSync(join(dir, 'passwd'), 'utf8')).toBe(
        box(env.root, ['exec', 'cpd', 'cat', '/etc/passwd']).stdout,
      );
      ok(['stop', '-t', '0', 'cpd']);
      // Stopped: through its layers.
      ok(['cp', join(dir, 'in.txt'), 'cpd:/root/later.txt']);
      ok(['cp', 'cpd:/root/later.txt', join(dir, 'back.txt')]);
      expect(readFileSync(join(dir, 'back.txt'), 'utf8')).toBe('to the container\n');
      expect(box(env.root, ['cp', 'cpd:/nope', dir]).code).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('many containers at once', () => {
  it('50 parallel run -d get unique IDs and names, then rm -f leaves nothing', async () => {
    const runs = Array.from(
      { length: 50 },
      (_, i) => boxAsync(env.root, ['run', '-d', '--name', `par${i}`, 'busybox', 'sleep', '30']).done,
    );
    const results = await Promise.all(runs);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const ids = results.map((r) => r.stdout.trim());
    expect(new Set(ids).size).toBe(50);
    const listed = ok(['ps', '--format', '{{.Names}}']).split('\n').sort();
    expect(listed).toEqual(Array.from({ length: 50 }, (_, i) => `par${i}`).sort());
    for (const id of ids) {
      const record = JSON.parse(readFileSync(join(env.root, 'containers', id, 'state.json'), 'utf8'));
      expect(record).toMatchObject({ id, status: 'running' });
    }
    const removals = await Promise.all(
      [0, 1, 2, 3, 4].map((k) => boxAsync(env.root, ['rm', '-f', ...ids.filter((_, i) => i % 5 === k)]).done),
    );
    for (const r of removals) expect(r.code, r.stderr).toBe(0);
    expect(ok(['ps', '-a', '-q'])).toBe('');
  }, 120_000);
});

describe('the box service', () => {
  it('a service on its way out (socket gone, lock still held) does not fail the next command', async () => {
    // Until the idle service of the tests above has gone.
    await waitFor(() => findService() === 0, 10_000);
    // An exiting service removes its socket, then lets go of its lock: hold the lock as it would
    // for 1.5 s. The service the next command starts exits on the lock; the command must start
    // another one rather than wait for a socket nobody will make.
    const lock = join(env.root, 'service.lock');
    const holder = spawn('flock', ['-x', lock, 'sleep', '1.5'], { stdio: 'ignore' });
    await waitFor(() => spawnSync('flock', ['-n', lock, 'true']).status === 1);
    const r = await boxAsync(env.root, ['run', '-d', '--name', 'afterlock', 'busybox', 'true']).done;
    expect(holder.exitCode).toBe(0); // the lock was held until after the first service had gone
    expect(r.code, r.stderr).toBe(0);
    ok(['rm', '-f', 'afterlock']);
  });
});

describe('recovery after SIGKILL', () => {
  it('a killed service: containers keep running, are adopted, and their end is recorded', async () => {
    ok(['run', '-d', '--name', 'survivor', 'busybox', 'sh', '-c', 'sleep 1; exit 5']);
    const service = findService();
    expect(service).toBeGreaterThan(0);
    process.kill(service, 'SIGKILL');
    // The next command starts a new service, which adopts the orphan.
    expect(ok(['ps', '--format', '{{.Names}}'])).toBe('survivor');
    await waitFor(() => state('survivor').State.Status === 'exited', 10_000);
    expect(state('survivor').State).toMatchObject({ ExitCode: 255 });
    expect(state('survivor').State.Error).toContain('exit status is unknown');
  });

  it('a box killed during stop or rm: the next command finishes the job', async () => {
    ok(['run', '-d', '--name', 'victim', 'busybox', 'sleep', '30']);
    const stopping = boxAsync(env.root, ['stop', '-t', '30', 'victim']);
    await new Promise((r) => setTimeout(r, 300));
    stopping.child.kill('SIGKILL');
    await stopping.done;
    expect(state('victim').State.Running).toBe(true);
    const removing = boxAsync(env.root, ['rm', '-f', 'victim']);
    await removing.done;
    expect(box(env.root, ['inspect', 'victim']).code).toBe(1);
  });
});

describe('bad input', () => {
  it.each([
    [['logs', 'nosuch'], 1, /No such container: nosuch/],
    [['stop', 'nosuch'], 1, /No such container: nosuch/],
    [['kill', '-s', 'BOGUS', 'x'], 1, /invalid signal: BOGUS/],
    [['ps', '--format', '{{.Nope}}'], 125, /template parsing error: .*can't evaluate field Nope/],
    [['run', '--restart', 'sometimes', 'busybox'], 125, /invalid restart policy/],
    [['run', '--log-opt', 'max-size=big', 'busybox'], 125, /invalid --log-opt max-size/],
    [['run', '--rm', '--restart', 'always', 'busybox'], 125, /Conflicting options/],
  ])('%j exits %i with one line', (args, code, message) => {
    const r = box(env.root, args as string[]);
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('refuses to remove a running container without -f, and ambiguous prefixes', () => {
    ok(['run', '-d', '--name', 'busy1', 'busybox', 'sleep', '30']);
    const r = box(env.root, ['rm', 'busy1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/container is running/);
    expect(state('busy1').State.Running).toBe(true);
    expect(box(env.root, ['exec', 'busy1']).code).toBe(125);
  });
});

function findService(): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (
        cmd.includes('service') &&
        cmd.includes('system') &&
        readFileSync(`/proc/${entry}/environ`, 'utf8').includes(`BOX_ROOT=${env.root}`)
      ) {
        return Number(entry);
      }
    } catch {
      // gone
    }
  }
  return 0;
}
