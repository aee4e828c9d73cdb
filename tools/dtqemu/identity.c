/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Who this VM is, and where the daemon listens: QEMU's own command line
 * (-name, -uuid, -smp, as libvirt writes them too), overridden by the
 * environment:
 *
 *   DIRTYTRACK_SOCKET   the daemon's attach socket (/run/dirtytrackd/attach.sock)
 *   DIRTYTRACK_NAME     the VM's name (default: QEMU's -name guest=, else qemu-PID)
 *   DIRTYTRACK_UUID     the VM's uuid (default: QEMU's -uuid, else a random one
 *                       for this process, so the figures survive a daemon restart)
 *   DIRTYTRACK_DISABLE  1: pass everything through, track nothing
 *   DIRTYTRACK_ZERO_SAMPLE  pages of guest RAM sampled for zero pages every
 *                       2 to 16 s (default 4096, at most 65536; 0: no sampling)
 *   DIRTYTRACK_LOG      stderr, or a file to append the library's messages to
 *                       (default: none at all)
 *   DIRTYTRACK_TEST_HIDE_FROM_QEMU  1: a deliberate bug for the test suite's
 *                       negative control (pages the library harvests are kept
 *                       from QEMU's migration). Never set it on a real VM.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "dtqemu.h"

#define CMDLINE_MAX (256 * 1024)

static int parse_uuid(const char *s, uint8_t out[16])
{
	unsigned n = 0;

	for (; *s && n < 32; s++) {
		if (*s == '-')
			continue;
		if (!isxdigit((unsigned char)*s))
			return -EINVAL;
		int v = isdigit((unsigned char)*s) ? *s - '0' : (tolower((unsigned char)*s) - 'a' + 10);

		if (n % 2 == 0)
			out[n / 2] = (uint8_t)(v << 4);
		else
			out[n / 2] |= (uint8_t)v;
		n++;
	}
	return (n == 32 && !*s) ? 0 : -EINVAL;
}

/* Copy src as a printable name (the protocol wants printable ASCII). */
static void set_name(char dst[DT_NAME_MAX], const char *src, size_t len)
{
	size_t j = 0;

	for (size_t i = 0; i < len && j + 1 < DT_NAME_MAX; i++)
		dst[j++] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '_';
	dst[j] = 0;
}

/*
 * QEMU's option syntax: "a,b=c,d", with ",," a literal comma. The first
 * component may be the implied key (guest= for -name, cpus= for -smp).
 */
static bool opt_get(const char *opts, const char *key, bool implied, char *out, size_t cap)
{
	size_t klen = strlen(key), idx = 0;
	const char *p = opts;

	while (*p) {
		char comp[512];
		size_t n = 0;

		while (*p && !(*p == ',' && p[1] != ',')) {
			if (*p == ',' && p[1] == ',')
				p++;
			if (n + 1 < sizeof(comp))
				comp[n++] = *p;
			p++;
		}
		comp[n] = 0;
		if (*p == ',')
			p++;
		if (strncmp(comp, key, klen) == 0 && comp[klen] == '=') {
			snprintf(out, cap, "%s", comp + klen + 1);
			return true;
		}
		if (idx == 0 && implied && !strchr(comp, '=')) {
			snprintf(out, cap, "%s", comp);
			return true;
		}
		idx++;
	}
	return false;
}

static void from_cmdline(struct dtq_config *cfg)
{
	char *buf = malloc(CMDLINE_MAX), val[512];
	ssize_t len = 0, r;
	int fd;

	if (!buf)
		return;
	fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return;
	}
	while (len < CMDLINE_MAX - 1 && (r = read(fd, buf + len, CMDLINE_MAX - 1 - len)) > 0)
		len += r;
	close(fd);
	buf[len] = 0;
	for (char *a = buf; a < buf + len; a += strlen(a) + 1) {
		char *v = a + strlen(a) + 1;

		if (v >= buf + len)
			break;
		if (!strcmp(a, "-name") || !strcmp(a, "--name")) {
			if (opt_get(v, "guest", true, val, sizeof(val)) && *val)
				set_name(cfg->name, val, strlen(val));
		} else if (!strcmp(a, "-uuid") || !strcmp(a, "--uuid")) {
			if (parse_uuid(v, cfg->uuid) == 0)
				cfg->uuid_given = true;
		} else if (!strcmp(a, "-smp") || !strcmp(a, "--smp")) {
			if (opt_get(v, "cpus", true, val, sizeof(val)))
				cfg->smp = (uint32_t)strtoul(val, NULL, 10);
		}
	}
	free(buf);
}

void dtq_config_load(struct dtq_config *cfg)
{
	const char *e;

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->socket, sizeof(cfg->socket), "%s", DT_ATTACH_SOCKET_DEFAULT);
	snprintf(cfg->name, sizeof(cfg->name), "qemu-%d", (int)getpid());
	from_cmdline(cfg);
	if ((e = getenv("DIRTYTRACK_SOCKET")) && *e)
		snprintf(cfg->socket, sizeof(cfg->socket), "%s", e);
	if ((e = getenv("DIRTYTRACK_NAME")) && *e)
		set_name(cfg->name, e, strlen(e));
	if ((e = getenv("DIRTYTRACK_UUID")) && *e) {
		if (parse_uuid(e, cfg->uuid) == 0)
			cfg->uuid_given = true;
		else
			dtq_log("DIRTYTRACK_UUID=%s is not a uuid: ignored", e);
	}
	if (!cfg->uuid_given) {
		/* Version 4, random: stable for this process's life. */
		if (getrandom(cfg->uuid, sizeof(cfg->uuid), GRND_NONBLOCK) == sizeof(cfg->uuid)) {
			cfg->uuid[6] = (uint8_t)((cfg->uuid[6] & 0x0f) | 0x40);
			cfg->uuid[8] = (uint8_t)((cfg->uuid[8] & 0x3f) | 0x80);
		} else {
			memset(cfg->uuid, 0, sizeof(cfg->uuid));
		}
	}
	cfg->disabled = (e = getenv("DIRTYTRACK_DISABLE")) && !strcmp(e, "1");
	cfg->hide_from_qemu = (e = getenv("DIRTYTRACK_TEST_HIDE_FROM_QEMU")) && !strcmp(e, "1");
	cfg->zero_sample = DTQ_ZERO_SAMPLE_DEFAULT;
	if ((e = getenv("DIRTYTRACK_ZERO_SAMPLE")) && *e) {
		char *end;
		unsigned long n = strtoul(e, &end, 10);

		if (*end || n > DTQ_ZERO_SAMPLE_MAX)
			dtq_log("DIRTYTRACK_ZERO_SAMPLE=%s is not a count from 0 to %u: ignored", e,
				DTQ_ZERO_SAMPLE_MAX);
		else
			cfg->zero_sample = (unsigned)n;
	}
}

/*
 * The VMM's name for HELLO: "qemu-MAJOR.MINOR.MICRO" from QEMU's own
 * qmp_query_version (QEMU exports its symbols for its modules; the QAPI
 * VersionInfo is a VersionTriple pointer, then the package string), so the
 * daemon plans with that version's rules; "qemu" where it is not found.
 */
void dtq_vmm_name(char *buf, size_t cap)
{
	struct version_triple {
		int64_t major, minor, micro;
	};
	struct version_info {
		struct version_triple *qemu;
		char *package;
	};
	struct version_info *(*query)(void **errp);
	void (*release)(struct version_info *v);
	struct version_info *v;

	snprintf(buf, cap, "qemu");
	query = (struct version_info * (*)(void **)) dlsym(RTLD_DEFAULT, "qmp_query_version");
	release = (void (*)(struct version_info *))dlsym(RTLD_DEFAULT, "qapi_free_VersionInfo");
	if (!query || !release)
		return;
	v = query(NULL);
	if (v && v->qemu && v->qemu->major > 0 && v->qemu->major < 100 && v->qemu->minor >= 0 &&
	    v->qemu->minor < 100 && v->qemu->micro >= 0 && v->qemu->micro < 100)
		snprintf(buf, cap, "qemu-%d.%d.%d", (int)v->qemu->major, (int)v->qemu->minor,
			 (int)v->qemu->micro);
	if (v)
		release(v);
}

void dtq_log(const char *fmt, ...)
{
	const char *dest = getenv("DIRTYTRACK_LOG");
	char line[512];
	va_list ap;
	int fd, n;

	if (!dest || !*dest)
		return;
	n = snprintf(line, sizeof(line), "dirtytrack-qemu[%d]: ", (int)getpid());
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (!strcmp(dest, "stderr")) {
		(void)!write(STDERR_FILENO, line, (size_t)n);
		return;
	}
	fd = open(dest, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		(void)!write(fd, line, (size_t)n);
		close(fd);
	}
}
