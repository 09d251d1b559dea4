import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Ipam, openIpam } from './ipam.js';

let top = '';
let dir = '';
let ipam: Ipam;

beforeEach(() => {
  top = mkdtempSync(join(tmpdir(), 'box-ipam-'));
  dir = join(top, 'networks');
  ipam = openIpam(dir);
});

afterEach(() => {
  rmSync(top, { recursive: true, force: true });
});

const id = (n: number) => `c${String(n).padStart(3, '0')}`;

describe('pools', () => {
  it('creates a pool with the first host address as gateway, files 0600 in a 0700 directory', () => {
    expect(ipam.createPool('front', { subnet: '10.10.0.0/24' })).toEqual({
      network: 'front',
      subnet: '10.10.0.0/24',
      gateway: '10.10.0.1',
      size: 253,
      inUse: 0,
    });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'front.ipam.json')).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).sort()).toEqual(['front.ipam.json', 'ipam.lock']);
    expect(ipam.pool('front')?.gateway).toBe('10.10.0.1');
    expect(ipam.pool('back')).toBeNull();
  });

  it('takes a given gateway, inside the subnet and not its network or broadcast address', () => {
    expect(ipam.createPool('a', { subnet: '10.10.0.0/24', gateway: '10.10.0.254' }).gateway).toBe(
      '10.10.0.254',
    );
    for (const gateway of ['10.11.0.0', '10.11.1.1', '10.11.0.255']) {
      expect(() => ipam.createPool('b', { subnet: '10.11.0.0/24', gateway })).toThrow(
        `invalid gateway ${gateway}: it is not a host address of 10.11.0.0/24`,
      );
    }
    expect(() => ipam.createPool('b', { subnet: '10.11.0.0/24', gateway: '10.11.0.300' })).toThrow(
      'invalid IPv4 address: 10.11.0.300',
    );
  });

  it('refuses a bad prefix, an overlapping subnet and a second pool for one network', () => {
    expect(() => ipam.createPool('a', { subnet: '10.0.0.0/31' })).toThrow(
      'invalid subnet 10.0.0.0/31: the prefix must be /8 to /30',
    );
    ipam.createPool('a', { subnet: '10.1.0.0/16' });
    expect(() => ipam.createPool('b', { subnet: '10.1.2.0/24' })).toThrow(
      expect.objectContaining({
        code: 'EIPAMOVERLAP',
        message:
          'Pool overlaps with other one on this address space: 10.1.2.0/24 overlaps 10.1.0.0/16 of network a',
      }),
    );
    expect(() => ipam.createPool('b', { subnet: '10.0.0.0/8' })).toThrow(
      expect.objectContaining({ code: 'EIPAMOVERLAP' }),
    );
    expect(() => ipam.createPool('a', { subnet: '10.2.0.0/16' })).toThrow(
      'network a already has an address pool',
    );
    expect(ipam.pools().map((pool) => pool.network)).toEqual(['a']);
  });

  it('picks the first default subnet free of other pools and host routes', () => {
    expect(ipam.createPool('one', { hostRoutes: ['0.0.0.0/0', '172.17.0.0/16'] }).subnet).toBe(
      '172.18.0.0/16',
    );
    expect(ipam.createPool('two').subnet).toBe('172.17.0.0/16');
    expect(ipam.createPool('three', { hostRoutes: ['172.19.0.0/16'] }).subnet).toBe('172.20.0.0/16');
    expect(ipam.createPool('four', { subnet: '172.21.0.0/16' }).subnet).toBe('172.21.0.0/16');
    expect(ipam.createPool('five').subnet).toBe('172.19.0.0/16');
    expect(() => ipam.createPool('six', { defaultPools: [{ base: '172.20.0.0/15', size: 16 }] })).toThrow(
      expect.objectContaining({
        code: 'EIPAMNOSUBNET',
        message:
          'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network',
      }),
    );
  });

  it('refuses to remove a pool still in use, unless forced', () => {
    ipam.createPool('a', { subnet: '10.1.0.0/24' });
    ipam.allocate('a', 'x');
    expect(() => ipam.removePool('a')).toThrow(expect.objectContaining({ code: 'EIPAMBUSY' }));
    expect(ipam.removePool('a', { force: true })).toBe(true);
    expect(ipam.removePool('a')).toBe(false);
    expect(existsSync(join(dir, 'a.ipam.json'))).toBe(false);
  });

  it('runs beforeRemove under its lock, on a free pool only, before the pool goes', () => {
    ipam.createPool('a', { subnet: '10.1.0.0/24' });
    ipam.allocate('a', 'x');
    const calls: boolean[] = [];
    const beforeRemove = () => calls.push(existsSync(join(dir, 'a.ipam.json')));
    expect(() => ipam.removePool('a', { beforeRemove })).toThrow(
      expect.objectContaining({ code: 'EIPAMBUSY' }),
    );
    expect(calls).toEqual([]);
    ipam.release('a', 'x');
    // An allocate from elsewhere while beforeRemove runs waits for the lock, then finds no pool.
    const other = openIpam(dir, { lockTimeoutMs: 50 });
    expect(
      ipam.removePool('a', {
        beforeRemove: () => {
          beforeRemove();
          expect(() => other.allocate('a', 'y')).toThrow(expect.objectContaining({ code: 'EIPAMLOCKED' }));
        },
      }),
    ).toBe(true);
    expect(calls).toEqual([true]);
    expect(() => other.allocate('a', 'y')).toThrow(expect.objectContaining({ code: 'EIPAMNOPOOL' }));
  });

  it('refuses names that are not plain file names', () => {
    for (const name of ['', '.', '..', '../x', 'a/b', '-a', `a${'b'.repeat(128)}`]) {
      expect(() => ipam.createPool(name)).toThrow(expect.objectContaining({ code: 'EIPAMINVAL' }));
    }
    ipam.createPool('n', { subnet: '10.1.0.0/24' });
    expect(() => ipam.allocate('n', '../etc')).toThrow('invalid container id "../etc"');
  });
});

describe('allocate and release', () => {
  beforeEach(() => {
    ipam.createPool('n', { subnet: '10.1.0.0/29' }); // hosts .1-.6, gateway .1: five for containers
  });

  it('hands out the next free address after the last one, wrapping around', () => {
    expect([1, 2, 3].map((n) => ipam.allocate('n', id(n)))).toEqual(['10.1.0.2', '10.1.0.3', '10.1.0.4']);
    expect(ipam.release('n', id(2))).toBe('10.1.0.3');
    expect(ipam.allocate('n', id(4))).toBe('10.1.0.5'); // not .3, just released
    expect(ipam.allocate('n', id(5))).toBe('10.1.0.6');
    expect(ipam.allocate('n', id(6))).toBe('10.1.0.3'); // wrapped around, past the gateway
    expect(() => ipam.allocate('n', id(7))).toThrow(
      expect.objectContaining({
        code: 'EIPAMFULL',
        message: 'no available addresses on this pool (network n, 10.1.0.0/29: all 5 in use)',
      }),
    );
    expect([...ipam.inUse('n')]).toEqual([
      [id(1), '10.1.0.2'],
      [id(6), '10.1.0.3'],
      [id(3), '10.1.0.4'],
      [id(4), '10.1.0.5'],
      [id(5), '10.1.0.6'],
    ]);
    expect(ipam.pool('n')?.inUse).toBe(5);
  });

  it('gives a container its address again, and refuses it a second one', () => {
    expect(ipam.allocate('n', 'x')).toBe('10.1.0.2');
    expect(ipam.allocate('n', 'x')).toBe('10.1.0.2');
    expect(ipam.allocate('n', 'x', { ip: '10.1.0.2' })).toBe('10.1.0.2');
    expect(() => ipam.allocate('n', 'x', { ip: '10.1.0.4' })).toThrow(
      expect.objectContaining({
        code: 'EIPAMCONFLICT',
        message: 'container x already has address 10.1.0.2 on network n',
      }),
    );
  });

  it('hands out a requested address, with docker’s errors when it cannot', () => {
    expect(ipam.allocate('n', 'a', { ip: '10.1.0.5' })).toBe('10.1.0.5');
    expect(ipam.allocate('n', 'b')).toBe('10.1.0.2'); // a requested address moves no cursor
    const refused = (ip: string) => {
      try {
        ipam.allocate('n', 'c', { ip });
      } catch (error) {
        return { code: (error as { code: string }).code, message: (error as Error).message };
      }
      throw new Error(`${ip} was handed out`);
    };
    expect(refused('10.1.1.5')).toEqual({
      code: 'EIPAMRANGE',
      message: 'no configured subnet or ip-range contain the IP address 10.1.1.5',
    });
    expect(refused('10.1.0.1')).toEqual({
      code: 'EIPAMINUSE',
      message: 'Address already in use (10.1.0.1 is the gateway of network n)',
    });
    expect(refused('10.1.0.0')).toEqual({
      code: 'EIPAMINUSE',
      message: 'Address already in use (10.1.0.0 is the network address of network n)',
    });
    expect(refused('10.1.0.7')).toEqual({
      code: 'EIPAMINUSE',
      message: 'Address already in use (10.1.0.7 is the broadcast address of network n)',
    });
    expect(refused('10.1.0.5')).toEqual({
      code: 'EIPAMINUSE',
      message: 'Address already in use (10.1.0.5 is held by container a)',
    });
    expect(refused('10.1.0.x')).toEqual({ code: 'EIPAMINVAL', message: 'invalid IPv4 address: 10.1.0.x' });
    expect(ipam.inUse('n').size).toBe(2);
  });

  it('releases idempotently, and everywhere at once', () => {
    ipam.createPool('m', { subnet: '10.2.0.0/24' });
    ipam.allocate('n', 'x');
    ipam.allocate('m', 'x');
    ipam.allocate('m', 'y');
    expect(ipam.release('n', 'nobody')).toBeNull();
    expect(ipam.release('gone', 'x')).toBeNull();
    expect(ipam.releaseAll('x')).toEqual([
      { network: 'm', containerId: 'x', address: '10.2.0.2' },
      { network: 'n', containerId: 'x', address: '10.1.0.2' },
    ]);
    expect(ipam.releaseAll('x')).toEqual([]);
    expect([...ipam.inUse('m')]).toEqual([['y', '10.2.0.3']]);
  });

  it('says which network has no pool', () => {
    expect(() => ipam.allocate('other', 'x')).toThrow(
      expect.objectContaining({ code: 'EIPAMNOPOOL', message: 'network other has no address pool' }),
    );
  });
});

describe('large subnets', () => {
  it('works on a /8 with a file the size of its allocations', () => {
    ipam.createPool('big', { subnet: '10.0.0.0/8' });
    for (let n = 0; n < 100; n++) ipam.allocate('big', id(n));
    expect(ipam.allocate('big', 'last', { ip: '10.255.255.254' })).toBe('10.255.255.254');
    expect(ipam.pool('big')).toMatchObject({ size: 2 ** 24 - 3, inUse: 101 });
    expect(statSync(join(dir, 'big.ipam.json')).size).toBeLessThan(10_000);
    // The cursor wraps at the end of the /8.
    const file = join(dir, 'big.ipam.json');
    const data = JSON.parse(readFileSync(file, 'utf8'));
    data.last = '10.255.255.253';
    writeFileSync(file, JSON.stringify(data));
    expect(ipam.allocate('big', 'wrap')).toBe('10.0.0.102');
  });
});

describe('damaged files', () => {
  const file = () => join(dir, 'n.ipam.json');

  beforeEach(() => {
    ipam.createPool('n', { subnet: '10.1.0.0/24' });
    ipam.allocate('n', 'a');
    ipam.allocate('n', 'b');
  });

  const edits: Array<[string, (data: Record<string, unknown>) => unknown]> = [
    ['not JSON', () => '{"version": 1, "allocations": {'],
    ['an array', () => []],
    ['another version', (d) => ({ ...d, version: 2 })],
    ['another network', (d) => ({ ...d, network: 'm' })],
    ['a bad subnet', (d) => ({ ...d, subnet: '10.1.0.0/31' })],
    ['a gateway outside', (d) => ({ ...d, gateway: '10.2.0.1' })],
    ['an address outside', (d) => ({ ...d, allocations: { a: '10.2.0.2' } })],
    ['the broadcast address', (d) => ({ ...d, allocations: { a: '10.1.0.255' } })],
    ['an address twice', (d) => ({ ...d, allocations: { a: '10.1.0.2', b: '10.1.0.2' } })],
    ['the gateway held', (d) => ({ ...d, allocations: { a: '10.1.0.1' } })],
    ['a bad container id', (d) => ({ ...d, allocations: { '../x': '10.1.0.2' } })],
    ['allocations as a list', (d) => ({ ...d, allocations: ['10.1.0.2'] })],
    ['an address as a number', (d) => ({ ...d, allocations: { a: 167837698 } })],
  ];

  it.each(edits)('refuses a file with %s, naming it, and leaves it as it is', (_what, edit) => {
    const data = JSON.parse(readFileSync(file(), 'utf8'));
    const changed = edit(data);
    const text = typeof changed === 'string' ? changed : JSON.stringify(changed);
    writeFileSync(file(), text);
    for (const action of [() => ipam.allocate('n', 'c'), () => ipam.inUse('n'), () => ipam.releaseAll('a')]) {
      expect(action).toThrow(
        expect.objectContaining({
          code: 'EIPAMCORRUPT',
          path: file(),
          message: expect.stringContaining(`the address pool file ${file()} is corrupt: `),
        }),
      );
    }
    expect(readFileSync(file(), 'utf8')).toBe(text);
  });

  it('refuses a symbolic link or a directory in place of a pool file', () => {
    writeFileSync(join(top, 'elsewhere.json'), readFileSync(file()));
    rmSync(file());
    symlinkSync(join(top, 'elsewhere.json'), file());
    expect(() => ipam.allocate('n', 'c')).toThrow('is corrupt: it is a symbolic link');
    rmSync(file());
    mkdirSync(file());
    expect(() => ipam.inUse('n')).toThrow('is corrupt: it is not a regular file');
  });
});

describe('the lock', () => {
  it('waits for a holder, and gives up with EIPAMLOCKED naming the directory', async () => {
    ipam.createPool('n', { subnet: '10.1.0.0/24' });
    // flock(1) holds the lock file for 1.5 s in another process.
    const holder = spawn('flock', [join(dir, 'ipam.lock'), '-c', 'echo held; sleep 1.5'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise((resolve) => holder.stdout.once('data', resolve));
    const exited = new Promise((resolve) => holder.on('exit', resolve));
    try {
      const impatient = openIpam(dir, { lockTimeoutMs: 200 });
      expect(() => impatient.allocate('n', 'x')).toThrow(
        expect.objectContaining({
          code: 'EIPAMLOCKED',
          message: `the address pools in ${dir} are locked by another process (waited 200 ms for ${join(dir, 'ipam.lock')})`,
        }),
      );
      const started = Date.now();
      expect(ipam.allocate('n', 'x')).toBe('10.1.0.2'); // waits for the holder
      expect(Date.now() - started).toBeGreaterThan(500);
    } finally {
      holder.kill('SIGKILL');
      await exited;
    }
  });
});
