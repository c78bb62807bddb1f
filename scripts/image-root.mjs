#!/usr/bin/env node
/**
 * The container image's file tree, built with the Dockerfile's own steps
 * where no container engine runs, and checked.
 *
 *   node scripts/image-root.mjs [--package-root DIR] [--out DIR [--checks-only]] [--keep]
 *
 * Reads the Dockerfile's last stage (the image): its FROM must be a Debian
 * image (debian:SUITE or debian:SUITE-slim, pinned by digest); mmdebstrap
 * builds SUITE's minbase (what the -slim images are built from) and runs
 * the stage's steps in order inside it: each RUN with /bin/sh -c in the
 * chroot (apt-get reaches the Debian registry), each COPY --from=build of the
 * package tree from --package-root (default dist/package/root, which
 * `npm run package` makes: the build stage's own command). ENV, LABEL,
 * HEALTHCHECK, ENTRYPOINT and CMD are kept as the image's configuration. Any
 * other instruction in that stage fails the script rather than be skipped.
 *
 * Then, in the root (chroot, private mount, PID and network namespaces;
 * the host's /sys bound read-only, nothing written to it):
 *   - the entrypoint with the image's ENV prints the package's version;
 *   - ENTRYPOINT + CMD + --demo (the shipped index: this host has no module
 *     tree) starts under tini as PID 1, the HEALTHCHECK command answers 0,
 *     and SIGTERM to PID 1 (docker stop) ends it with 0;
 *   - tini reaps an orphan (an install command's child whose parent exited);
 *   - kmod's modprobe runs; with HOTPLUGD_DEBIAN_ROOT (a module tree) bound
 *     at /lib/modules, `modprobe -n --ignore-install` resolves a module as a
 *     host's install command would;
 *   - every modprobe.d directory kmod reads exists and is empty (only the
 *     host's, mounted over them, is read); /lib is usr/lib (merged /usr);
 *     /var/cache/hotplugd and each directory above it is root's, 0755.
 * Needs root, mmdebstrap, unshare/nsenter (util-linux) and the Debian registry.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const KMOD_CONFIG_DIRS = ['/etc/modprobe.d', '/run/modprobe.d', '/usr/local/lib/modprobe.d', '/lib/modprobe.d', '/usr/lib/modprobe.d'];

/** Dockerfile lines → instructions: continuations joined, comment lines dropped (also inside a continuation, as Docker does). */
export function parseDockerfile(text) {
  const out = [];
  let cur = '';
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (/^\s*#/.test(line)) continue;
    if (cur === '' && line.trim() === '') continue;
    if (/\\$/.test(line)) {
      cur += `${line.slice(0, -1)} `;
      continue;
    }
    cur += line;
    const m = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(cur);
    if (m === null) throw new Error(`Dockerfile: not an instruction: ${cur}`);
    out.push({ op: m[1].toUpperCase(), args: m[2].trim() });
    cur = '';
  }
  if (cur !== '') throw new Error('Dockerfile: ends inside a continuation');
  return out;
}

/** Instructions → stages: { from, name, steps }. */
export function stages(instructions) {
  const all = [];
  for (const i of instructions) {
    if (i.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(i.args);
      if (m === null) throw new Error(`Dockerfile: FROM ${i.args}`);
      all.push({ from: m[1], name: m[2], steps: [] });
    } else if (all.length > 0) all.at(-1).steps.push(i);
    else if (i.op !== 'ARG') throw new Error(`Dockerfile: ${i.op} before FROM`);
  }
  return all;
}

/** `k=v k2="v 2"` (LABEL, ENV): pairs, double quotes and backslash escapes as Docker reads them. */
export function keyValues(args) {
  const pairs = {};
  const re = /\s*([^=\s]+)=("((?:[^"\\]|\\.)*)"|\S*)/gy;
  let m;
  let end = 0;
  while ((m = re.exec(args)) !== null) {
    pairs[m[1]] = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[2];
    end = re.lastIndex;
  }
  if (args.slice(end).trim() !== '') throw new Error(`Dockerfile: cannot read "${args.slice(end)}" as key=value`);
  return pairs;
}

/** The image stage as a plan: the Debian suite, the steps to replay, and the image's configuration. */
export function imagePlan(text) {
  const all = stages(parseDockerfile(text));
  const image = all.at(-1);
  const m = /^(?:docker\.io\/)?(?:library\/)?debian:([a-z]+)(-slim)?@sha256:[0-9a-f]{64}$/.exec(image.from);
  if (m === null) throw new Error(`the image's FROM must be debian:SUITE[-slim]@sha256:DIGEST, not ${image.from}`);
  const cfg = { suite: m[1], from: image.from, steps: [], env: {}, labels: {}, entrypoint: [], cmd: [], healthcheck: undefined };
  for (const s of image.steps) {
    switch (s.op) {
      case 'RUN':
        if (s.args.startsWith('[') || s.args.startsWith('--')) throw new Error(`RUN: only the shell form without options is replayed: ${s.args}`);
        cfg.steps.push({ run: s.args, env: { ...cfg.env } });
        break;
      case 'COPY': {
        const w = s.args.split(/\s+/);
        const from = w[0].startsWith('--from=') ? w.shift().slice(7) : undefined;
        if (w.length !== 2 || w.some((x) => x.startsWith('--'))) throw new Error(`COPY: one source and one destination expected: ${s.args}`);
        const stage = all.find((x) => x.name === from);
        if (stage === undefined) throw new Error(`COPY: only --from=<a stage> is replayed: ${s.args}`);
        const workdir = stage.steps.filter((x) => x.op === 'WORKDIR').at(-1)?.args ?? '/';
        const tree = join(workdir, 'dist/package/root');
        if (!(`${w[0]}/`.startsWith(`${tree}/`))) throw new Error(`COPY --from=${from}: only the package tree (${tree}) is replayed: ${w[0]}`);
        cfg.steps.push({ copy: w[0].slice(tree.length).replace(/^\/+/, ''), to: w[1] });
        break;
      }
      case 'ENV':
        Object.assign(cfg.env, keyValues(s.args));
        break;
      case 'LABEL':
        Object.assign(cfg.labels, keyValues(s.args));
        break;
      case 'ENTRYPOINT':
      case 'CMD':
        cfg[s.op.toLowerCase()] = JSON.parse(s.args);
        break;
      case 'HEALTHCHECK': {
        const h = /^((?:--[a-z-]+=\S+\s+)*)CMD\s+(\[.*\])$/.exec(s.args);
        if (h === null) throw new Error(`HEALTHCHECK: options then CMD ["exec", "form"] expected: ${s.args}`);
        cfg.healthcheck = { options: h[1].trim().split(/\s+/).filter(Boolean), cmd: JSON.parse(h[2]) };
        break;
      }
      case 'ARG':
        break;
      default:
        throw new Error(`${s.op}: not replayed by scripts/image-root.mjs; teach it this instruction`);
    }
  }
  return cfg;
}

const shq = (s) => `'${s.replaceAll("'", "'\\''")}'`;
const envArgs = (env) => Object.entries(env).map(([k, v]) => `${k}=${v}`);
const BASE_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root' };

/** mmdebstrap with one customize hook per step, in the Dockerfile's order. */
export function buildRoot(plan, packageRoot, out) {
  const hooks = plan.steps.map((s) =>
    s.run !== undefined
      ? `chroot "$1" env -i ${envArgs({ ...BASE_ENV, ...s.env }).map(shq).join(' ')} /bin/sh -c ${shq(s.run)}`
      : `cp -a ${shq(join(packageRoot, s.copy))}/. "$1"${shq(s.to)}`,
  );
  // /run is kept as the steps leave it, as in an image layer (mmdebstrap empties it by default).
  execFileSync('mmdebstrap', ['--mode=root', '--variant=minbase', '-q', '--skip=cleanup/run', ...hooks.map((h) => `--customize-hook=${h}`), plan.suite, out], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

/** The host pid of `pid`'s first child (unshare --fork's child: PID 1 in its namespace). */
async function childOf(pid) {
  for (let i = 0; i < 100; i++) {
    const f = `/proc/${pid}/task/${pid}/children`;
    const c = existsSync(f) ? readFileSync(f, 'utf8').trim().split(/\s+/)[0] : '';
    if (c) return Number(c);
    await sleep(50);
  }
  throw new Error(`no child of ${pid}`);
}

async function until(what, ms, f) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms / 1000} s`);
    await sleep(200);
  }
}

/**
 * In a private mount, PID and network namespace: bind the host's /sys
 * read-only, a tmpfs /run and /tmp, /dev; lo up; then `exec chroot ROOT argv`.
 */
function inImage(root, argv, env, extraMounts = '') {
  const setup = [
    'set -e',
    `mount --rbind /sys ${shq(`${root}/sys`)}`,
    `mount -o remount,bind,ro ${shq(`${root}/sys`)}`,
    `mount --rbind /dev ${shq(`${root}/dev`)}`,
    `mount -t tmpfs tmpfs ${shq(`${root}/run`)}`,
    `mkdir -p ${shq(`${root}/run/modprobe.d`)}`,
    `mount -t tmpfs tmpfs ${shq(`${root}/tmp`)}`,
    extraMounts,
    'ip link set lo up',
    `exec chroot ${shq(root)} env -i ${envArgs({ ...BASE_ENV, ...env }).map(shq).join(' ')} ${argv.map(shq).join(' ')}`,
  ].join('\n');
  return ['unshare', ['--mount', '--propagation', 'private', '--pid', '--net', '--fork', `--mount-proc=${root}/proc`, 'sh', '-c', setup]];
}

export async function checkRoot(root, plan, version) {
  const results = [];
  const check = async (name, f) => {
    try {
      results.push({ name, ok: true, detail: (await f()) ?? '' });
    } catch (e) {
      results.push({ name, ok: false, detail: e.message });
    }
  };
  const run = (argv, extra) => {
    const [cmd, args] = inImage(root, argv, plan.env, extra);
    return sh(cmd, args);
  };
  await check('the entrypoint prints the package version', () => {
    const out = run([...plan.entrypoint, '--version']).trim();
    if (!out.includes(version)) throw new Error(`--version printed "${out}", not ${version}`);
    return out;
  });
  await check('ENTRYPOINT + CMD (--demo) runs under tini as PID 1, is healthy, and stops with 0 on SIGTERM', async () => {
    if (plan.healthcheck === undefined) throw new Error('no HEALTHCHECK');
    const [cmd, args] = inImage(root, [...plan.entrypoint, ...plan.cmd, '--demo']);
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    p.stdout.on('data', (d) => (log += d));
    p.stderr.on('data', (d) => (log += d));
    const exited = new Promise((r) => p.once('exit', (code, signal) => r(code ?? signal)));
    try {
      const pid1 = await childOf(p.pid);
      // PID 1 execs its way to the entrypoint (sh, chroot, env, tini).
      const comm = () => (existsSync(`/proc/${pid1}/comm`) ? readFileSync(`/proc/${pid1}/comm`, 'utf8').trim() : 'gone');
      await until(`PID 1 (${comm()}) becoming tini`, 30_000, () => comm() === 'tini');
      const health = () =>
        new Promise((r) => {
          const h = spawn('nsenter', ['-t', String(pid1), '-n', '-m', '-p', '-r', '-w', ...plan.healthcheck.cmd], { stdio: 'ignore' });
          h.once('exit', (code) => r(code === 0));
        });
      await until('the HEALTHCHECK command answering 0', 90_000, health);
      process.kill(pid1, 'SIGTERM');
      const code = await exited;
      if (code !== 0) throw new Error(`exit ${code} after SIGTERM\n${log}`);
      if (!log.includes('"msg":"stopping"')) throw new Error(`no "stopping" record\n${log}`);
      return 'healthy, then exit 0';
    } finally {
      p.kill('SIGKILL');
    }
  });
  await check('tini reaps an orphan', () => {
    // B blocks on a FIFO; its parent A exits, so B is re-parented to PID 1;
    // B is released and exits: PID 1 must reap it (with Node as PID 1, B
    // stays a zombie: tried by hand with the same probe).
    const probe = [
      'mkfifo /tmp/f',
      "sh -c 'sh -c \"read x </tmp/f\" & echo $! >/tmp/b; exit 0'",
      'b=$(cat /tmp/b); echo go >/tmp/f',
      'i=0; while [ -e /proc/$b ]; do read -r _ _ st _ </proc/$b/stat; i=$((i+1)); [ $i -gt 100 ] && echo "orphan $b left in state $st" && exit 1; sleep 0.1; done; echo "orphan $b reaped"',
    ].join('\n');
    return run([plan.entrypoint[0], '--', '/bin/sh', '-c', probe]).trim();
  });
  await check('modprobe (kmod) runs, and resolves a module from a mounted tree', () => {
    const v = run(['/sbin/modprobe', '--version']).split('\n')[0];
    const debian = process.env.HOTPLUGD_DEBIAN_ROOT;
    if (debian === undefined || !existsSync(join(debian, 'modules.dep'))) return `${v} (HOTPLUGD_DEBIAN_ROOT unset: no module tree to resolve from)`;
    const release = debian.split('/').filter(Boolean).at(-1);
    const mount = `mount --bind -o ro ${shq(dirname(debian))} ${shq(`${root}/lib/modules`)}`;
    const out = run(['/bin/sh', '-c', `/sbin/modprobe -n -v --ignore-install -S ${release} pcspkr`], `mkdir -p ${shq(`${root}/lib/modules`)}\n${mount}`).trim();
    if (!out.startsWith(`insmod /lib/modules/${release}/`)) throw new Error(`modprobe -n printed: ${out}`);
    return `${v}; ${out}`;
  });
  await check("every modprobe.d directory kmod reads exists and is empty (the host's is mounted over it)", () => {
    for (const d of KMOD_CONFIG_DIRS) {
      const p = join(root, d);
      if (!statSync(p).isDirectory()) throw new Error(`${d} is not a directory`);
      if (readdirSync(p).length > 0) throw new Error(`${d} holds ${readdirSync(p).join(', ')}`);
    }
    if (!lstatSync(join(root, 'lib')).isSymbolicLink() || readlinkSync(join(root, 'lib')) !== 'usr/lib') throw new Error('/lib is not a link to usr/lib');
    return `${KMOD_CONFIG_DIRS.join(' ')}; /lib -> usr/lib`;
  });
  await check('/var/cache/hotplugd and every directory above it: root, not writable by group or others', () => {
    let p = '/var/cache/hotplugd';
    for (;;) {
      const st = statSync(join(root, p));
      if (!st.isDirectory() || st.uid !== 0 || (st.mode & 0o022) !== 0) throw new Error(`${p}: uid ${st.uid} mode ${(st.mode & 0o7777).toString(8)}`);
      if (p === '/') return 'ok';
      p = dirname(p);
    }
  });
  return results;
}

async function main() {
  const args = process.argv.slice(2);
  const opt = (n, d) => (args.includes(n) ? args[args.indexOf(n) + 1] : d);
  const packageRoot = resolve(opt('--package-root', join(REPO, 'dist/package/root')));
  if (!existsSync(join(packageRoot, 'usr/bin/hotplugd'))) throw new Error(`${packageRoot}: no package tree (run npm run package)`);
  const plan = imagePlan(readFileSync(join(REPO, 'Dockerfile'), 'utf8'));
  const version = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version;
  const scratch = args.includes('--out') ? undefined : mkdtempSync(join(tmpdir(), 'hotplugd-image-'));
  const out = resolve(opt('--out', join(scratch ?? '', 'root')));
  const t0 = Date.now();
  if (args.includes('--checks-only')) {
    // A root this script built before (--out DIR --keep): check it again.
    if (!existsSync(join(out, 'usr/bin/hotplugd'))) throw new Error(`--checks-only: ${out} holds no image root`);
  } else {
    process.stderr.write(`image-root: mmdebstrap ${plan.suite} minbase + ${plan.steps.length} steps of the Dockerfile → ${out}\n`);
    buildRoot(plan, packageRoot, out);
  }
  const built = (Date.now() - t0) / 1000;
  const du = sh('du', ['-sm', out]).split('\t')[0];
  const results = await checkRoot(out, plan, version);
  for (const r of results) process.stdout.write(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name}${r.detail ? `: ${r.detail}` : ''}\n`);
  process.stdout.write(`image-root: built in ${built.toFixed(0)} s, ${du} MB\n`);
  // Only a scratch directory this run made; the namespaces' mounts died with them.
  if (scratch !== undefined && !args.includes('--keep')) rmSync(scratch, { recursive: true, force: true });
  process.exitCode = results.every((r) => r.ok) ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await main();
