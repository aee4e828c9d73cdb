/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dtfuzz's driver: options, the workers that run sessions, the checks
 * after each batch (daemon alive, /v1/health, no sanitizer report in its
 * log, the bystander attached and collected) and the report.
 */
#include <errno.h>
#include <getopt.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dtfuzz.h"

struct dtfuzz_stats dtfuzz_stats;
atomic_bool dtfuzz_stop;
static atomic_ullong next_session;
static const uint8_t *bystander_uuid;

struct proc_mem {
	uint64_t rss_kb, hwm_kb;
};

static void help(void)
{
	printf("Usage: dtfuzz --attach SOCKET --api SOCKET --pid PID [OPTION...]\n"
	       "A stateful fuzzer of dirtytrackd's attach protocol, with a bystander VM that\n"
	       "must stay exact.\n"
	       "\n"
	       "  --attach SOCKET     the daemon's attach socket (required)\n"
	       "  --api SOCKET        the daemon's REST socket (required)\n"
	       "  --pid PID           the daemon's pid (required): it must stay alive\n"
	       "  --log FILE          the daemon's log: a sanitizer report there is a crash\n"
	       "  --seed N            PRNG seed (default 1); the same seed runs the same sessions\n"
	       "  --duration SECONDS  run time (default 30)\n"
	       "  --workers N         concurrent sessions (default 8)\n"
	       "  --batch SECONDS     check the daemon this often (default 2)\n"
	       "  --health-timeout S  longest a REST answer may take (default 20)\n"
	       "  --session N         replay session N alone (no bystander)\n"
	       "  --no-bystander      run sessions only\n"
	       "  --verbose           a line per batch\n"
	       "Exit status: 0 no failure, 1 a crash, an unresponsive daemon or an inexact\n"
	       "bystander, 2 bad usage.\n");
}

static int parse_opts(int argc, char **argv, struct dtfuzz_opts *o)
{
	static const struct option longopts[] = {
		{ "attach", required_argument, NULL, 'a' },
		{ "api", required_argument, NULL, 'A' },
		{ "pid", required_argument, NULL, 'p' },
		{ "log", required_argument, NULL, 'l' },
		{ "seed", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 'd' },
		{ "workers", required_argument, NULL, 'w' },
		{ "batch", required_argument, NULL, 'b' },
		{ "health-timeout", required_argument, NULL, 'H' },
		{ "session", required_argument, NULL, 'S' },
		{ "no-bystander", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int c;

	*o = (struct dtfuzz_opts){ .seed = 1, .duration_s = 30, .workers = 8, .batch_s = 2,
				   .health_timeout_s = 20, .only_session = -1 };
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) >= 0) {
		char *end = NULL;

		errno = 0;
		switch (c) {
		case 'a':
			o->attach_sock = optarg;
			break;
		case 'A':
			o->api_sock = optarg;
			break;
		case 'p':
			o->daemon_pid = (int)strtol(optarg, &end, 10);
			break;
		case 'l':
			o->daemon_log = optarg;
			break;
		case 's':
			o->seed = strtoull(optarg, &end, 0);
			break;
		case 'd':
			o->duration_s = strtod(optarg, &end);
			break;
		case 'w':
			o->workers = (unsigned)strtoul(optarg, &end, 10);
			break;
		case 'b':
			o->batch_s = strtod(optarg, &end);
			break;
		case 'H':
			o->health_timeout_s = strtod(optarg, &end);
			break;
		case 'S':
			o->only_session = strtoll(optarg, &end, 10);
			break;
		case 'n':
			o->no_bystander = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			help();
			return 1;
		default:
			return -EINVAL;
		}
		if (end && (*end || errno)) {
			fprintf(stderr, "dtfuzz: bad value '%s'\n", optarg);
			return -EINVAL;
		}
	}
	if (!o->attach_sock || !o->api_sock || o->daemon_pid <= 0 || o->workers < 1 ||
	    o->workers > 256 || o->duration_s < 0 || o->batch_s <= 0) {
		fprintf(stderr, "dtfuzz: --attach, --api and --pid are required (see --help)\n");
		return -EINVAL;
	}
	return 0;
}

static double now_s(void)
{
	return (double)dt_now_us() / 1e6;
}

static void *worker(void *arg)
{
	const struct dtfuzz_opts *o = arg;

	while (!atomic_load(&dtfuzz_stop))
		dtfuzz_session_run(o, atomic_fetch_add(&next_session, 1), bystander_uuid);
	return NULL;
}

/* Alive and not a zombie: /proc/PID/stat's state field. */
static bool daemon_alive(int pid, char *why, size_t len)
{
	char path[64], buf[512], *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f) {
		snprintf(why, len, "daemon pid %d is gone", pid);
		return false;
	}
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	p = p ? strrchr(buf, ')') : NULL;
	if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X') {
		snprintf(why, len, "daemon pid %d is dead (state %c)", pid, p ? p[2] : '?');
		return false;
	}
	return true;
}

static void daemon_mem(int pid, struct proc_mem *m)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long kb;

		if (sscanf(line, "VmRSS: %llu", &kb) == 1 && kb > m->rss_kb)
			m->rss_kb = kb;
		if (sscanf(line, "VmHWM: %llu", &kb) == 1)
			m->hwm_kb = kb;
	}
	fclose(f);
}

/* New lines of the daemon log with a sanitizer report. */
static bool log_clean(const char *log, long *offset, char *why, size_t len)
{
	static const char *const marks[] = { "AddressSanitizer", "LeakSanitizer",
					     "UndefinedBehaviorSanitizer", "runtime error:" };
	char line[1024];
	bool clean = true;
	FILE *f;

	if (!log)
		return true;
	f = fopen(log, "re");
	if (!f)
		return true;
	if (fseek(f, *offset, SEEK_SET) == 0)
		while (clean && fgets(line, sizeof(line), f))
			for (size_t i = 0; i < ARRAY_SIZE(marks); i++)
				if (strstr(line, marks[i])) {
					line[strcspn(line, "\n")] = 0;
					snprintf(why, len, "sanitizer report in the daemon log: %.160s",
						 line);
					clean = false;
				}
	*offset = ftell(f);
	fclose(f);
	return clean;
}

static bool health_ok(const struct dtfuzz_opts *o, char *why, size_t len)
{
	double t0 = now_s();
	long status = 0;
	int r = dtfuzz_http_get(o->api_sock, "/v1/health", o->health_timeout_s, &status, NULL);

	if (r < 0 || status != 200) {
		snprintf(why, len, "GET /v1/health: %s (status %ld, after %.1f s)",
			 r < 0 ? strerror(-r) : "bad status", status, now_s() - t0);
		return false;
	}
	return true;
}

/* The harvest figures of /metrics, as the lead wants them in the note. */
static void print_metrics(const struct dtfuzz_opts *o)
{
	_cleanup_free_ char *body = NULL;
	long status = 0;
	char *save = NULL;

	if (dtfuzz_http_get(o->api_sock, "/metrics", o->health_timeout_s, &status, &body) < 0 ||
	    status != 200)
		return;
	for (char *l = strtok_r(body, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (l[0] != '#' && (strstr(l, "harvest_duration") || strstr(l, "delay") ||
				    strstr(l, "lag") || strstr(l, "slip") || strstr(l, "late")) &&
		    !strstr(l, "{vm="))
			printf("  metrics: %s\n", l);
}

static void run_one(const struct dtfuzz_opts *o)
{
	dtfuzz_session_run(o, (uint64_t)o->only_session, NULL);
	printf("dtfuzz: session %lld of seed %llu: execs=%llu welcomed=%llu errors=%llu acks=%llu "
	       "dropped=%llu\n",
	       (long long)o->only_session, (unsigned long long)o->seed,
	       (unsigned long long)dtfuzz_stats.execs, (unsigned long long)dtfuzz_stats.welcomed,
	       (unsigned long long)dtfuzz_stats.errors, (unsigned long long)dtfuzz_stats.acks,
	       (unsigned long long)dtfuzz_stats.dropped);
}

int main(int argc, char **argv)
{
	struct dtfuzz_opts o;
	struct dtfuzz_bystander *by = NULL;
	struct proc_mem mem = { 0 };
	pthread_t *threads, scribbler;
	char why[256] = "";
	long log_offset = 0;
	bool failed = false, crashed = false, exact = false;
	double start, next_batch;
	uint64_t batches = 0;
	int r;

	r = parse_opts(argc, argv, &o);
	if (r != 0)
		return r > 0 ? 0 : 2;
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!daemon_alive(o.daemon_pid, why, sizeof(why))) {
		fprintf(stderr, "dtfuzz: %s\n", why);
		return 1;
	}
	if (o.daemon_log) { /* only what the daemon logs from now on */
		FILE *f = fopen(o.daemon_log, "re");
		if (f && fseek(f, 0, SEEK_END) == 0)
			log_offset = ftell(f);
		if (f)
			fclose(f);
	}
	pthread_create(&scribbler, NULL, dtfuzz_scribbler, &o.seed);
	if (o.only_session >= 0) {
		run_one(&o);
		atomic_store(&dtfuzz_stop, true);
		pthread_join(scribbler, NULL);
		failed = !daemon_alive(o.daemon_pid, why, sizeof(why)) ||
			 !log_clean(o.daemon_log, &log_offset, why, sizeof(why));
		if (failed)
			printf("dtfuzz: FAIL: %s\n", why);
		return failed;
	}
	if (!o.no_bystander) {
		r = dtfuzz_bystander_start(&o, &by);
		if (r < 0) {
			atomic_store(&dtfuzz_stop, true);
			pthread_join(scribbler, NULL);
			return 1;
		}
		bystander_uuid = dtfuzz_bystander_uuid(by);
	}
	threads = calloc(o.workers, sizeof(*threads));
	for (unsigned i = 0; threads && i < o.workers; i++)
		pthread_create(&threads[i], NULL, worker, &o);
	start = now_s();
	next_batch = start + o.batch_s;
	printf("dtfuzz: seed %llu, %u workers, %.0f s, daemon pid %d\n",
	       (unsigned long long)o.seed, o.workers, o.duration_s, o.daemon_pid);
	fflush(stdout);
	while (!failed) {
		double t = now_s();
		uint64_t first = atomic_load(&next_session);

		if (t < next_batch) {
			usleep((useconds_t)((next_batch - t) * 1e6));
			continue;
		}
		next_batch += o.batch_s;
		batches++;
		daemon_mem(o.daemon_pid, &mem);
		if (!daemon_alive(o.daemon_pid, why, sizeof(why)) ||
		    !log_clean(o.daemon_log, &log_offset, why, sizeof(why))) {
			failed = crashed = true;
		} else if (!health_ok(&o, why, sizeof(why))) {
			/* A dead or stuck loop; a crash if it died meanwhile. */
			failed = true;
			crashed = !daemon_alive(o.daemon_pid, why + strlen(why),
						sizeof(why) - strlen(why));
		} else if (by && dtfuzz_bystander_check(by, why, sizeof(why)) < 0) {
			failed = true;
		}
		if (failed)
			fprintf(stderr, "dtfuzz: FAIL after %.1f s (sessions up to %llu of seed %llu "
					"were running; replay one with --seed %llu --session N): %s\n",
				now_s() - start, (unsigned long long)atomic_load(&next_session),
				(unsigned long long)o.seed, (unsigned long long)o.seed, why);
		if (o.verbose || batches % 30 == 0)
			printf("dtfuzz: %.0f s: execs %llu, sequences %llu (+%llu), daemon RSS %llu kB\n",
			       now_s() - start, (unsigned long long)dtfuzz_stats.execs,
			       (unsigned long long)dtfuzz_stats.sequences,
			       (unsigned long long)(atomic_load(&next_session) - first),
			       (unsigned long long)mem.rss_kb);
		fflush(stdout);
		if (now_s() - start >= o.duration_s)
			break;
	}
	atomic_store(&dtfuzz_stop, true);
	for (unsigned i = 0; threads && i < o.workers; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	pthread_join(scribbler, NULL);
	if (!failed) {
		/* The sessions are gone: the daemon must still be whole. */
		if (!daemon_alive(o.daemon_pid, why, sizeof(why)) ||
		    !log_clean(o.daemon_log, &log_offset, why, sizeof(why)))
			failed = crashed = true;
		else if (!health_ok(&o, why, sizeof(why)))
			failed = true;
		else if (by && dtfuzz_bystander_finish(by, why, sizeof(why)) < 0)
			failed = true;
		else
			exact = by != NULL;
		if (failed)
			fprintf(stderr, "dtfuzz: FAIL at the end: %s\n", why);
	}
	daemon_mem(o.daemon_pid, &mem);
	printf("dtfuzz: seed %llu: %.0f s, execs %llu, sequences %llu (welcomed %llu, refused %llu, "
	       "dropped by the daemon %llu), errors %llu, acks %llu, raw frames %llu, half closes "
	       "%llu, scribbles %llu\n",
	       (unsigned long long)o.seed, now_s() - start, (unsigned long long)dtfuzz_stats.execs,
	       (unsigned long long)dtfuzz_stats.sequences, (unsigned long long)dtfuzz_stats.welcomed,
	       (unsigned long long)dtfuzz_stats.refused, (unsigned long long)dtfuzz_stats.dropped,
	       (unsigned long long)dtfuzz_stats.errors, (unsigned long long)dtfuzz_stats.acks,
	       (unsigned long long)dtfuzz_stats.raw_frames,
	       (unsigned long long)dtfuzz_stats.half_closes,
	       (unsigned long long)dtfuzz_stats.scribbles);
	if (by) {
		uint64_t truth, got, epochs;

		dtfuzz_bystander_figures(by, &truth, &got, &epochs);
		printf("dtfuzz: bystander: %s (truth %llu pages, daemon %llu, over %llu epochs)\n",
		       exact ? "exact" : "NOT exact", (unsigned long long)truth,
		       (unsigned long long)got, (unsigned long long)epochs);
	}
	printf("dtfuzz: crashes %d; daemon peak RSS %llu kB (VmHWM %llu kB)\n", crashed ? 1 : 0,
	       (unsigned long long)mem.rss_kb, (unsigned long long)mem.hwm_kb);
	if (!crashed)
		print_metrics(&o);
	printf("dtfuzz: %s\n", failed ? "FAIL" : "PASS");
	dtfuzz_bystander_free(by);
	curl_global_cleanup();
	return failed ? 1 : 0;
}
