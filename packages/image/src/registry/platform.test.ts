import { describe, expect, it } from 'vitest';
import { formatPlatform, parsePlatform, platformMatches } from './manifests.js';

describe('platformMatches (a local image against --platform)', () => {
  const amd64 = { os: 'linux', architecture: 'amd64' };
  const arm64 = { os: 'linux', architecture: 'arm64' };
  it('needs the same os and architecture, aliases normalised', () => {
    expect(platformMatches(amd64, parsePlatform('linux/amd64'))).toBe(true);
    expect(platformMatches(amd64, parsePlatform('linux/x86_64'))).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'aarch64' }, parsePlatform('linux/arm64'))).toBe(
      true,
    );
    expect(platformMatches(amd64, parsePlatform('linux/arm64'))).toBe(false);
    expect(platformMatches({ os: 'windows', architecture: 'amd64' }, parsePlatform('linux/amd64'))).toBe(
      false,
    );
  });

  it("checks a variant only when one is asked for; arm64's missing variant is v8", () => {
    expect(platformMatches({ ...arm64, variant: 'v8' }, parsePlatform('linux/arm64'))).toBe(true);
    expect(platformMatches(arm64, parsePlatform('linux/arm64/v8'))).toBe(true);
    expect(
      platformMatches({ os: 'linux', architecture: 'arm', variant: 'v6' }, parsePlatform('linux/arm/v7')),
    ).toBe(false);
    expect(platformMatches({ os: 'linux', architecture: 'arm' }, parsePlatform('linux/arm/v7'))).toBe(false);
  });

  it("formats as docker's platforms.Format", () => {
    expect(formatPlatform(parsePlatform('linux/arm64'))).toBe('linux/arm64');
    expect(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' })).toBe('linux/arm/v7');
  });
});
