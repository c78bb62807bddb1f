/**
 * deploy/hotplugd-daemonset.yaml, parsed: the fields hotplugd needs on a node
 * (host network, SYS_MODULE and NET_ADMIN only, read-only host paths for the
 * module tree, sysfs and modprobe.d, node-critical priority).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

interface Mount { name: string; mountPath: string; readOnly?: boolean }
interface Volume { name: string; hostPath?: { path: string }; emptyDir?: object }

describe('the Kubernetes DaemonSet', () => {
  const doc = parse(readFileSync('deploy/hotplugd-daemonset.yaml', 'utf8'));
  const pod = doc.spec.template.spec;
  const container = pod.containers[0];

  it('is a DaemonSet whose selector matches its pods', () => {
    expect(doc.apiVersion).toBe('apps/v1');
    expect(doc.kind).toBe('DaemonSet');
    expect(doc.spec.template.metadata.labels).toMatchObject(doc.spec.selector.matchLabels);
    expect(pod.containers).toHaveLength(1);
  });

  it('runs in the host network with node-critical priority', () => {
    expect(pod.hostNetwork).toBe(true);
    expect(pod.priorityClassName).toBe('system-node-critical');
  });

  it('adds only SYS_MODULE and NET_ADMIN and is not privileged', () => {
    expect(container.securityContext.capabilities.drop).toEqual(['ALL']);
    expect([...container.securityContext.capabilities.add].sort()).toEqual(['NET_ADMIN', 'SYS_MODULE']);
    expect(container.securityContext.privileged).not.toBe(true);
  });

  it('mounts /lib/modules, /sys and /etc/modprobe.d from the host, read-only', () => {
    const mounts = container.volumeMounts as Mount[];
    const volumes = pod.volumes as Volume[];
    for (const path of ['/lib/modules', '/sys', '/etc/modprobe.d']) {
      const mount = mounts.find((m) => m.mountPath === path);
      expect(mount, path).toBeDefined();
      expect(mount!.readOnly, path).toBe(true);
      expect(volumes.find((v) => v.name === mount!.name)?.hostPath?.path, path).toBe(path);
    }
    // Writable: only the control socket's directory, a pod-local emptyDir.
    expect(mounts.filter((m) => m.readOnly !== true).map((m) => m.mountPath)).toEqual(['/run/hotplugd']);
    expect(volumes.find((v) => v.name === mounts.find((m) => m.mountPath === '/run/hotplugd')!.name)?.emptyDir).toBeDefined();
  });

  it('is ready when hotplugd settle --timeout 0 says every device so far has its driver', () => {
    expect(container.readinessProbe.exec.command).toEqual(['/usr/bin/hotplugd', 'settle', '--timeout', '0']);
  });
});
