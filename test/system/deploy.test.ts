/**
 * deploy/hotplugd-daemonset.yaml, parsed: host network, SYS_MODULE and
 * NET_ADMIN only, the host's module tree, sysfs and every modprobe.d
 * directory kmod reads mounted read-only, the index cache on the node,
 * probes that are HTTP requests to the daemon (no process per probe), the
 * image's tini as PID 1.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { imagePlan, KMOD_CONFIG_DIRS } from '../../scripts/image-root.mjs';

interface Mount { name: string; mountPath: string; readOnly?: boolean }
interface Volume { name: string; hostPath?: { path: string; type?: string }; emptyDir?: object }
interface HttpProbe { httpGet?: { host?: string; port: number; path: string }; exec?: unknown }

describe('the Kubernetes DaemonSet', () => {
  const doc = parse(readFileSync('deploy/hotplugd-daemonset.yaml', 'utf8'));
  const pod = doc.spec.template.spec;
  const container = pod.containers[0];
  const mounts = container.volumeMounts as Mount[];
  const volumes = pod.volumes as Volume[];
  const volumeAt = (path: string): Volume | undefined => volumes.find((v) => v.name === mounts.find((m) => m.mountPath === path)?.name);
  const image = imagePlan(readFileSync('Dockerfile', 'utf8'));

  it('is a DaemonSet whose selector matches its pods', () => {
    expect(doc.apiVersion).toBe('apps/v1');
    expect(doc.kind).toBe('DaemonSet');
    expect(doc.spec.template.metadata.labels).toMatchObject(doc.spec.selector.matchLabels);
    expect(pod.containers).toHaveLength(1);
    expect(container.image).toBe(`hotplugd:${JSON.parse(readFileSync('package.json', 'utf8')).version}`);
  });

  it('runs in the host network with node-critical priority', () => {
    expect(pod.hostNetwork).toBe(true);
    expect(pod.priorityClassName).toBe('system-node-critical');
  });

  it('adds only SYS_MODULE and NET_ADMIN and is not privileged', () => {
    expect(container.securityContext.capabilities.drop).toEqual(['ALL']);
    expect([...container.securityContext.capabilities.add].sort()).toEqual(['NET_ADMIN', 'SYS_MODULE']);
    expect(container.securityContext.privileged).not.toBe(true);
    expect(container.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
  });

  it('mounts the module tree and sysfs read-only from the same host paths, which must exist', () => {
    for (const path of ['/lib/modules', '/sys']) {
      expect(mounts.find((m) => m.mountPath === path)?.readOnly, path).toBe(true);
      expect(volumeAt(path)?.hostPath, path).toEqual({ path, type: 'Directory' });
    }
  });

  it("makes every modprobe.d directory kmod reads the host's, read-only", () => {
    // The image is merged-/usr (scripts/image-root.mjs checks /lib -> usr/lib):
    // its /usr/lib/modprobe.d is the /lib/modprobe.d mounted here, from the
    // host's /lib/modprobe.d (the host's /usr/lib/modprobe.d too, where /usr is merged).
    expect(image.suite).toBe('bookworm');
    for (const dir of KMOD_CONFIG_DIRS) {
      const path = dir.startsWith('/usr/lib/') ? dir.slice('/usr'.length) : dir;
      expect(mounts.find((m) => m.mountPath === path)?.readOnly, dir).toBe(true);
      // A missing directory is created empty (kmod reads that as no configuration), never fails the pod.
      expect(volumeAt(path)?.hostPath, dir).toEqual({ path, type: 'DirectoryOrCreate' });
    }
    // A second mount on the same directory would stack: on a host whose /usr
    // is not merged, an empty /usr/lib/modprobe.d would hide /lib's files.
    for (const path of ['/usr/lib/modprobe.d', '/usr/lib/modules']) expect(mounts.map((m) => m.mountPath)).not.toContain(path);
  });

  it('keeps the index cache on the node; the only other writable path is the control socket emptyDir', () => {
    expect(mounts.filter((m) => m.readOnly !== true).map((m) => m.mountPath).sort()).toEqual(['/run/hotplugd', '/var/cache/hotplugd']);
    // kubelet creates it 0755 root: the cache's ownership check accepts it.
    expect(volumeAt('/var/cache/hotplugd')?.hostPath).toEqual({ path: '/var/cache/hotplugd', type: 'DirectoryOrCreate' });
    expect(volumeAt('/run/hotplugd')?.emptyDir).toBeDefined();
    expect(container.args).not.toContain('--cache-dir');
  });

  it('probes with HTTP requests to the daemon on the node loopback, never a process per probe', () => {
    const args = container.args as string[];
    const listen = args[args.indexOf('--metrics-listen') + 1];
    expect(listen).toBe('127.0.0.1:9101');
    const probes: Record<string, HttpProbe> = { readinessProbe: container.readinessProbe, livenessProbe: container.livenessProbe };
    expect(probes.readinessProbe?.httpGet).toEqual({ host: '127.0.0.1', port: 9101, path: '/readyz' });
    expect(probes.livenessProbe?.httpGet).toEqual({ host: '127.0.0.1', port: 9101, path: '/livez' });
    expect(JSON.stringify(container)).not.toContain('"exec"');
  });

  it("runs the image's entrypoint (tini as PID 1) with the image's arguments", () => {
    expect(container.command).toBeUndefined();
    expect(image.entrypoint.slice(0, 2)).toEqual(['/usr/bin/tini', '--']);
    expect(container.args).toEqual(image.cmd);
  });
});
