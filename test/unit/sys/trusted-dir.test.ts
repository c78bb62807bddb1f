/**
 * The directory rule shared by the control socket and the index cache
 * (src/sys/trusted-dir.ts): every directory from / checked through the
 * descriptor that is kept, the first that fails named.
 */
import { chmodSync, chownSync, closeSync, mkdirSync, mkdtempSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dirStatProblem, entryPath, openTrustedDir, UntrustedDir } from '../../../src/sys/trusted-dir.js';

function base(): string {
  const b = mkdtempSync(join(tmpdir(), 'hotplugd-trust-'));
  chmodSync(b, 0o755);
  return b;
}

/** The problem openTrustedDir names for `dir`, or 'trusted'. */
function verdict(dir: string, leaf: 'euid' | 'euid-or-root' = 'euid-or-root', euid = 0): unknown {
  try {
    closeSync(openTrustedDir(dir, leaf, euid));
    return 'trusted';
  } catch (e) {
    if (e instanceof UntrustedDir) return e.problem;
    throw e;
  }
}

describe('trusted directories', () => {
  it('states the rule for one directory: owner root or the daemon (or only the daemon), not group/other-writable unless sticky', () => {
    expect(dirStatProblem({ uid: 0, mode: 0o40755 }, 0, 'euid-or-root')).toBeNull();
    expect(dirStatProblem({ uid: 0, mode: 0o41777 }, 0, undefined)).toBeNull();
    expect(dirStatProblem({ uid: 0, mode: 0o40775 }, 0, undefined)).toBe('writable by its group or others and not sticky (mode 775)');
    expect(dirStatProblem({ uid: 65534, mode: 0o40755 }, 0, undefined)).toBe('owned by uid 65534, not root');
    expect(dirStatProblem({ uid: 1000, mode: 0o40700 }, 1000, 'euid-or-root')).toBeNull();
    expect(dirStatProblem({ uid: 0, mode: 0o40755 }, 1000, 'euid')).toBe("owned by uid 0, not the daemon's uid 1000");
    expect(dirStatProblem({ uid: 0, mode: 0o40755 }, 1000, undefined)).toBeNull();
    expect(dirStatProblem({ uid: 65534, mode: 0o40755 }, 1000, 'euid-or-root')).toBe("owned by uid 65534, neither root nor the daemon's uid 1000");
  });

  it('names the first directory from / that another user owns or may write, a sticky one allowed, a symlink refused', () => {
    const b = base();
    const dir = join(b, 'a', 'b');
    mkdirSync(dir, { recursive: true });
    chmodSync(join(b, 'a'), 0o755);
    expect(verdict(dir)).toBe('trusted');
    chownSync(dir, 65534, 65534);
    expect(verdict(dir)).toEqual({ dir, ancestor: false, why: 'owned by uid 65534, not root' });
    chownSync(dir, 0, 0);
    chownSync(join(b, 'a'), 65534, 65534);
    expect(verdict(dir)).toEqual({ dir: join(b, 'a'), ancestor: true, why: 'owned by uid 65534, not root' });
    chownSync(join(b, 'a'), 0, 0);
    chmodSync(join(b, 'a'), 0o777);
    expect(verdict(dir)).toMatchObject({ dir: join(b, 'a'), ancestor: true, why: expect.stringContaining('mode 777') as string });
    chmodSync(join(b, 'a'), 0o1777);
    expect(verdict(dir)).toBe('trusted');
    symlinkSync(dir, join(b, 'link'));
    expect(verdict(join(b, 'link'))).toEqual({ dir: join(b, 'link'), ancestor: false, why: 'a symlink' });
    // A symlink above is followed once (realpath): what is checked is where it leads.
    symlinkSync(join(b, 'a'), join(b, 'up'));
    expect(verdict(join(b, 'up', 'b'))).toBe('trusted');
    chownSync(dir, 65534, 65534);
    expect(verdict(join(b, 'up', 'b'))).toEqual({ dir, ancestor: false, why: 'owned by uid 65534, not root' });
  });

  it('keeps the directory it checked: renamed or replaced afterwards, entries still come from it', () => {
    const b = base();
    const dir = join(b, 'cache');
    mkdirSync(dir);
    writeFileSync(join(dir, 'x'), 'checked');
    const fd = openTrustedDir(dir, 'euid-or-root', 0);
    try {
      renameSync(dir, join(b, 'moved'));
      mkdirSync(dir);
      writeFileSync(join(dir, 'x'), 'swapped in');
      expect(readFileSync(entryPath(fd, 'x'), 'utf8')).toBe('checked');
    } finally {
      closeSync(fd);
    }
  });
});
