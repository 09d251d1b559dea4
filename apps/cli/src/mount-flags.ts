/**
 * docker's mount flags → the engine's mount requests: `-v SRC:DST[:OPTS]` (a host path when
 * SRC has a `/` or starts with `.`, else a named volume; `-v DST` an anonymous one), `--mount
 * type=bind|volume|tmpfs,…` and `--tmpfs DST[:OPTS]`. Only the syntax is checked here; paths,
 * names and duplicates are checked by the engine.
 */
import type { MountRequest } from '@box/runtime';
import { CliError } from './errors.js';

export interface MountFlags {
  volume?: string[];
  mount?: string[];
  tmpfs?: string[];
  readOnly?: boolean;
}

const BIND_OPTIONS = new Set([
  'ro',
  'rw',
  'z',
  'Z',
  'private',
  'rprivate',
  'slave',
  'rslave',
  'shared',
  'rshared',
  'nocopy',
]);
const TMPFS_OPTION =
  /^(ro|rw|nosuid|suid|nodev|dev|noexec|exec|size=\d+[kmg%]?|mode=[0-7]{3,4}|uid=\d+|gid=\d+|nr_inodes=\d+[kmg]?)$/i;

function volumeFlag(value: string): MountRequest {
  const parts = value.split(':');
  if (parts.length === 1) return { type: 'volume', destination: parts[0]!, short: { mode: '' } };
  if (parts.length > 3) throw new CliError(`invalid volume specification: '${value}'`);
  const [source = '', destination = '', opts = ''] = parts;
  const options = opts ? opts.split(',') : [];
  for (const option of options) {
    if (!BIND_OPTIONS.has(option))
      throw new CliError(`invalid mode: ${option} in volume specification '${value}'`);
  }
  const readonly = options.includes('ro');
  if (source.includes('/') || source.startsWith('.')) {
    return {
      type: 'bind',
      source,
      destination,
      readonly,
      propagation: options.filter((o) => /private|slave|shared/.test(o)),
      // As docker: -v makes a missing host directory (--mount refuses it).
      createSource: true,
      short: { mode: opts },
    };
  }
  return { type: 'volume', source, destination, readonly, short: { mode: opts } };
}

function mountFlag(value: string): MountRequest {
  const fields = new Map<string, string>();
  for (const field of value.split(',')) {
    const eq = field.indexOf('=');
    const key = (eq === -1 ? field : field.slice(0, eq)).trim();
    fields.set(key, eq === -1 ? 'true' : field.slice(eq + 1));
  }
  const type = fields.get('type') ?? 'volume';
  const target = fields.get('target') ?? fields.get('destination') ?? fields.get('dst');
  if (!target) throw new CliError(`invalid --mount "${value}": target is required`);
  const source = fields.get('source') ?? fields.get('src');
  const readonly = ['true', '1'].includes(fields.get('readonly') ?? fields.get('ro') ?? 'false');
  if (type === 'bind') {
    if (!source) throw new CliError(`invalid --mount "${value}": source is required for a bind mount`);
    return { type: 'bind', source, destination: target, readonly };
  }
  if (type === 'volume') return { type: 'volume', source, destination: target, readonly };
  if (type === 'tmpfs') {
    const options: string[] = [];
    const size = fields.get('tmpfs-size');
    const mode = fields.get('tmpfs-mode');
    if (size !== undefined) {
      if (!/^\d+[kmg]?$/i.test(size)) throw new CliError(`invalid --mount "${value}": bad tmpfs-size`);
      options.push(`size=${size}`);
    }
    if (mode !== undefined) {
      if (!/^[0-7]{3,4}$/.test(mode)) throw new CliError(`invalid --mount "${value}": bad tmpfs-mode`);
      options.push(`mode=${mode}`);
    }
    if (readonly) options.push('ro');
    return { type: 'tmpfs', destination: target, options };
  }
  throw new CliError(`invalid --mount "${value}": unknown type "${type}" (bind, volume or tmpfs)`);
}

function tmpfsFlag(value: string): MountRequest {
  const colon = value.indexOf(':');
  const destination = colon === -1 ? value : value.slice(0, colon);
  const options = colon === -1 ? [] : value.slice(colon + 1).split(',');
  for (const option of options) {
    if (!TMPFS_OPTION.test(option)) throw new CliError(`invalid --tmpfs option "${option}" in "${value}"`);
  }
  return { type: 'tmpfs', destination, options, short: { mode: colon === -1 ? '' : value.slice(colon + 1) } };
}

export function parseMountFlags(flags: MountFlags): MountRequest[] {
  return [
    ...(flags.volume ?? []).map(volumeFlag),
    ...(flags.mount ?? []).map(mountFlag),
    ...(flags.tmpfs ?? []).map(tmpfsFlag),
  ];
}
