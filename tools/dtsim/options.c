/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dtsim's command line. Every bad option is one line naming it, and exit 2. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "dt_util.h"
#include "dtsim.h"

static const char *const pattern_names[_DTSIM_PATTERN_MAX] = {
    [DTSIM_UNIFORM] = "uniform", [DTSIM_SEQUENTIAL] = "sequential", [DTSIM_HOTCOLD] = "hotcold",
    [DTSIM_ZIPF] = "zipf",	 [DTSIM_BURSTY] = "bursty",
};

const char *dtsim_pattern_name(enum dtsim_pattern_kind p)
{
	return p < _DTSIM_PATTERN_MAX ? pattern_names[p] : "?";
}

static void help(void)
{
	printf(
	    "Usage: dtsim --connect SOCKET --name NAME --memory SIZE --rate WRITES_PER_SECOND\n"
	    "             [OPTION...]\n"
	    "A simulated VMM: attaches a simulated VM to dirtytrackd, dirties its pages\n"
	    "with KVM's dirty-ring and dirty-bitmap semantics, and writes the ground truth.\n"
	    "\n"
	    "  --connect SOCKET      dirtytrackd's attach socket (required)\n"
	    "  --name NAME           VM name (required)\n"
	    "  --uuid UUID           VM UUID (default: random; kept across reconnects)\n"
	    "  --memory SIZE         guest memory, e.g. 64M, 1G (required; max 1T). Above\n"
	    "                        4 GiB the layout is a PC's: RAM to 3 GiB, the rest from\n"
	    "                        4 GiB in slots of its own\n"
	    "  --page-size SIZE      4096 (default) .. 65536, a power of two\n"
	    "  --vcpus N             vCPUs (default 1)\n"
	    "  --mode MODE           ring (default) | bitmap | ring+bitmap\n"
	    "  --pattern PATTERN     uniform (default) | sequential | hotcold | zipf | bursty\n"
	    "  --rate N              writes per second, all vCPUs (and DMA) together (required)\n"
	    "  --wss PAGES           working set: pages 0..PAGES-1 of guest memory in\n"
	    "                        guest-physical order (default: all of memory)\n"
	    "  --duration TIME       run time, e.g. 10, 10s, 500ms (default: until "
	    "SIGINT/SIGTERM)\n"
	    "  --seed N              PRNG seed (default 1)\n"
	    "  --truth FILE          write the ground truth as JSON at exit\n"
	    "  --slots N             memslots (default 1)\n"
	    "  --ring-entries N      entries per dirty ring, power of two 128..65536 (default "
	    "4096)\n"
	    "  --dma-fraction F      ring+bitmap: share of writes made by a DMA device straight\n"
	    "                        into the shared bitmap (default 0.1)\n"
	    "  --trace FILE          binary write trace: {u64 monotonic_us, u64 gpa_page} LE\n"
	    "  --dirty-limit N       throttle each vCPU to at most N writes per second\n"
	    "  --vcpu-rates R0,R1,.. relative share of the rate per vCPU (default equal)\n"
	    "  --reconnect           on daemon loss keep running and reattach every second\n"
	    "                        (default: exit 1)\n"
	    "  --help                this text\n"
	    "\n"
	    "Exit status: 0 done, 1 daemon refusal, loss or runtime error, 2 bad option.\n");
}

static int bad(const char *opt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(const char *opt, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "dtsim: %s: ", opt);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -EINVAL;
}

/* A finite non-negative decimal number ("1000", "2.5e6"), within [min, max]. */
static int parse_double(const char *s, double min, double max, double *ret)
{
	char *end;
	double v;

	if (!s || !*s || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v))
		return -EINVAL;
	/* no hex floats, inf or nan spelt out */
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p) && !strchr(".eE+-", *p))
			return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

static int parse_shares(const char *s, uint32_t vcpus, double **ret)
{
	_cleanup_free_ char *copy = strdup(s);
	_cleanup_free_ double *v = NULL;
	char *save = NULL, *tok;
	uint32_t n = 0;
	double sum = 0;

	if (!copy)
		return -ENOMEM;
	v = calloc(vcpus, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (!*s || s[strlen(s) - 1] == ',' || *s == ',' || strstr(s, ",,"))
		return bad("--vcpu-rates", "empty entry in '%s'", s);
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n == vcpus)
			return bad("--vcpu-rates", "more than --vcpus %u values in '%s'", vcpus, s);
		if (parse_double(tok, 0, 1e12, &v[n]) < 0)
			return bad("--vcpu-rates", "'%s' is not a non-negative number", tok);
		sum += v[n++];
	}
	if (n != vcpus)
		return bad("--vcpu-rates", "%u values given, --vcpus is %u", n, vcpus);
	if (!(sum > 0))
		return bad("--vcpu-rates", "the shares add up to zero");
	for (uint32_t i = 0; i < n; i++)
		v[i] /= sum;
	*ret = TAKE_PTR(v);
	return 0;
}

enum {
	OPT_CONNECT = 256,
	OPT_NAME,
	OPT_UUID,
	OPT_MEMORY,
	OPT_PAGE_SIZE,
	OPT_VCPUS,
	OPT_MODE,
	OPT_PATTERN,
	OPT_RATE,
	OPT_WSS,
	OPT_DURATION,
	OPT_SEED,
	OPT_TRUTH,
	OPT_SLOTS,
	OPT_RING_ENTRIES,
	OPT_DMA_FRACTION,
	OPT_TRACE,
	OPT_DIRTY_LIMIT,
	OPT_VCPU_RATES,
	OPT_RECONNECT,
	OPT_HELP,
};

static const struct option long_options[] = {
    {"connect", required_argument, NULL, OPT_CONNECT},
    {"name", required_argument, NULL, OPT_NAME},
    {"uuid", required_argument, NULL, OPT_UUID},
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"page-size", required_argument, NULL, OPT_PAGE_SIZE},
    {"vcpus", required_argument, NULL, OPT_VCPUS},
    {"mode", required_argument, NULL, OPT_MODE},
    {"pattern", required_argument, NULL, OPT_PATTERN},
    {"rate", required_argument, NULL, OPT_RATE},
    {"wss", required_argument, NULL, OPT_WSS},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"seed", required_argument, NULL, OPT_SEED},
    {"truth", required_argument, NULL, OPT_TRUTH},
    {"slots", required_argument, NULL, OPT_SLOTS},
    {"ring-entries", required_argument, NULL, OPT_RING_ENTRIES},
    {"dma-fraction", required_argument, NULL, OPT_DMA_FRACTION},
    {"trace", required_argument, NULL, OPT_TRACE},
    {"dirty-limit", required_argument, NULL, OPT_DIRTY_LIMIT},
    {"vcpu-rates", required_argument, NULL, OPT_VCPU_RATES},
    {"reconnect", no_argument, NULL, OPT_RECONNECT},
    {"help", no_argument, NULL, 'h'},
    {}};

static int parse_one(struct dtsim_opts *o, int c, const char *arg, const char **vcpu_rates,
		     bool *dma_given, bool *wss_given)
{
	uint64_t v;

	switch (c) {
	case OPT_CONNECT:
		if (!*arg || strlen(arg) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			return bad("--connect", "socket path must be 1..%zu bytes",
				   sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		o->connect = arg;
		return 0;
	case OPT_NAME:
		if (!*arg || !dt_string_is_printable(arg, DT_NAME_MAX))
			return bad("--name", "must be 1..%d printable ASCII characters",
				   DT_NAME_MAX - 1);
		o->name = arg;
		return 0;
	case OPT_UUID:
		if (dt_uuid_parse(arg, o->uuid) < 0)
			return bad("--uuid",
				   "'%s' is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
				   arg);
		o->have_uuid = !dt_uuid_is_null(o->uuid);
		return 0;
	case OPT_MEMORY:
		if (dt_parse_size(arg, &o->memory_bytes) < 0 || o->memory_bytes == 0)
			return bad("--memory", "'%s' is not a size (e.g. 64M, 1G)", arg);
		if (o->memory_bytes > DTSIM_MAX_MEMORY)
			return bad("--memory", "'%s' is more than the 1 TiB dtsim simulates", arg);
		return 0;
	case OPT_PAGE_SIZE:
		if (dt_parse_size(arg, &v) < 0 || v < 4096 || v > 65536 || (v & (v - 1)))
			return bad("--page-size", "'%s' is not a power of two in 4096..65536", arg);
		o->page_size = (uint32_t)v;
		return 0;
	case OPT_VCPUS:
		if (dt_parse_u64(arg, 1, DTSIM_MAX_VCPUS, &v) < 0)
			return bad("--vcpus", "'%s' is not a number in 1..%d", arg,
				   DTSIM_MAX_VCPUS);
		o->vcpus = (uint32_t)v;
		return 0;
	case OPT_MODE:
		if (!strcmp(arg, "ring"))
			o->mode = DT_MODE_RING;
		else if (!strcmp(arg, "bitmap"))
			o->mode = DT_MODE_BITMAP;
		else if (!strcmp(arg, "ring+bitmap"))
			o->mode = DT_MODE_RING_BITMAP;
		else
			return bad("--mode", "'%s' is not ring, bitmap or ring+bitmap", arg);
		return 0;
	case OPT_PATTERN:
		for (int p = 0; p < _DTSIM_PATTERN_MAX; p++)
			if (!strcmp(arg, pattern_names[p])) {
				o->pattern = (enum dtsim_pattern_kind)p;
				return 0;
			}
		return bad("--pattern", "'%s' is not uniform, sequential, hotcold, zipf or bursty",
			   arg);
	case OPT_RATE:
		if (parse_double(arg, 0, DTSIM_MAX_RATE, &o->rate) < 0)
			return bad("--rate", "'%s' is not a number of writes per second in 0..%g",
				   arg, DTSIM_MAX_RATE);
		return 0;
	case OPT_WSS:
		if (dt_parse_u64(arg, 1, UINT64_MAX, &o->wss) < 0)
			return bad("--wss", "'%s' is not a number of pages >= 1", arg);
		*wss_given = true;
		return 0;
	case OPT_DURATION:
		if (dt_parse_duration(arg, &o->duration_us) < 0 || o->duration_us == 0)
			return bad("--duration",
				   "'%s' is not a positive duration (e.g. 10, 10s, 500ms)", arg);
		return 0;
	case OPT_SEED:
		if (dt_parse_u64(arg, 0, UINT64_MAX, &o->seed) < 0)
			return bad("--seed", "'%s' is not an unsigned 64-bit number", arg);
		return 0;
	case OPT_TRUTH:
		if (!*arg)
			return bad("--truth", "empty file name");
		o->truth_path = arg;
		return 0;
	case OPT_SLOTS:
		if (dt_parse_u64(arg, 1, DTSIM_MAX_SLOTS, &v) < 0)
			return bad("--slots", "'%s' is not a number in 1..%d", arg,
				   DTSIM_MAX_SLOTS);
		o->slots = (uint32_t)v;
		return 0;
	case OPT_RING_ENTRIES:
		/*
		 * Soft-full is at entries - 64, so 64 entries could never hold
		 * one; KVM itself wants at least a page of entries (256).
		 */
		if (dt_parse_u64(arg, 2 * DTSIM_RING_RSVD, 65536, &v) < 0 || (v & (v - 1)))
			return bad("--ring-entries", "'%s' is not a power of two in %d..65536", arg,
				   2 * DTSIM_RING_RSVD);
		o->ring_entries = (uint32_t)v;
		return 0;
	case OPT_DMA_FRACTION:
		if (parse_double(arg, 0, 1, &o->dma_fraction) < 0)
			return bad("--dma-fraction", "'%s' is not a fraction in 0..1", arg);
		*dma_given = true;
		return 0;
	case OPT_TRACE:
		if (!*arg)
			return bad("--trace", "empty file name");
		o->trace_path = arg;
		return 0;
	case OPT_DIRTY_LIMIT:
		if (parse_double(arg, 0, DTSIM_MAX_RATE, &o->dirty_limit) < 0 ||
		    !(o->dirty_limit > 0))
			return bad("--dirty-limit",
				   "'%s' is not a positive number of writes per second", arg);
		return 0;
	case OPT_VCPU_RATES:
		*vcpu_rates = arg;
		return 0;
	case OPT_RECONNECT:
		o->reconnect = true;
		return 0;
	}
	return -EINVAL;
}

int dtsim_opts_parse(int argc, char **argv, struct dtsim_opts *o)
{
	const char *vcpu_rates = NULL;
	bool dma_given = false, wss_given = false;
	uint64_t pages;
	int c, r;

	*o = (struct dtsim_opts){
	    .page_size = 4096,
	    .vcpus = 1,
	    .mode = DT_MODE_RING,
	    .pattern = DTSIM_UNIFORM,
	    .rate = -1,
	    .seed = 1,
	    .slots = 1,
	    .ring_entries = 4096,
	    .dma_fraction = 0.1,
	};

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
		const char *name = argv[optind - 1];

		if (c == 'h') {
			help();
			return 1;
		}
		if (c == ':')
			return bad(name, "needs a value");
		if (c == '?') {
			/* for "--foo=bar" name the option, not the value */
			if (optopt && optopt < 256)
				fprintf(stderr, "dtsim: -%c: unknown option (see --help)\n",
					optopt);
			else
				fprintf(stderr, "dtsim: %s: unknown option (see --help)\n", name);
			return -EINVAL;
		}
		r = parse_one(o, c, optarg, &vcpu_rates, &dma_given, &wss_given);
		if (r < 0)
			return r;
	}
	if (optind < argc)
		return bad(argv[optind], "unexpected argument (options start with --)");

	if (!o->connect)
		return bad("--connect", "missing: the daemon's attach socket is required");
	if (!o->name)
		return bad("--name", "missing: a VM name is required");
	if (!o->memory_bytes)
		return bad("--memory", "missing: the guest memory size is required");
	if (o->rate < 0)
		return bad("--rate", "missing: the write rate is required");
	if (o->memory_bytes % o->page_size)
		return bad("--memory", "%" PRIu64 " bytes is not a multiple of --page-size %u",
			   o->memory_bytes, o->page_size);
	pages = o->memory_bytes / o->page_size;
	if (!wss_given)
		o->wss = pages;
	if (o->wss > pages)
		return bad("--wss",
			   "%" PRIu64 " pages is more than the %" PRIu64 " pages of --memory",
			   o->wss, pages);
	if (o->slots > pages)
		return bad("--slots", "%u slots do not fit in %" PRIu64 " pages", o->slots, pages);
	if (o->mode != DT_MODE_RING_BITMAP) {
		if (dma_given && o->dma_fraction > 0)
			return bad("--dma-fraction", "needs --mode ring+bitmap");
		o->dma_fraction = 0;
	}
	if (vcpu_rates) {
		r = parse_shares(vcpu_rates, o->vcpus, &o->vcpu_shares);
		if (r < 0)
			return r == -ENOMEM ? bad("--vcpu-rates", "out of memory") : r;
	}
	return 0;
}

void dtsim_opts_done(struct dtsim_opts *o)
{
	free(o->vcpu_shares);
	o->vcpu_shares = NULL;
}
