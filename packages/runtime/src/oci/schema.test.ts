import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
// The generator itself: the checked-in validator must be what it makes from the schema files.
import {
  PLATFORMS as GENERATED_PLATFORMS,
  generate,
  OUTPUT,
  PLATFORMS_OUTPUT,
} from '../../scripts/gen-config-schema.mjs';
import { isRuntimeError } from '../errors.js';
import { defaultSpec } from '../spec.js';
import * as platformValidators from './schema/validate-platforms.generated.js';
import { jsonPath, PLATFORMS, validateConfigSchema } from './schema.js';

const FIXTURE = join(import.meta.dirname, 'schema/fixtures/runc-1.1.5-spec.json');
const RUNC = '/usr/sbin/runc';

/** runc's default config, parsed afresh (tests change it). */
// biome-ignore lint/suspicious/noExplicitAny: each test breaks a different field of the fixture
function runcSpec(): Record<string, any> {
  return JSON.parse(readFileSync(FIXTURE, 'utf8'));
}

/** The message validateConfigSchema throws for `config`, checking it is an ESPEC SpecError. */
async function refusal(config: unknown): Promise<string> {
  try {
    await validateConfigSchema(config);
  } catch (error) {
    expect(isRuntimeError(error, 'ESPEC')).toBe(true);
    expect((error as Error).name).toBe('SpecError');
    const { message } = error as Error;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error('the config was accepted');
}

describe('validateConfigSchema', () => {
  it("accepts runc's default config (runc spec, checked in)", async () => {
    await expect(validateConfigSchema(runcSpec())).resolves.toBeUndefined();
  });

  it("accepts the config this machine's runc spec writes", async () => {
    expect(existsSync(RUNC), `${RUNC} is not installed (scripts/setup.sh installs runc)`).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'box-runc-spec-'));
    try {
      const run = spawnSync(RUNC, ['spec'], { cwd: dir, encoding: 'utf8' });
      expect(run.status, run.stderr).toBe(0);
      await expect(
        validateConfigSchema(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))),
      ).resolves.toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("accepts box's defaultSpec, as an object and as the JSON a bundle holds", async () => {
    const userns = {
      uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
      gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
    };
    for (const spec of [
      defaultSpec({ rootfs: '/srv/rootfs' }),
      defaultSpec({ rootfs: 'rootfs', args: ['sleep', '1'], userns }),
    ]) {
      await expect(validateConfigSchema(spec)).resolves.toBeUndefined();
      await expect(validateConfigSchema(JSON.parse(JSON.stringify(spec)))).resolves.toBeUndefined();
    }
  });

  it("refuses defaultSpec's device cgroup rules: their '*' is not the spec's (major/minor left out)", async () => {
    // With a cgroupsPath, defaultSpec copies @box/cgroups' DEFAULT_DEVICE_RULES, whose "any"
    // major/minor is the string '*'; the spec types them int64 and says to leave them out.
    const spec = defaultSpec({ rootfs: 'rootfs', cgroupsPath: 'box/web' });
    expect(await refusal(spec)).toBe('config.json: linux.resources.devices[0].major: must be integer');
    for (const rule of spec.linux?.resources?.devices ?? []) {
      if (rule.major === '*') delete rule.major;
      if (rule.minor === '*') delete rule.minor;
    }
    await expect(validateConfigSchema(spec)).resolves.toBeUndefined();
  });

  it('accepts what v1.2 added to the older schema files (the overlay)', async () => {
    const config = runcSpec();
    config.ociVersion = '1.2.0';
    config.process.user.umask = 18;
    config.process.scheduler = { policy: 'SCHED_BATCH', flags: ['SCHED_FLAG_RESET_ON_FORK'] };
    config.linux.namespaces.push({ type: 'time' });
    config.linux.seccomp = {
      defaultAction: 'SCMP_ACT_LOG',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_RISCV64'],
      syscalls: [{ names: ['kill'], action: 'SCMP_ACT_KILL_PROCESS' }],
    };
    await expect(validateConfigSchema(config)).resolves.toBeUndefined();
  });

  it("accepts a device's fileMode with its file type bits, as podman sends it; names one past 16 bits", async () => {
    const config = runcSpec();
    config.linux.devices = [{ path: '/dev/x', type: 'c', major: 1, minor: 3, fileMode: 0o20600 }];
    await expect(validateConfigSchema(config)).resolves.toBeUndefined();
    config.linux.devices[0].fileMode = 0o200000;
    await expect(validateConfigSchema(config)).rejects.toThrow(/linux\.devices\[0\]\.fileMode/);
  });

  it('names process.args when it is not an array', async () => {
    const config = runcSpec();
    config.process.args = 'sh -c true';
    expect(await refusal(config)).toBe('config.json: process.args: must be array');
  });

  it('names the namespace with an unknown type, listing the allowed ones', async () => {
    const config = runcSpec();
    config.linux.namespaces[2].type = 'pidfd';
    expect(await refusal(config)).toBe(
      'config.json: linux.namespaces[2].type: must be equal to one of the allowed values ' +
        '(mount, pid, network, uts, ipc, user, cgroup, time)',
    );
  });

  it('says ociVersion is missing', async () => {
    const config = runcSpec();
    delete config.ociVersion;
    expect(await refusal(config)).toBe('config.json: ociVersion: missing');
  });

  it('names a mount without destination', async () => {
    const config = runcSpec();
    delete config.mounts[1].destination;
    expect(await refusal(config)).toBe('config.json: mounts[1].destination: missing');
  });

  it('names a negative uid', async () => {
    const config = runcSpec();
    config.process.user.uid = -1;
    expect(await refusal(config)).toBe('config.json: process.user.uid: must be >= 0');
  });

  it('names a hook without path', async () => {
    const config = runcSpec();
    config.hooks = { createRuntime: [{ path: '/bin/true' }, { args: ['hook'] }] };
    expect(await refusal(config)).toBe('config.json: hooks.createRuntime[1].path: missing');
  });

  it('names a capability that is not a string; the schema has no pattern for their names', async () => {
    const config = runcSpec();
    // v1.2's config-schema.json types every capability set as ArrayOfStrings: a name without
    // CAP_ passes here (validateSpec and the capability code decide what names mean).
    config.process.capabilities.bounding.push('NET_ADMIN');
    await expect(validateConfigSchema(config)).resolves.toBeUndefined();
    config.process.capabilities.bounding.push(12);
    expect(await refusal(config)).toBe('config.json: process.capabilities.bounding[4]: must be string');
  });

  it('accepts unknown fields, top-level and nested: the schema leaves objects open', async () => {
    const config = runcSpec();
    config.boxExtension = { anything: true };
    config.process.notInTheSpec = 1;
    await expect(validateConfigSchema(config)).resolves.toBeUndefined();
  });

  it("checks the other platforms' sections with their own validators, naming the field below the section", async () => {
    const config = runcSpec();
    config.solaris = { milestone: 'svc:/milestone/container:default', cappedCPU: { ncpus: '8' } };
    config.windows = { layerFolders: ['C:\\layers\\1'] };
    await expect(validateConfigSchema(config)).resolves.toBeUndefined();
    config.windows.layerFolders = [];
    expect(await refusal(config)).toBe('config.json: windows.layerFolders: must NOT have fewer than 1 items');
    config.windows = 5;
    expect(await refusal(config)).toBe('config.json: windows: must be object');
    delete config.windows;
    config.solaris.cappedCPU.ncpus = 8;
    expect(await refusal(config)).toBe('config.json: solaris.cappedCPU.ncpus: must be string');
    delete config.solaris;
    config.vm = { hypervisor: { path: 'relative' } };
    expect(await refusal(config)).toBe('config.json: vm.kernel: missing');
    delete config.vm;
    config.zos = { devices: [{ path: '/dev/x' }] };
    expect(await refusal(config)).toMatch(/^config\.json: zos\.devices\[0\]\.\w+: missing$/);
  });

  it('names the top level when the config is not an object', async () => {
    expect(await refusal([])).toBe('config.json: (top level): must be object');
    expect(await refusal(null)).toBe('config.json: (top level): must be object');
  });

  it('names keys that are not identifiers in brackets', async () => {
    const config = runcSpec();
    config.linux.sysctl = { 'net.ipv4.ip_forward': 1 };
    expect(await refusal(config)).toBe('config.json: linux.sysctl["net.ipv4.ip_forward"]: must be string');
  });
});

describe('jsonPath', () => {
  it('turns JSON pointers into dotted paths with indexes', () => {
    expect(jsonPath('')).toBe('');
    expect(jsonPath('/process/args')).toBe('process.args');
    expect(jsonPath('/linux/namespaces/2/type')).toBe('linux.namespaces[2].type');
    expect(jsonPath('/annotations/a~1b~0c')).toBe('annotations["a/b~c"]');
  });
});

describe('the generated validator', () => {
  it('is what scripts/gen-config-schema.mjs makes from the schema files now, the other platforms apart', () => {
    const generated = generate();
    expect(Object.keys(generated).sort()).toEqual([OUTPUT, PLATFORMS_OUTPUT].sort());
    for (const [path, text] of Object.entries(generated)) expect(readFileSync(path, 'utf8')).toBe(text);
  });

  it("runs a validator for each section the generator left open, and the platforms' module has each", () => {
    expect(PLATFORMS).toEqual(GENERATED_PLATFORMS);
    const exported: Record<string, unknown> = { ...platformValidators };
    expect(Object.keys(exported).sort()).toEqual(Object.values(PLATFORMS).sort());
    for (const name of Object.values(PLATFORMS)) expect(typeof exported[name]).toBe('function');
  });
});
