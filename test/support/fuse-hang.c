/*
 * A FUSE file system that answers INIT and then never answers anything
 * else: a process that stats a path in it sleeps in the kernel, and once
 * this server has read its request, SIGKILL cannot end it (fuse's
 * request_wait_answer waits uninterruptibly) until this server exits.
 * Usage: fuse-hang MOUNTPOINT  (mounts, forks, the parent prints the
 * server's pid and exits 0 once the mount exists).
 */
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  int fd = open("/dev/fuse", O_RDWR);
  if (fd < 0) { perror("open /dev/fuse"); return 1; }
  char opts[128];
  snprintf(opts, sizeof opts, "fd=%d,rootmode=40000,user_id=0,group_id=0", fd);
  if (mount("fuse-hang", argv[1], "fuse", MS_NOSUID | MS_NODEV, opts) != 0) { perror("mount"); return 1; }
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid > 0) { printf("%d\n", (int)pid); return 0; }
  setsid();
  int nul = open("/dev/null", O_RDWR);
  dup2(nul, 0); dup2(nul, 1); dup2(nul, 2);
  static char buf[1 << 20];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) continue;
    struct fuse_in_header *in = (struct fuse_in_header *)buf;
    if (in->opcode != FUSE_INIT) continue; /* never answered */
    struct { struct fuse_out_header h; struct fuse_init_out o; } out;
    memset(&out, 0, sizeof out);
    out.h.len = sizeof out;
    out.h.unique = in->unique;
    out.o.major = FUSE_KERNEL_VERSION;
    out.o.minor = FUSE_KERNEL_MINOR_VERSION;
    out.o.max_readahead = 0;
    out.o.max_write = 4096;
    if (write(fd, &out, sizeof out) < 0) return 1;
  }
}
