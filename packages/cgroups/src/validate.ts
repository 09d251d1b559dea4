import { CgroupError } from './errors.js';
import type { DeviceRule, Resources } from './manager.js';
import { parseCpuList } from './size.js';

function fail(field: string, value: unknown, expected: string): never {
  throw new CgroupError('ECGROUPVALUE', `invalid ${field} ${JSON.stringify(value)}: ${expected}`);
}

function checkBytes(field: string, value: number | undefined): void {
  if (value === undefined) return;
  if (!Number.isSafeInteger(value) || (value <= 0 && value !== -1)) {
    fail(field, value, 'expected a positive number of bytes, or -1 for unlimited');
  }
}

function checkInteger(field: string, value: number | undefined, min: number, max: number, extra = ''): void {
  if (value === undefined) return;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    fail(field, value, `expected an integer from ${min} to ${max}${extra}`);
  }
}

function checkDevice(index: number, device: DeviceRule): void {
  const field = `devices[${index}]`;
  if (device.type !== 'a' && device.type !== 'b' && device.type !== 'c')
    fail(`${field}.type`, device.type, 'a, b or c');
  for (const key of ['major', 'minor'] as const) {
    const n = device[key];
    if (n !== undefined && n !== '*' && (!Number.isSafeInteger(n) || n < 0)) {
      fail(`${field}.${key}`, n, 'expected a device number or "*"');
    }
  }
  if (device.access !== undefined && !/^(?!.*(.).*\1)[rwm]{1,3}$/.test(device.access)) {
    fail(`${field}.access`, device.access, 'expected some of r, w and m');
  }
}

/** Checks every value before anything is written, so a bad request changes nothing. */
export function validateResources(resources: Resources): void {
  const { memory, cpu, pids, blockIO, devices, freezer } = resources;
  if (memory) {
    checkBytes('memory.limit', memory.limit);
    checkBytes('memory.reservation', memory.reservation);
    checkBytes('memory.swap', memory.swap);
    const { limit, swap } = memory;
    if (limit !== undefined && swap !== undefined && limit !== -1 && swap !== -1 && swap < limit) {
      fail('memory.swap', swap, `memory plus swap must be at least memory.limit (${limit})`);
    }
  }
  if (cpu) {
    checkInteger('cpu.shares', cpu.shares, 2, 262_144);
    if (cpu.quota !== -1) checkInteger('cpu.quota', cpu.quota, 1000, Number.MAX_SAFE_INTEGER, ' (µs), or -1');
    checkInteger('cpu.period', cpu.period, 1000, 1_000_000, ' (µs)');
    for (const key of ['cpus', 'mems'] as const) {
      const list = cpu[key];
      if (list !== undefined && parseCpuList(list).length === 0)
        fail(`cpu.${key}`, list, 'expected a list like 0-2,4');
    }
  }
  if (pids && !Number.isSafeInteger(pids.limit)) fail('pids.limit', pids.limit, 'expected an integer');
  if (blockIO) checkInteger('blockIO.weight', blockIO.weight, 10, 1000);
  for (const [index, device] of (devices ?? []).entries()) checkDevice(index, device);
  if (freezer !== undefined && freezer !== 'frozen' && freezer !== 'thawed') {
    fail('freezer', freezer, 'expected "frozen" or "thawed"');
  }
}

export function checkPid(pid: number): void {
  if (!Number.isSafeInteger(pid) || pid <= 0) fail('pid', pid, 'expected a positive integer');
}
