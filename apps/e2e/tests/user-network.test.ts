/**
 * The user-mode network (`--network slirp4netns[:OPTIONS]`, podman's): tap0 with 10.0.2.100 and a
 * default route through 10.0.2.2 made by slirp4netns in the container's network namespace,
 * ports published through its API socket and answered on 127.0.0.1, the host's loopback closed
 * to the container unless allowed, and slirp4netns gone with the container whichever way it
 * ends (exit, rm -f, a SIGKILLed box or box service). Traffic stays on this machine: the
 * test's own listeners on 127.0.0.1 and the containers; nothing asks slirp4netns's DNS.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import * as ns from '@box/ns';
import { describe, expect, it } from 'vitest';
import { box, boxAsync, boxBin, boxOk, useBoxRoot, waitFor } from '../helpers/box.js';
import { httpGet, slirpProcesses } from '../helpers/network.js';
import { parentOf, servicePid, stateOf, statFields } from '../helpers/procs.js';

const env = useBoxRoot({ removeContainers: true });

const get = httpGet;

/** A TCP server of the test's on 127.0.0.1:port that greets and closes. */
async function listen(port: number, greeting = 'hello-from-the-host\n'): Promise<Server> {
  const server = createServer((socket) => socket.end(greeting));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return server;
}

const close = (server: Server) => new Promise((resolve) => server.close(resolve));

/** The pid in the slirp4netns.pid file of this file's one running container, once there is one. */
async function recordedSlirpPid(): Promise<number> {
  let pid = 0;
  await waitFor(() => {
    for (const id of readdirSync(join(env.root, 'containers'))) {
      try {
        pid = Number(readFileSync(join(env.root, 'containers', id, 'slirp4netns.pid'), 'utf8').split(' ')[0]);
        return pid > 0;
      } catch {
        // not this one, or not yet
      }
    }
    return false;
  }, 10_000);
  return pid;
}

const PR_SET_CHILD_SUBREAPER = 36;

/**
 * A Node program that runs its arguments as a child and waits to be killed. Node reaps only the
 * children it started, so under PR_SET_CHILD_SUBREAPER the orphans it adopts stay zombies.
 */
const NON_REAPING_PARENT = `require('node:child_process').spawn(process.execPath, process.argv.slice(1), { stdio: 'inherit' }); setInterval(() => {}, 1 << 30);`;

/** The slirp4netns files a container keeps in its directory while it runs. */
const slirpFiles = (id: string) =>
  ['slirp4netns.sock', 'slirp4netns.pid'].filter((f) => existsSync(join(env.root, 'containers', id, f)));

const httpd = (flags: string[]) =>
  boxOk(env.root, [
    'run',
    '-d',
    '--network',
    'slirp4netns',
    ...flags,
    'busybox',
    'httpd',
    '-f',
    '-p',
    '80',
    '-h',
    '/etc',
  ]);

describe('--network slirp4netns', () => {
  it('gives the container tap0 with 10.0.2.100/24, a default route via 10.0.2.2, DNS 10.0.2.3', () => {
    const out = boxOk(env.root, [
      'run',
      '--rm',
      '--network',
      'slirp4netns',
      '--hostname',
      'slirpy',
      'busybox',
      'sh',
      '-c',
      'ip -4 -o addr show tap0; ip route; ip link show tap0; echo ---; cat /etc/resolv.conf; echo ---; cat /etc/hosts',
    ]);
    const [links, resolv, hosts] = out.split('---\n');
    expect(links).toMatch(/tap0\s+inet 10\.0\.2\.100\/24 /);
    expect(links).toMatch(/^default via 10\.0\.2\.2 dev tap0/m);
    expect(links).toMatch(/tap0: .* mtu 65520 /);
    expect(resolv!.trim().split('\n')).toEqual(['nameserver 10.0.2.3']);
    expect(hosts).toContain('10.0.2.100\tslirpy');
    expect(slirpProcesses(env.root)).toEqual([]);
  });

  it('options: mtu and cidr, as podman writes them', () => {
    const out = boxOk(env.root, [
      'run',
      '--rm',
      '--network',
      'slirp4netns:mtu=1500,cidr=10.41.0.0/24,allow_host_loopback=false,port_handler=slirp4netns',
      'busybox',
      'sh',
      '-c',
      'ip -4 -o addr show tap0; ip route; ip link show tap0; cat /etc/resolv.conf',
    ]);
    expect(out).toMatch(/inet 10\.41\.0\.100\/24 /);
    expect(out).toMatch(/^default via 10\.41\.0\.2 dev tap0/m);
    expect(out).toMatch(/mtu 1500 /);
    expect(out).toContain('nameserver 10.41.0.3');
  });

  it('publishes -p on the host through slirp4netns: 127.0.0.1 answers; port and ps show it', async () => {
    const id = httpd(['-p', '127.0.0.1:18491:80', '-p', '18492:80']);
    const hostname = id.slice(0, 12);
    expect((await get('127.0.0.1', 18491)).trim()).toBe(hostname);
    expect((await get('127.0.0.1', 18492)).trim()).toBe(hostname);
    expect(boxOk(env.root, ['port', id]).split('\n')).toEqual([
      '80/tcp -> 127.0.0.1:18491',
      '80/tcp -> 0.0.0.0:18492',
    ]);
    expect(boxOk(env.root, ['port', id, '80']).split('\n')).toEqual(['127.0.0.1:18491', '0.0.0.0:18492']);
    expect(boxOk(env.root, ['ps', '--format', '{{.Ports}}'])).toBe(
      '127.0.0.1:18491->80/tcp, 0.0.0.0:18492->80/tcp',
    );
    expect(slirpFiles(id)).toEqual(['slirp4netns.sock', 'slirp4netns.pid']);
    boxOk(env.root, ['rm', '-f', id]);
    expect(slirpProcesses(env.root)).toEqual([]);
    expect(existsSync(join(env.root, 'containers', id))).toBe(false);
    // The ports are free again.
    await close(await listen(18491));
  });

  it('-p CTRPORT picks a free host port; udp is published too', async () => {
    const id = httpd(['-p', '127.0.0.1::80', '-p', '127.0.0.1:18493:53/udp']);
    const lines = boxOk(env.root, ['port', id]).split('\n');
    expect(lines).toHaveLength(2);
    expect(lines).toContain('53/udp -> 127.0.0.1:18493');
    const tcp = lines.find((l) => l.startsWith('80/tcp'))!;
    const port = Number(/127\.0\.0\.1:(\d+)$/.exec(tcp)![1]);
    expect(port).toBeGreaterThan(1023);
    expect((await get('127.0.0.1', port)).trim()).toBe(id.slice(0, 12));
    boxOk(env.root, ['rm', '-f', id]);
  });

  it("slirp4netns gets nothing of box's: no environment, only its own fds", async () => {
    const id = httpd(['-p', '127.0.0.1:18494:80']);
    const [entry] = slirpProcesses(env.root);
    expect(entry).toBeDefined();
    const pid = Number(entry!.split(':')[0]);
    expect(readFileSync(`/proc/${pid}/environ`, 'utf8')).toBe('');
    const log = join(env.root, 'containers', id, 'slirp4netns.log');
    const fds = readdirSync(`/proc/${pid}/fd`).map((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`));
    for (const target of fds)
      expect(target).toMatch(
        new RegExp(
          `^(/dev/null|/dev/net/tun|anon_inode:\\[pidfd\\]|socket:\\[\\d+\\]|${log.replaceAll('.', '\\.')})$`,
        ),
      );
    expect(fds).toContain('anon_inode:[pidfd]');
    // In a session of its own: a Ctrl-C at box's terminal is not for it.
    expect(Number(statFields(pid)[3])).toBe(pid);
    boxOk(env.root, ['rm', '-f', id]);
  });

  it("the host's 127.0.0.1 is closed to the container, unless allow_host_loopback=true", async () => {
    const server = await listen(18495);
    try {
      // Run without blocking this process: the listener is in it.
      const probe = 'nc -w 2 10.0.2.2 18495 </dev/null; echo "exit=$?"';
      const run = (network: string) =>
        boxAsync(env.root, ['run', '--rm', '--network', network, 'busybox', 'sh', '-c', probe]).done;
      const closed = await run('slirp4netns');
      expect(closed.code, closed.stderr).toBe(0);
      expect(closed.stdout).not.toContain('hello-from-the-host');
      expect(closed.stdout).toMatch(/exit=[1-9]/);
      const open = await run('slirp4netns:allow_host_loopback=true');
      expect(open.code, open.stderr).toBe(0);
      expect(open.stdout).toContain('hello-from-the-host');
      expect(open.stdout).toContain('exit=0');
    } finally {
      await close(server);
    }
  });

  it('a host port in use: one line, exit 125, nothing left', async () => {
    const server = await listen(18496);
    try {
      for (const spec of ['127.0.0.1:18496:80', '18496:80']) {
        const r = box(env.root, ['run', '--rm', '--network', 'slirp4netns', '-p', spec, 'busybox', 'true']);
        expect([r.code, r.stderr.trim()]).toEqual([
          125,
          `box: Bind for ${spec.startsWith('127') ? '127.0.0.1' : '0.0.0.0'}:18496 failed: port is already allocated`,
        ]);
      }
      expect(box(env.root, ['ps', '-aq']).stdout).toBe('');
      expect(slirpProcesses(env.root)).toEqual([]);
    } finally {
      await close(server);
    }
  });

  it('ends with the container: after it exits, no slirp4netns, no API socket', async () => {
    const id = boxOk(env.root, ['run', '-d', '--network', 'slirp4netns', 'busybox', 'sh', '-c', 'sleep 1']);
    expect(slirpProcesses(env.root)).toHaveLength(1);
    await waitFor(() => boxOk(env.root, ['inspect', '-f', '{{.State.Status}}', id]) === 'exited', 10_000);
    expect(slirpProcesses(env.root)).toEqual([]);
    expect(slirpFiles(id)).toEqual([]);
    // A new start gets a new one.
    boxOk(env.root, ['start', id]);
    expect(slirpProcesses(env.root)).toHaveLength(1);
    boxOk(env.root, ['rm', '-f', id]);
    expect(slirpProcesses(env.root)).toEqual([]);
  });

  it('a SIGKILLed foreground box: slirp4netns ends with it at once, whether or not anyone reaps the container', async () => {
    // Without a service, the foreground box runs the container and slirp4netns itself. It runs
    // here under a parent of the test's that is a child subreaper and never reaps: the container
    // killed with box stays a zombie, as under a host init that reaps late or never. slirp4netns
    // must not wait for that reaping.
    const idle = servicePid(env.root);
    if (idle !== undefined) process.kill(idle, 'SIGKILL');
    await waitFor(() => servicePid(env.root) === undefined, 5000);
    const keeper = await ns.spawn({
      path: process.execPath,
      args: [
        process.execPath,
        '-e',
        NON_REAPING_PARENT,
        boxBin,
        'run',
        '--rm',
        '--network',
        'slirp4netns',
        'busybox',
        'sleep',
        '100',
      ],
      env: Object.entries({ ...process.env, BOX_ROOT: env.root }).map(([k, v]) => `${k}=${v}`),
      setup: (program) => {
        program.call('prctl', 'become a child subreaper', [PR_SET_CHILD_SUBREAPER, 1]);
      },
    });
    try {
      // Its pid as box recorded it (slirp4netns forks short-lived helpers of the same name).
      const slirpPid = await recordedSlirpPid();
      const runPid = parentOf(slirpPid);
      expect(parentOf(runPid)).toBe(keeper.pid);
      // slirp4netns's last two arguments: the container's first process and the tap device.
      const containerPid = Number(readFileSync(`/proc/${slirpPid}/cmdline`, 'utf8').split('\0').at(-3));
      expect(parentOf(containerPid)).toBe(runPid);
      process.kill(runPid, 'SIGKILL');
      // No box command in between: the pipe box held as its exit fd closed with box.
      await waitFor(() => slirpProcesses(env.root).length === 0, 5000);
      // The container went with box (its parent-death signal), and nobody has reaped it. It can
      // be a zombie a moment before the kernel hands it from the dying box to the subreaper.
      await waitFor(() => stateOf(containerPid) === 'Z' && parentOf(containerPid) !== runPid, 5000);
      expect(parentOf(containerPid)).toBe(keeper.pid);
    } finally {
      // Its zombies go to the host's init, which reaps them.
      keeper.kill('SIGKILL');
      await keeper.exited;
    }
    // The next commands finish the rest (the --rm container's record and its socket): the
    // service the first one starts removes it, which on a loaded machine can come a moment later.
    const listed = () => box(env.root, ['ps', '-a', '--format', '{{.ID}} {{.Status}}']).stdout;
    await waitFor(() => listed() === '', 10_000).catch(() => undefined);
    expect(listed()).toBe('');
  });

  it("a SIGKILLed box service, then its container's process killed: slirp4netns ends by itself", async () => {
    const id = boxOk(env.root, ['run', '-d', '--network', 'slirp4netns', 'busybox', 'sleep', '100']);
    const pid = Number(boxOk(env.root, ['inspect', '-f', '{{.State.Pid}}', id]));
    const service = servicePid(env.root);
    expect(service).toBeGreaterThan(0);
    process.kill(service!, 'SIGKILL');
    await waitFor(() => servicePid(env.root) === undefined, 5000);
    expect(slirpProcesses(env.root)).toHaveLength(1);
    process.kill(pid, 'SIGKILL');
    // Its pidfd hangs up once the killed process is reaped, here by the host's init (the service
    // that was its parent is gone), which some inits do only every few seconds.
    await waitFor(() => slirpProcesses(env.root).length === 0, 30_000);
    // The next command records its end and removes the socket.
    box(env.root, ['ps']);
    await waitFor(() => boxOk(env.root, ['inspect', '-f', '{{.State.Status}}', id]) === 'exited', 10_000);
    expect(slirpFiles(id)).toEqual([]);
    boxOk(env.root, ['rm', id]);
  });

  it('a SIGKILLed box service: the network lives on with the container, and goes with it on rm -f', async () => {
    const id = httpd(['-p', '127.0.0.1:18497:80']);
    const service = servicePid(env.root);
    expect(service).toBeGreaterThan(0);
    process.kill(service!, 'SIGKILL');
    await waitFor(() => servicePid(env.root) === undefined, 5000);
    expect(slirpProcesses(env.root)).toHaveLength(1);
    expect((await get('127.0.0.1', 18497)).trim()).toBe(id.slice(0, 12));
    // The next command starts a service, which adopts the container.
    expect(boxOk(env.root, ['ps', '--format', '{{.Ports}}'])).toBe('127.0.0.1:18497->80/tcp');
    expect((await get('127.0.0.1', 18497)).trim()).toBe(id.slice(0, 12));
    boxOk(env.root, ['rm', '-f', id]);
    expect(slirpProcesses(env.root)).toEqual([]);
    expect(existsSync(join(env.root, 'containers', id))).toBe(false);
    await close(await listen(18497));
  });

  it.each([
    [['--network', 'slirp4netns:bogus=1'], /invalid --network "slirp4netns:bogus=1": unknown option "bogus"/],
    [['--network', 'slirp4netns:port_handler=rootlesskit'], /port_handler must be slirp4netns/],
    [['--network', 'slirp4netns:mtu=big'], /mtu must be a number/],
    [['--network', 'slirp4netns:allow_host_loopback=yes'], /allow_host_loopback must be true or false/],
    [['--network', 'slirp4netns:'], /no options/],
    [['--network', 'slirp4netns', '--ip', '10.0.2.5'], /user specified IP address/],
  ])('bad input %j: one line, exit 125, nothing made', (flags, message) => {
    const r = box(env.root, ['run', '--rm', ...flags, 'busybox', 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(box(env.root, ['ps', '-aq']).stdout).toBe('');
  });

  it('a network cannot be named slirp4netns, nor can such a container join one', () => {
    const r = box(env.root, ['network', 'create', 'slirp4netns']);
    expect(r.code).toBe(125);
    expect(r.stderr.trim()).toBe('box: network name slirp4netns is reserved');
    const id = boxOk(env.root, ['create', '--network', 'slirp4netns', 'busybox', 'true']);
    const c = box(env.root, ['network', 'connect', 'bridge', id]);
    expect(c.code).not.toBe(0);
    expect(c.stderr).toMatch(/network mode slirp4netns: it cannot join a network/);
    boxOk(env.root, ['rm', id]);
  });
});
