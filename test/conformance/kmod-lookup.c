/*
 * kmod-lookup: libkmod's own answer to "which modules serve this alias?",
 * for hotplugd's conformance golden file and benchmark.
 *
 *   kmod-lookup MODULE_DIR < queries     -> "<query>\t<names...>" per line
 *   kmod-lookup --bench N MODULE_DIR < queries
 *                                        -> N timed passes over the queries;
 *                                           prints "ns_per_lookup <x>"
 *
 * Names are printed once each, in libkmod's order, separated by spaces. No
 * modprobe.d is read (config path list is an empty directory list), so the
 * answer depends on the module directory alone.
 */
#define _GNU_SOURCE
#include <libkmod.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void lookup(struct kmod_ctx *ctx, const char *q, FILE *out) {
	struct kmod_list *list = NULL, *l;
	char seen[65536];
	size_t used = 0;
	int first = 1;
	fputs(q, out);
	fputc('\t', out);
	if (kmod_module_new_from_lookup(ctx, q, &list) >= 0) {
		kmod_list_foreach(l, list) {
			struct kmod_module *m = kmod_module_get_module(l);
			const char *name = kmod_module_get_name(m);
			size_t n = strlen(name);
			/* dedupe: libkmod lists a module once per matching alias */
			int dup = 0;
			for (size_t i = 0; i < used;) {
				size_t k = strlen(seen + i);
				if (k == n && memcmp(seen + i, name, n) == 0) { dup = 1; break; }
				i += k + 1;
			}
			if (!dup && used + n + 1 < sizeof(seen)) {
				memcpy(seen + used, name, n + 1);
				used += n + 1;
				if (!first) fputc(' ', out);
				fputs(name, out);
				first = 0;
			}
			kmod_module_unref(m);
		}
		kmod_module_unref_list(list);
	}
	fputc('\n', out);
}

int main(int argc, char **argv) {
	int passes = 0;
	int argi = 1;
	if (argc > 2 && strcmp(argv[1], "--bench") == 0) {
		passes = atoi(argv[2]);
		argi = 3;
	}
	if (argi >= argc) {
		fprintf(stderr, "usage: kmod-lookup [--bench N] MODULE_DIR < queries\n");
		return 100;
	}
	const char *no_config[] = { "/nonexistent/hotplugd-no-modprobe.d", NULL };
	struct kmod_ctx *ctx = kmod_new(argv[argi], no_config);
	if (!ctx) { fprintf(stderr, "kmod_new failed\n"); return 111; }
	kmod_load_resources(ctx);

	size_t cap = 1024, n = 0;
	char **qs = malloc(cap * sizeof(char *));
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	while ((len = getline(&line, &lcap, stdin)) >= 0) {
		if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
		if (n == cap) qs = realloc(qs, (cap *= 2) * sizeof(char *));
		qs[n++] = strdup(line);
	}
	if (passes == 0) {
		for (size_t i = 0; i < n; i++) lookup(ctx, qs[i], stdout);
	} else {
		FILE *devnull = fopen("/dev/null", "w");
		for (size_t i = 0; i < n; i++) lookup(ctx, qs[i], devnull); /* warm */
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		for (int p = 0; p < passes; p++)
			for (size_t i = 0; i < n; i++) {
				struct kmod_list *list = NULL;
				if (kmod_module_new_from_lookup(ctx, qs[i], &list) >= 0) kmod_module_unref_list(list);
			}
		clock_gettime(CLOCK_MONOTONIC, &b);
		double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
		printf("ns_per_lookup %.1f\n", ns / ((double)passes * n));
	}
	kmod_unref(ctx);
	return 0;
}
