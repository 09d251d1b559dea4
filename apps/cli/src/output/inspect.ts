/**
 * Inspect data as docker's templates see it: docker executes `inspect -f` on typed Go values,
 * where PortMap, Networks, Volumes and the like are maps (printed `map[k:v]`, keys sorted, also
 * by `json`) and `struct{}` values print `{}`. Plain objects from the engine would otherwise read
 * as structs (see gofmt.ts), so the maps of each shape are marked here. Fields docker leaves
 * out of its JSON when empty (omitempty: HostConfig.Tmpfs, Init, …) are absent from box's JSON
 * too, but a template reaches them as docker's typed values do (`<nil>`, `map[]`, `[]`): they
 * are given as properties that are not enumerable, which JSON output does not see.
 */
import type { ImageInspect } from '@box/image';
import type { ContainerInspect } from '@box/runtime';
import { type GoObject, GoStruct, goMap, goStruct } from './gofmt.js';

/** map[string]struct{} (ExposedPorts, Volumes): each value an empty struct. */
function setOf(value: Record<string, unknown> | null | undefined) {
  if (!value) return value;
  return goMap(Object.fromEntries(Object.keys(value).map((k) => [k, new GoStruct('struct {}', {})])));
}

function mapOf<T extends GoObject>(value: T | null | undefined) {
  return value ? goMap({ ...value }) : value;
}

/** A map of lists of structs (PortMap), or a list of structs whose fields are all strings. */
function bindingsOf(value: Record<string, readonly GoObject[] | null>) {
  return goMap(Object.fromEntries(Object.entries(value).map(([k, v]) => [k, v && structs(v)])));
}

function structs(list: readonly GoObject[]): GoObject[] {
  return list.map((item) => goStruct({ ...item }));
}

/** An image config's maps (container Config and an image's Config share them). */
function configValue(config: GoObject): GoObject {
  const out: GoObject = { ...config };
  if ('ExposedPorts' in out) out.ExposedPorts = setOf(out.ExposedPorts as Record<string, unknown>);
  if ('Volumes' in out) out.Volumes = setOf(out.Volumes as Record<string, unknown>);
  if ('Labels' in out) out.Labels = mapOf(out.Labels as GoObject);
  return out;
}

/** Zero values a template sees for fields left out when empty (not in JSON output). */
function withZeros(value: GoObject, zeros: Record<string, () => unknown>): GoObject {
  for (const [key, zero] of Object.entries(zeros)) {
    if (!Object.hasOwn(value, key)) Object.defineProperty(value, key, { value: zero(), enumerable: false });
  }
  return value;
}

export function containerValue(c: ContainerInspect): GoObject {
  const host = c.HostConfig;
  const value: GoObject = {
    ...c,
    HostConfig: {
      ...host,
      LogConfig: { ...host.LogConfig, Config: mapOf(host.LogConfig.Config) },
      PortBindings: bindingsOf(host.PortBindings as never),
      Devices: structs(host.Devices),
      ...(host.Mounts ? { Mounts: structs(host.Mounts as never) } : {}),
      ...(host.Tmpfs ? { Tmpfs: mapOf(host.Tmpfs) } : {}),
      ...(host.Sysctls ? { Sysctls: mapOf(host.Sysctls) } : {}),
    },
    Config: configValue(c.Config as unknown as GoObject),
    NetworkSettings: {
      ...c.NetworkSettings,
      Ports: bindingsOf(c.NetworkSettings.Ports as never),
      Networks: goMap(
        Object.fromEntries(
          Object.entries(c.NetworkSettings.Networks).map(([name, e]) => [
            name,
            { ...e, IPAMConfig: e.IPAMConfig && goStruct({ ...e.IPAMConfig }) },
          ]),
        ),
      ),
    },
    Mounts: c.Mounts.map((m) => withZeros({ ...m }, { Name: () => '', Driver: () => '' })),
  };
  withZeros(value.HostConfig as GoObject, {
    Tmpfs: () => goMap({}),
    Sysctls: () => goMap({}),
    Mounts: () => [],
    Init: () => null,
  });
  withZeros(value.Config as GoObject, { ExposedPorts: () => goMap({}) });
  return value;
}

export function imageValue(image: ImageInspect): GoObject {
  return { ...image, Config: configValue(image.Config as GoObject) };
}
