/** docker's --change: Dockerfile instructions applied to an image config (import, commit). */
import type { ContainerConfig } from '@box/image';
import { CliError } from './errors.js';

/** JSON form `["a","b"]`, or the shell form run by /bin/sh -c. */
function command(value: string): string[] {
  const text = value.trim();
  if (text.startsWith('[')) {
    try {
      const parsed = JSON.parse(text) as unknown;
      if (Array.isArray(parsed) && parsed.every((p) => typeof p === 'string')) return parsed as string[];
    } catch {
      // not JSON: shell form below
    }
  }
  return ['/bin/sh', '-c', text];
}

function keyValues(value: string): [string, string][] {
  const text = value.trim();
  if (!text.includes('=')) {
    const space = text.search(/\s/);
    if (space === -1) throw new CliError(`ENV needs a value: "${text}"`);
    return [[text.slice(0, space), text.slice(space).trim()]];
  }
  const pairs: [string, string][] = [];
  for (const match of text.matchAll(/([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    const raw = match[2]!;
    pairs.push([match[1]!, raw.startsWith('"') ? (JSON.parse(raw) as string) : raw]);
  }
  return pairs;
}

/** Applies `CMD`, `ENTRYPOINT`, `ENV`, `WORKDIR`, `USER`, `LABEL`, `EXPOSE`, `VOLUME`, `STOPSIGNAL`. */
export function applyChanges(config: ContainerConfig, changes: readonly string[]): ContainerConfig {
  const out: ContainerConfig = { ...config };
  for (const change of changes) {
    const match = /^\s*(\w+)\s+([\s\S]+)$/.exec(change);
    if (!match) throw new CliError(`invalid --change "${change}": expected an instruction and its value`);
    const [, instruction, value] = match as unknown as [string, string, string];
    switch (instruction.toUpperCase()) {
      case 'CMD':
        out.Cmd = command(value);
        break;
      case 'ENTRYPOINT':
        out.Entrypoint = command(value);
        break;
      case 'ENV': {
        const env = new Map((out.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e] as const));
        for (const [k, v] of keyValues(value)) env.set(k, `${k}=${v}`);
        out.Env = [...env.values()];
        break;
      }
      case 'WORKDIR':
        out.WorkingDir = value.trim();
        break;
      case 'USER':
        out.User = value.trim();
        break;
      case 'LABEL':
        out.Labels = { ...(out.Labels ?? {}), ...Object.fromEntries(keyValues(value)) };
        break;
      case 'EXPOSE':
        out.ExposedPorts = {
          ...(out.ExposedPorts ?? {}),
          ...Object.fromEntries(
            value
              .trim()
              .split(/\s+/)
              .map((p) => [p.includes('/') ? p : `${p}/tcp`, {}]),
          ),
        };
        break;
      case 'VOLUME':
        out.Volumes = {
          ...(out.Volumes ?? {}),
          ...Object.fromEntries(
            (value.trim().startsWith('[') ? command(value) : value.trim().split(/\s+/)).map((v) => [v, {}]),
          ),
        };
        break;
      case 'STOPSIGNAL':
        out.StopSignal = value.trim();
        break;
      default:
        throw new CliError(`invalid --change "${change}": ${instruction} is not supported`);
    }
  }
  return out;
}
