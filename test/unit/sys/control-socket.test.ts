/**
 * Binding the control socket: the parent directory checked as sshd's
 * StrictModes does (the problem named, nothing created in a refused one),
 * directories created 0755 whatever the umask, the socket bound in a private
 * directory with its mode and group and renamed into place.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bindControlSocket, type BoundSocket } from '../../../src/sys/control-socket.js';

const root = process.geteuid?.() === 0;
let bound: BoundSocket[] = [];
afterEach(() => {
  for (const b of bound) b.close();
  bound = [];
});

const base = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'hotplugd-bind-'));
  chmodSync(d, 0o755);
  return d;
};
const bind = async (path: string, group?: number): Promise<BoundSocket> => {
  const b = await bindControlSocket(path, (s) => s.destroy(), group);
  bound.push(b);
  return b;
};

describe('bindControlSocket', () => {
  it('refuses a parent that is a symlink, writable by others, or owned by another uid, naming the problem, and creates nothing there', async () => {
    const b = base();
    const real = join(b, 'real');
    mkdirSync(real, { mode: 0o755 });
    symlinkSync(real, join(b, 'link'));
    await expect(bind(join(b, 'link', 'control'))).rejects.toThrow(`${join(b, 'link')}: control socket directory is a symlink; refused`);
    const open = join(b, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    await expect(bind(join(open, 'control'))).rejects.toThrow('control socket directory is writable by its group or others and not sticky (mode 777)');
    const grp = join(b, 'grp');
    mkdirSync(grp);
    chmodSync(grp, 0o775);
    await expect(bind(join(grp, 'control'))).rejects.toThrow('writable by its group or others and not sticky (mode 775)');
    // An ancestor anyone may write (not sticky): the parent could be swapped.
    const anc = join(b, 'anc');
    mkdirSync(join(anc, 'sub'), { recursive: true });
    chmodSync(anc, 0o777);
    await expect(bind(join(anc, 'sub', 'control'))).rejects.toThrow(`${anc}: control socket directory has an ancestor writable by its group or others and not sticky (mode 777)`);
    if (root) {
      const theirs = join(b, 'theirs');
      mkdirSync(theirs, { mode: 0o755 });
      chownSync(theirs, 65534, 65534);
      await expect(bind(join(theirs, 'control'))).rejects.toThrow("control socket directory is owned by uid 65534, not the daemon's uid 0");
      expect(readdirSync(theirs)).toEqual([]);
    }
    expect(readdirSync(real)).toEqual([]);
    expect(readdirSync(open)).toEqual([]);
  });

  it('accepts a sticky parent anyone may write (a Kubernetes emptyDir is a 1777 tmpfs)', async () => {
    const sticky = join(base(), 'sticky');
    mkdirSync(sticky);
    chmodSync(sticky, 0o1777);
    await bind(join(sticky, 'control'));
    expect(lstatSync(join(sticky, 'control')).isSocket()).toBe(true);
  });

  it('creates missing directories 0755 whatever the umask', async () => {
    const b = base();
    const old = process.umask(0o077);
    try {
      await bind(join(b, 'a', 'b', 'control'));
    } finally {
      process.umask(old);
    }
    expect(statSync(join(b, 'a')).mode & 0o7777).toBe(0o755);
    expect(statSync(join(b, 'a', 'b')).mode & 0o7777).toBe(0o755);
  });

  it('puts the socket in place with its mode and group, replacing a stale one, leaving no private directory behind', async () => {
    const b = base();
    const path = join(b, 'control');
    // A stale socket: its daemon was killed (libuv unlinks the path on a clean close).
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    const staleIno = lstatSync(path).ino;
    expect(lstatSync(path).isSocket()).toBe(true);
    writeFileSync(join(b, 'keep'), 'x');
    const s = await bind(path, root ? 4242 : undefined);
    const st = lstatSync(path);
    expect(st.isSocket()).toBe(true);
    expect(st.ino).not.toBe(staleIno);
    expect(st.mode & 0o777).toBe(root ? 0o660 : 0o600);
    if (root) expect(st.gid).toBe(4242);
    expect(readdirSync(b).sort()).toEqual(['control', 'keep']);
    s.close();
    expect(readdirSync(b)).toEqual(['keep']);
  });
});
