/**
 * What a docker user types to look at containers, as docker answers it: one row per habit
 * (logs --since/--until, top with ps options, system df, diff, ps -s, cp -a).
 */
import { spawnSync } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { box, boxBin, boxOk, useBoxRoot } from '../helpers/box.js';

const env = useBoxRoot({ removeContainers: true });

describe('logs --since and --until', () => {
  it('relative, RFC 3339 and Unix times, with -t and --tail; a bad value is one line, exit 125', () => {
    boxOk(env.root, [
      'run',
      '-d',
      '--name',
      'talker',
      'busybox',
      'sh',
      '-c',
      'echo early; sleep 1.2; echo late; echo last',
    ]);
    expect(boxOk(env.root, ['wait', 'talker'])).toBe('0');
    const stamped = boxOk(env.root, ['logs', '-t', 'talker']).split('\n');
    expect(stamped.map((l) => l.split(' ')[1])).toEqual(['early', 'late', 'last']);
    const times = stamped.map((l) => l.split(' ')[0]!);
    const logs = (...args: string[]) =>
      boxOk(env.root, ['logs', ...args, 'talker'])
        .split('\n')
        .filter(Boolean);

    // Inclusive at both ends, to the nanosecond of RFC 3339 with a fraction.
    expect(logs('--since', times[1]!)).toEqual(['late', 'last']);
    expect(logs('--until', times[1]!)).toEqual(['early', 'late']);
    expect(logs('--since', times[1]!, '--until', times[1]!, '-t')).toEqual([stamped[1]]);
    // RFC 3339 without a fraction, with a zone offset; Unix seconds with and without a fraction.
    // "late" came 1.2 s after "early": the whole second it fell in starts after "early".
    const lateSecond = Math.floor(Date.parse(times[1]!) / 1000);
    const inParis = new Date((lateSecond + 3600) * 1000).toISOString().slice(0, 19);
    expect(logs('--since', `${inParis}+01:00`)).toEqual(['late', 'last']);
    expect(logs('--since', `${lateSecond}`)).toEqual(['late', 'last']);
    const lateNanos = /\.(\d{9})Z$/.exec(times[1]!)![1];
    expect(logs('--until', `${lateSecond}.${lateNanos}`)).toEqual(['early', 'late']);
    const justBefore = BigInt(lateSecond) * 1_000_000_000n + BigInt(lateNanos!) - 1n;
    const unixBefore = `${justBefore / 1_000_000_000n}.${String(justBefore % 1_000_000_000n).padStart(9, '0')}`;
    expect(logs('--until', unixBefore)).toEqual(['early']);
    // Relative: an hour ago holds everything, an hour from now nothing; --tail is taken first.
    expect(logs('--since', '1h')).toEqual(['early', 'late', 'last']);
    expect(logs('--until', '1h30m')).toEqual([]);
    expect(logs('--since', '-1h')).toEqual([]);
    expect(logs('--tail', '2', '--since', '1h')).toEqual(['late', 'last']);
    expect(logs('--tail', '2', '--until', times[1]!)).toEqual(['late']);

    for (const [flag, value, message] of [
      [
        '--since',
        'yesterday',
        'invalid value for "since": failed to parse value as time or duration: "yesterday"',
      ],
      [
        '--until',
        '2024-13-01',
        'invalid value for "until": parsing time "2024-13-01" as "2006-01-02": month out of range',
      ],
    ] as const) {
      const r = box(env.root, ['logs', flag, value, 'talker']);
      expect([r.code, r.stdout, r.stderr]).toEqual([125, '', `box: ${message}\n`]);
    }
  });

  it('-f --until stops at the until time; an until already past does not follow', () => {
    boxOk(env.root, [
      'run',
      '-d',
      '--name',
      'ticker',
      'busybox',
      'sh',
      '-c',
      'while :; do echo tick; sleep 0.2; done',
    ]);
    let started = Date.now();
    const r = box(env.root, ['logs', '-f', '--until', '-2s', 'ticker']);
    const took = Date.now() - started;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^(tick\n)+$/);
    // Durations are whole seconds (as docker's): until is 1 to 2 s from now.
    expect(took).toBeGreaterThan(900);
    expect(took).toBeLessThan(5000);
    started = Date.now();
    expect(box(env.root, ['logs', '-f', '--until', '1s', 'ticker']).code).toBe(0);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

describe('logs into a reader that goes away', () => {
  it('ends quietly when the pipe closes (box logs c | head -1), as SIGPIPE ends docker logs', () => {
    boxOk(env.root, ['run', '-d', '--name', 'chatty', 'busybox', 'seq', '1', '200000']);
    expect(boxOk(env.root, ['wait', 'chatty'])).toBe('0');
    const r = spawnSync('sh', ['-c', `"${process.execPath}" "${boxBin}" logs chatty | head -1`], {
      env: { ...process.env, BOX_ROOT: env.root },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.stdout).toBe('1\n');
    expect(r.stderr).toBe('');
    boxOk(env.root, ['rm', 'chatty']);
  });
});

describe('top CONTAINER [ps OPTIONS]', () => {
  it("runs the host's ps (default -ef) over the container's processes only; no PID column is docker's error", () => {
    boxOk(env.root, ['run', '-d', '--name', 'topped', 'busybox', 'sh', '-c', 'sleep 301 & exec sleep 302']);
    const rows = (args: string[]) =>
      boxOk(env.root, ['top', 'topped', ...args])
        .split('\n')
        .map((l) => l.split(/\s{2,}/));

    const ef = rows([]);
    expect(ef[0]).toEqual(['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD']);
    expect(
      ef
        .slice(1)
        .map((r) => r[7])
        .sort(),
    ).toEqual(['sleep 301', 'sleep 302']);
    const pids = ef.slice(1).map((r) => Number(r[1]));
    // Host pids: the processes are the container's, nothing of the host is listed.
    for (const pid of pids) expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toMatch(/^sleep\0/);

    const short = rows(['-o', 'pid,comm']);
    expect(short[0]).toEqual(['PID', 'COMMAND']);
    expect(
      short
        .slice(1)
        .map((r) => Number(r[0]))
        .sort(),
    ).toEqual([...pids].sort());
    expect(rows(['aux'])[0]).toEqual([
      'USER',
      'PID',
      '%CPU',
      '%MEM',
      'VSZ',
      'RSS',
      'TTY',
      'STAT',
      'START',
      'TIME',
      'COMMAND',
    ]);
    expect(rows(['aux'])).toHaveLength(3);

    const noPid = box(env.root, ['top', 'topped', '-o', 'comm']);
    expect([noPid.code, noPid.stdout, noPid.stderr]).toEqual([
      1,
      '',
      "box: Couldn't find PID field in ps output\n",
    ]);
    const renamed = box(env.root, ['top', 'topped', '-o', 'user=PID']);
    expect([renamed.code, renamed.stderr]).toEqual([125, 'box: specifying "user=PID" is not allowed\n']);
  });
});

describe('diff', () => {
  it("lists the container's A/C/D changes in path order, parents as C; nothing for a fresh one", () => {
    boxOk(env.root, ['run', '--name', 'fresh', 'busybox', 'true']);
    expect(boxOk(env.root, ['diff', 'fresh'])).toBe('');
    boxOk(env.root, [
      'run',
      '--name',
      'changed',
      '-v',
      'diffvol:/data',
      'busybox',
      'sh',
      '-c',
      'echo x >> /etc/passwd; rm /etc/group; mkdir -p /tmp/a/b; touch /tmp/a/b/c; rm -rf /home; mkdir /home; touch /home/new; rm /bin/ls; echo v > /data/v',
    ]);
    const expected = [
      'C /bin',
      'D /bin/ls',
      'A /data',
      'C /etc',
      'D /etc/group',
      'C /etc/passwd',
      // Removed and made again: an opaque directory, which docker shows as deleted.
      'D /home',
      'A /home/new',
      'C /tmp',
      'A /tmp/a',
      'A /tmp/a/b',
      'A /tmp/a/b/c',
    ];
    expect(boxOk(env.root, ['diff', 'changed']).split('\n')).toEqual(expected);
    expect(boxOk(env.root, ['container', 'diff', 'changed']).split('\n')).toEqual(expected);
    const missing = box(env.root, ['diff', 'nope']);
    expect([missing.code, missing.stderr]).toEqual([1, 'box: No such container: nope\n']);
    boxOk(env.root, ['rm', '-v', 'changed']);
    boxOk(env.root, ['volume', 'rm', 'diffvol']);
  });
});

describe('ps -s', () => {
  it('SIZE is the writable layer and, with the image, the virtual size; {{.Size}} in --format', () => {
    const imageSize = boxOk(env.root, ['images', '--format', '{{.Size}}', 'busybox']);
    boxOk(env.root, [
      'run',
      '--name',
      'sized',
      'busybox',
      'sh',
      '-c',
      'printf 12345 > /five; ln /five /same',
    ]);
    boxOk(env.root, ['run', '--name', 'untouched', 'busybox', 'true']);
    const table = boxOk(env.root, ['ps', '-as']).split('\n');
    expect(table[0]).toMatch(/^CONTAINER ID +IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES +SIZE$/);
    // A hard link counts once; the virtual size adds the image's layers (3 significant digits).
    expect(table.find((l) => / sized /.test(l))).toMatch(new RegExp(`  5B \\(virtual ${imageSize}\\)$`));
    expect(table.find((l) => / untouched /.test(l))).toMatch(new RegExp(`  0B \\(virtual ${imageSize}\\)$`));
    expect(boxOk(env.root, ['ps', '-a', '--format', '{{.Names}}: {{.Size}}']).split('\n').sort()).toEqual([
      `sized: 5B (virtual ${imageSize})`,
      `untouched: 0B (virtual ${imageSize})`,
    ]);
    expect(JSON.parse(boxOk(env.root, ['ps', '-a', '-l', '--format', 'json'])).Size).toBe(
      `0B (virtual ${imageSize})`,
    );
    // Without -s the column is not there.
    expect(boxOk(env.root, ['ps', '-a']).split('\n')[0]).toMatch(/NAMES$/);
  });
});

describe('system df', () => {
  it('TYPE/TOTAL/ACTIVE/SIZE/RECLAIMABLE for images, containers, volumes, build cache; -v; --format', () => {
    boxOk(env.root, [
      'run',
      '--name',
      'dfc',
      '-v',
      'dfvol:/d',
      'busybox',
      'sh',
      '-c',
      'printf 123456 > /d/f; printf 1234 > /x',
    ]);
    boxOk(env.root, ['volume', 'create', 'dfidle']);
    const idle = JSON.parse(boxOk(env.root, ['volume', 'inspect', 'dfidle']))[0].Mountpoint as string;
    writeFileSync(join(idle, 'ten'), '0123456789');
    const imageSize = /^[\d.]+[kM]B$/;

    const summary = boxOk(env.root, ['system', 'df'])
      .split('\n')
      .map((l) => l.split(/\s{2,}/));
    expect(summary[0]).toEqual(['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE']);
    expect(summary[1]).toEqual(['Images', '1', '1', expect.stringMatching(imageSize), '0B (0%)']);
    // The container ended: its layer can be reclaimed. The unused volume's 10 of 16 bytes too.
    expect(summary.slice(2)).toEqual([
      ['Containers', '1', '0', '4B', '4B (100%)'],
      ['Local Volumes', '2', '1', '16B', '10B (62%)'],
      ['Build Cache', '0', '0', '0B', '0B'],
    ]);
    expect(
      boxOk(env.root, ['system', 'df', '--format', '{{.Type}}={{.TotalCount}}/{{.Active}}']).split('\n'),
    ).toEqual(['Images=1/1', 'Containers=1/0', 'Local Volumes=2/1', 'Build Cache=0/0']);
    const json = boxOk(env.root, ['system', 'df', '--format', 'json'])
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(json[1]).toEqual({
      Active: '0',
      Reclaimable: '4B (100%)',
      Size: '4B',
      TotalCount: '1',
      Type: 'Containers',
    });

    const verbose = boxOk(env.root, ['system', 'df', '-v']);
    const sections = verbose.split('\n\n');
    expect(sections[0]).toBe('Images space usage:');
    expect(sections[1]!.split('\n')[0]).toMatch(
      /^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE +SHARED SIZE +UNIQUE SIZE +CONTAINERS$/,
    );
    expect(sections[1]!.split('\n')[1]).toMatch(/^busybox +latest +[0-9a-f]{12} +.+ ago +\S+ +0B +\S+ +1$/);
    expect(sections[2]).toBe('Containers space usage:');
    expect(sections[3]!.split('\n')[1]).toMatch(
      /^[0-9a-f]{12} +busybox +".*" +1 +4B \(virtual \S+\) +.+ +Exited \(0\) .+ ago +dfc$/,
    );
    expect(sections[4]).toBe('Local Volumes space usage:');
    expect(sections[5]!.split('\n').map((l) => l.split(/\s+/))).toEqual([
      ['VOLUME', 'NAME', 'LINKS', 'SIZE'],
      ['dfidle', '0', '10B'],
      ['dfvol', '1', '6B'],
    ]);
    expect(sections[6]).toBe('Build cache usage: 0B');
    expect(sections[7]).toMatch(/^CACHE ID +CACHE TYPE +SIZE +CREATED +LAST USED +USAGE +SHARED$/);

    const all = JSON.parse(boxOk(env.root, ['system', 'df', '-v', '--format', 'json']));
    expect(Object.keys(all)).toEqual(['Images', 'Containers', 'Volumes', 'BuildCache']);
    expect(all.Volumes).toEqual([
      { Links: '0', Name: 'dfidle', Size: '10B' },
      { Links: '1', Name: 'dfvol', Size: '6B' },
    ]);
    boxOk(env.root, ['rm', 'dfc']);
    boxOk(env.root, ['volume', 'rm', 'dfvol', 'dfidle']);
  });
});

describe('cp -a', () => {
  it("into a container: the source's owners, with -a its user's; out of one: the caller's, -a or not", () => {
    const dir = mkdtempSync(join(tmpdir(), 'box-e2e-cp-a-'));
    try {
      const host = join(dir, 'host');
      mkdirSync(host);
      writeFileSync(join(host, 'file'), 'x');
      chownSync(host, 4242, 4343);
      chownSync(join(host, 'file'), 4242, 4343);
      boxOk(env.root, ['run', '-d', '--name', 'owned', '-u', '1000:1001', 'busybox', 'sleep', '60']);
      boxOk(env.root, ['run', '-d', '--name', 'rootly', 'busybox', 'sleep', '60']);
      const owners = (c: string, path: string) =>
        boxOk(env.root, ['exec', c, 'stat', '-c', '%u:%g %n', path, `${path}/file`]).split('\n');

      boxOk(env.root, ['cp', host, 'owned:/tmp/plain']);
      expect(owners('owned', '/tmp/plain')).toEqual(['4242:4343 /tmp/plain', '4242:4343 /tmp/plain/file']);
      boxOk(env.root, ['cp', '-a', host, 'owned:/tmp/archived']);
      expect(owners('owned', '/tmp/archived')).toEqual([
        '1000:1001 /tmp/archived',
        '1000:1001 /tmp/archived/file',
      ]);
      // A container without a user: -a keeps the source's owners, as docker's.
      boxOk(env.root, ['cp', '--archive', host, 'rootly:/tmp/archived']);
      expect(owners('rootly', '/tmp/archived')).toEqual([
        '4242:4343 /tmp/archived',
        '4242:4343 /tmp/archived/file',
      ]);

      boxOk(env.root, ['exec', 'owned', 'sh', '-c', 'mkdir /tmp/made && echo y > /tmp/made/file']);
      const me = `${process.getuid!()}:${process.getgid!()}`;
      for (const [flags, name] of [
        [[], 'out'],
        [['-a'], 'out-a'],
      ] as const) {
        boxOk(env.root, ['cp', ...flags, 'owned:/tmp/made', join(dir, name)]);
        for (const path of [join(dir, name), join(dir, name, 'file')]) {
          const st = statSync(path);
          expect(`${st.uid}:${st.gid}`, path).toBe(me);
        }
      }
      // The archive form carries the container's owners.
      const listing = spawnSync(
        'sh',
        ['-c', `${boxBin} cp owned:/tmp/made - | tar -tv --numeric-owner -f -`],
        {
          env: { ...process.env, BOX_ROOT: env.root },
          encoding: 'utf8',
        },
      );
      expect(listing.stdout).toMatch(/ 1000\/1001 .* made\/file\n/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
