/**
 * Health checks as docker runs them: `--health-*` flags and an image's HEALTHCHECK, the status
 * in `ps` ("(health: starting)", "(healthy)", "(unhealthy)"), `ps --filter health=`, and
 * `inspect`'s State.Health with each check's exit code and output.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { box, boxOk, useBoxRoot } from '../helpers/box.js';

const env = useBoxRoot({ removeContainers: true });
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'box-e2e-health-'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Health {
  Status: string;
  FailingStreak: number;
  Log: { ExitCode: number; Output: string; Start: string; End: string }[];
}

/** State.Health as `inspect` prints it (absent, as in docker's JSON, without a health check). */
const health = (name: string): Health | undefined =>
  JSON.parse(boxOk(env.root, ['inspect', name]))[0].State.Health;
const status = (name: string) =>
  boxOk(env.root, ['ps', '-a', '--filter', `name=${name}`, '--format', '{{.Status}}']);

/** Polls until `test` holds (checks run on the service's timers), for at most `ms`. */
async function until(test: () => boolean, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!test()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('health checks', () => {
  it('--health-cmd: starting, healthy, then unhealthy after --health-retries failures', async () => {
    const id = boxOk(env.root, [
      'run',
      '-d',
      '--name',
      'hc',
      '--health-cmd',
      'cat /tmp/ok',
      '--health-interval',
      '200ms',
      '--health-retries',
      '2',
      '--health-start-period',
      '30s',
      '--health-start-interval',
      '200ms',
      'busybox',
      'sh',
      '-c',
      'sleep 1; echo fine > /tmp/ok; sleep 100',
    ]);
    // In the start period the failures do not count: starting until the first success.
    expect(status('hc')).toMatch(/^Up .* \(health: starting\)$/);
    expect(health('hc')?.Status).toBe('starting');
    await until(() => health('hc')?.Status === 'healthy');
    expect(status('hc')).toMatch(/^Up .* \(healthy\)$/);
    const ok = health('hc')!;
    expect(ok.FailingStreak).toBe(0);
    expect(ok.Log.at(-1)).toMatchObject({ ExitCode: 0, Output: 'fine\n' });
    expect(ok.Log.length).toBeLessThanOrEqual(5);
    expect(boxOk(env.root, ['ps', '-q', '--filter', 'health=healthy'])).toBe(id.slice(0, 12));

    // Once healthy, the start period no longer hides failures: two in a row make it unhealthy.
    boxOk(env.root, ['exec', 'hc', 'rm', '/tmp/ok']);
    await until(() => health('hc')?.Status === 'unhealthy');
    const bad = health('hc')!;
    expect(bad.FailingStreak).toBeGreaterThanOrEqual(2);
    expect(bad.Log.at(-1)!.ExitCode).toBe(1);
    expect(bad.Log.at(-1)!.Output).toContain('No such file or directory');
    expect(status('hc')).toMatch(/^Up .* \(unhealthy\)$/);
    expect(boxOk(env.root, ['ps', '-q', '--filter', 'health=unhealthy'])).toBe(id.slice(0, 12));
    expect(boxOk(env.root, ['ps', '-q', '--filter', 'health=healthy'])).toBe('');
    expect(JSON.parse(boxOk(env.root, ['inspect', '-f', '{{json .Config.Healthcheck}}', 'hc']))).toEqual({
      Test: ['CMD-SHELL', 'cat /tmp/ok'],
      Interval: 200_000_000,
      StartPeriod: 30_000_000_000,
      StartInterval: 200_000_000,
      Retries: 2,
    });
    boxOk(env.root, ['rm', '-f', 'hc']);
  });

  it('a check that outlives --health-timeout is killed and fails with exit code -1', async () => {
    boxOk(env.root, [
      'run',
      '-d',
      '--name',
      'slow',
      '--health-cmd',
      'sleep 10',
      '--health-interval',
      '300ms',
      '--health-timeout',
      '200ms',
      '--health-retries',
      '1',
      'busybox',
      'sleep',
      '100',
    ]);
    await until(() => health('slow')?.Status === 'unhealthy');
    expect(health('slow')!.Log[0]).toMatchObject({
      ExitCode: -1,
      Output: 'Health check exceeded timeout (200ms)',
    });
    // Killed checks leave nothing behind in the container: at most the one running now.
    await new Promise((r) => setTimeout(r, 1500));
    const checks = boxOk(env.root, ['top', 'slow'])
      .split('\n')
      .filter((line) => line.endsWith('sleep 10'));
    expect(checks.length).toBeLessThanOrEqual(1);
    expect(health('slow')!.Log.length).toBeGreaterThanOrEqual(3);
    boxOk(env.root, ['rm', '-f', 'slow']);
  });

  it("a process left holding the check's output does not stop the checks: its read ends at the timeout", async () => {
    boxOk(env.root, [
      'run',
      '-d',
      '--name',
      'holder',
      '--health-cmd',
      'sleep 100 & exit 1',
      '--health-interval',
      '300ms',
      '--health-timeout',
      '500ms',
      '--health-retries',
      '2',
      'busybox',
      'sleep',
      '100',
    ]);
    // Each check's own exit code counts, not a timeout: the check ended, only its output was held.
    await until(() => health('holder')?.Status === 'unhealthy');
    expect(health('holder')!.FailingStreak).toBeGreaterThanOrEqual(2);
    expect(health('holder')!.Log[0]!.ExitCode).toBe(1);
    boxOk(env.root, ['rm', '-f', 'holder']);
  });

  it("an image's HEALTHCHECK runs; flags override its fields; --no-healthcheck turns it off", async () => {
    // busybox with a HEALTHCHECK in its config, through save and load.
    const saved = join(dir, 'busybox.tar');
    const work = join(dir, 'hc-image');
    boxOk(env.root, ['save', '-o', saved, 'busybox']);
    spawnSync('mkdir', ['-p', work]);
    expect(spawnSync('tar', ['-xf', saved, '-C', work]).status).toBe(0);
    const manifest = JSON.parse(readFileSync(join(work, 'manifest.json'), 'utf8'));
    const configPath = join(work, manifest[0].Config);
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    config.config.Healthcheck = { Test: ['CMD', 'true'], Interval: 200_000_000, Retries: 1 };
    writeFileSync(configPath, JSON.stringify(config));
    manifest[0].RepoTags = ['hc-image:1'];
    writeFileSync(join(work, 'manifest.json'), JSON.stringify(manifest));
    const archive = join(dir, 'hc-image.tar');
    expect(spawnSync('tar', ['-cf', archive, '-C', work, '.']).status).toBe(0);
    boxOk(env.root, ['load', '-i', archive]);

    boxOk(env.root, ['run', '-d', '--name', 'fromimage', 'hc-image:1', 'sleep', '100']);
    await until(() => health('fromimage')?.Status === 'healthy');
    // A flag replaces one field, the image's test stays.
    boxOk(env.root, [
      'run',
      '-d',
      '--name',
      'override',
      '--health-retries',
      '4',
      'hc-image:1',
      'sleep',
      '100',
    ]);
    expect(
      JSON.parse(boxOk(env.root, ['inspect', '-f', '{{json .Config.Healthcheck}}', 'override'])),
    ).toEqual({
      Test: ['CMD', 'true'],
      Interval: 200_000_000,
      Retries: 4,
    });
    boxOk(env.root, ['run', '-d', '--name', 'off', '--no-healthcheck', 'hc-image:1', 'sleep', '100']);
    await new Promise((r) => setTimeout(r, 500));
    expect(health('off')).toBeUndefined();
    expect(status('off')).toMatch(/^Up [^(]*$/);
    expect(boxOk(env.root, ['ps', '-q', '--filter', 'health=none'])).toContain(
      boxOk(env.root, ['inspect', '-f', '{{.Id}}', 'off']).slice(0, 12),
    );
    boxOk(env.root, ['rm', '-f', 'fromimage', 'override', 'off']);
    boxOk(env.root, ['rmi', 'hc-image:1']);
  });

  it('bad health flags: one line, exit 125, nothing created', () => {
    const cases: [string[], string][] = [
      [
        ['--health-interval', '5'],
        'box: invalid argument "5" for "--health-interval" flag: time: missing unit in duration "5"',
      ],
      [
        ['--health-timeout', 'soon'],
        'box: invalid argument "soon" for "--health-timeout" flag: time: invalid duration "soon"',
      ],
      [['--health-interval', '-1s'], 'box: --health-interval cannot be negative'],
      [['--health-retries', '-1'], 'box: --health-retries cannot be negative'],
      [['--health-interval', '10us'], 'box: Interval in Healthcheck cannot be less than 1ms'],
      [
        ['--no-healthcheck', '--health-cmd', 'true'],
        'box: --no-healthcheck conflicts with --health-* options',
      ],
    ];
    for (const [flags, line] of cases) {
      const r = box(env.root, ['run', '-d', ...flags, 'busybox', 'true']);
      expect([r.code, r.stderr.trim()]).toEqual([125, line]);
    }
    expect(boxOk(env.root, ['ps', '-aq'])).toBe('');
  });
});
