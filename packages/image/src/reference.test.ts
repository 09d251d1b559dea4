import { describe, expect, it } from 'vitest';
import { isImageError } from './errors.js';
import { familiarString, normalizeReference, parseReference } from './reference.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseReference', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['user/app:v1', 'docker.io/user/app:v1', 'user/app:v1'],
    ['localhost/app', 'localhost/app:latest', 'localhost/app:latest'],
    ['localhost:5000/a/b:tag', 'localhost:5000/a/b:tag', 'localhost:5000/a/b:tag'],
    ['quay.io/org/sub/repo:1.0', 'quay.io/org/sub/repo:1.0', 'quay.io/org/sub/repo:1.0'],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`, `busybox@${D}`],
    [`busybox:1@${D}`, `docker.io/library/busybox:1@${D}`, `busybox:1@${D}`],
    ['a_b-c__d/x--y.z:T_a.g-1', 'docker.io/a_b-c__d/x--y.z:T_a.g-1', 'a_b-c__d/x--y.z:T_a.g-1'],
    ['[::1]:5000/app', '[::1]:5000/app:latest', '[::1]:5000/app:latest'],
  ])('%s → %s', (input, full, short) => {
    expect(normalizeReference(input)).toBe(full);
    expect(familiarString(parseReference(input))).toBe(short);
  });

  it.each([
    ['', 'empty'],
    ['Busybox', 'lowercase'],
    ['user/App', 'lowercase'],
    ['busybox:', 'tag'],
    ['busybox:-x', 'tag'],
    [`busybox:${'a'.repeat(129)}`, 'tag'],
    ['busybox@sha256:abc', 'digest'],
    [`busybox@md5:${'a'.repeat(32)}`, 'digest'],
    [`busybox@sha256:${'A'.repeat(64)}`, 'digest'],
    ['a//b', 'path component'],
    ['-a', 'path component'],
    ['a_', 'path component'],
    [' busybox', 'whitespace'],
    ['a'.repeat(64), 'image ID'],
    [`${'a'.repeat(250)}/b`, 'longer'],
    ['bad_host:5000x/a', 'registry'],
  ])('rejects %j', (input, why) => {
    try {
      parseReference(input);
      expect.unreachable();
    } catch (error) {
      expect(isImageError(error, 'EIMAGE_REFERENCE')).toBe(true);
      expect((error as Error).message).toMatch(/^invalid reference format: /);
      expect((error as Error).message).toContain(why);
    }
  });
});
