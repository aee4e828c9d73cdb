/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dtvm: the reference KVM VMM (options and the main loop). The main thread
 * runs the libdirtytrack dispatch loop (or the self-harvest timer) while
 * the vCPU threads run the guest.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include "dtvm.h"

static volatile sig_atomic_t got_signal;

void dtvm_die(const char *fmt, ...)
{
	va_list ap;

	fputs("dtvm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_FAILURE);
}

void dtvm_log(const struct dtvm *vm, const char *fmt, ...)
{
	va_list ap;

	if (!vm->o.verbose)
		return;
	fprintf(stderr, "dtvm[%.3f]: ", vm->start_us ? (dt_now_us() - vm->start_us) / 1e6 : 0.0);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *f)
{
	fputs("Usage: dtvm [--connect SOCKET | --self-harvest INTERVAL] [options]\n"
	      "  --connect SOCKET        attach to dirtytrackd's attach socket\n"
	      "  --name NAME --uuid UUID VM identity (default dtvm-PID, none)\n"
	      "  --memory SIZE           guest RAM (default 256M; >= 4M gives a slot above and\n"
	      "                          one below 4 GiB)\n"
	      "  --vcpus N               vCPUs, one thread each (default 1)\n"
	      "  --mode ring|bitmap|ring+bitmap\n"
	      "  --pattern uniform|sequential|hotcold|zipf\n"
	      "  --rate N|max            guest writes per second over all vCPUs (default 10000)\n"
	      "  --wss PAGES             working set, partitioned between vCPUs (default RAM/4)\n"
	      "  --duration TIME         e.g. 10, 2.5s, 500ms (default 10s)\n"
	      "  --seed N                workload seed (default 1)\n"
	      "  --truth FILE            ground truth JSON; --truth-pages adds every batch\n"
	      "  --trace FILE            {u64 monotonic_us, u64 gpa_page} LE per write\n"
	      "  --hugepages off|thp|hugetlb   backing of guest RAM (default off)\n"
	      "  --ring-entries N        dirty ring size (power of two, KVM minimum 256)\n"
	      "  --batch N               pages per guest run (ring modes: at most 64)\n"
	      "  --self-harvest TIME     no daemon: harvest our own logs and verify them\n"
	      "  --no-tracking           dirty logging off (benchmark baseline)\n"
	      "  --reconnect             on daemon loss keep running, reattach when it returns\n"
	      "  --dma-fraction F        bitmap modes: fraction of writes done by the VMM\n"
	      "  --verify                check every stamp the guest wrote\n"
	      "  -v, --verbose\n"
	      "Exit status 77: /dev/kvm (or the requested memory backing) is not usable.\n",
	      f);
}

static int parse_enum(const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (names[i] && !strcmp(s, names[i]))
			return i;
	return -EINVAL;
}

static void parse_opts(int argc, char **argv, struct dtvm_opts *o)
{
	enum {
		O_CONNECT = 256,
		O_NAME,
		O_UUID,
		O_MEMORY,
		O_VCPUS,
		O_MODE,
		O_PATTERN,
		O_RATE,
		O_WSS,
		O_DURATION,
		O_SEED,
		O_TRUTH,
		O_TRUTH_PAGES,
		O_TRACE,
		O_HUGEPAGES,
		O_RING_ENTRIES,
		O_BATCH,
		O_SELF_HARVEST,
		O_NO_TRACKING,
		O_RECONNECT,
		O_DMA,
		O_VERIFY,
	};
	static const struct option opts[] = {
		{ "connect", required_argument, NULL, O_CONNECT },
		{ "name", required_argument, NULL, O_NAME },
		{ "uuid", required_argument, NULL, O_UUID },
		{ "memory", required_argument, NULL, O_MEMORY },
		{ "vcpus", required_argument, NULL, O_VCPUS },
		{ "mode", required_argument, NULL, O_MODE },
		{ "pattern", required_argument, NULL, O_PATTERN },
		{ "rate", required_argument, NULL, O_RATE },
		{ "wss", required_argument, NULL, O_WSS },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "seed", required_argument, NULL, O_SEED },
		{ "truth", required_argument, NULL, O_TRUTH },
		{ "truth-pages", no_argument, NULL, O_TRUTH_PAGES },
		{ "trace", required_argument, NULL, O_TRACE },
		{ "hugepages", required_argument, NULL, O_HUGEPAGES },
		{ "ring-entries", required_argument, NULL, O_RING_ENTRIES },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "self-harvest", required_argument, NULL, O_SELF_HARVEST },
		{ "no-tracking", no_argument, NULL, O_NO_TRACKING },
		{ "reconnect", no_argument, NULL, O_RECONNECT },
		{ "dma-fraction", required_argument, NULL, O_DMA },
		{ "verify", no_argument, NULL, O_VERIFY },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	static const char *const modes[] = { [DT_MODE_RING] = "ring",
					     [DT_MODE_BITMAP] = "bitmap",
					     [DT_MODE_RING_BITMAP] = "ring+bitmap" };
	static const char *const patterns[] = { "uniform", "sequential", "hotcold", "zipf" };
	static const char *const hp[] = { "off", "thp", "hugetlb" };
	static char default_name[32];
	bool have_wss = false;
	uint64_t x;
	char *end;
	int c, r = 0;

	*o = (struct dtvm_opts){
		.memory = 256ull << 20,
		.vcpus = 1,
		.mode = DT_MODE_RING,
		.pattern = DTVM_PAT_UNIFORM,
		.rate = 10000,
		.duration_us = 10000000,
		.seed = 1,
	};
	snprintf(default_name, sizeof(default_name), "dtvm-%d", (int)getpid());
	o->name = default_name;

	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) >= 0) {
		switch (c) {
		case O_CONNECT:
			o->connect = optarg;
			break;
		case O_NAME:
			o->name = optarg;
			if (!*optarg || strlen(optarg) >= DT_NAME_MAX ||
			    !dt_string_is_printable(optarg, DT_NAME_MAX))
				r = -EINVAL;
			break;
		case O_UUID:
			r = dt_uuid_parse(optarg, o->uuid);
			break;
		case O_MEMORY:
			r = dt_parse_size(optarg, &o->memory);
			if (!r && (o->memory < DTVM_HUGE_SIZE || o->memory > (64ull << 30)))
				r = -ERANGE;
			break;
		case O_VCPUS:
			r = dt_parse_u64(optarg, 1, DTVM_MAX_VCPUS, &x);
			o->vcpus = x;
			break;
		case O_MODE:
			r = parse_enum(optarg, modes, ARRAY_SIZE(modes));
			if (r > 0)
				o->mode = r;
			break;
		case O_PATTERN:
			r = parse_enum(optarg, patterns, ARRAY_SIZE(patterns));
			if (r >= 0)
				o->pattern = r;
			break;
		case O_RATE:
			if (!strcmp(optarg, "max"))
				o->rate = 0;
			else
				r = dt_parse_u64(optarg, 0, 1000000000, &o->rate);
			break;
		case O_WSS:
			r = dt_parse_u64(optarg, 1, UINT32_MAX, &o->wss);
			have_wss = true;
			break;
		case O_DURATION:
			r = dt_parse_duration(optarg, &o->duration_us);
			if (!r && (o->duration_us == 0 || o->duration_us > 86400ull * 1000000))
				r = -ERANGE;
			break;
		case O_SEED:
			r = dt_parse_u64(optarg, 0, UINT64_MAX, &o->seed);
			break;
		case O_TRUTH:
			o->truth = optarg;
			break;
		case O_TRUTH_PAGES:
			o->truth_pages = true;
			break;
		case O_TRACE:
			o->trace = optarg;
			break;
		case O_HUGEPAGES:
			r = parse_enum(optarg, hp, ARRAY_SIZE(hp));
			if (r >= 0)
				o->hugepages = r;
			break;
		case O_RING_ENTRIES:
			r = dt_parse_u64(optarg, 1, 65536, &x);
			o->ring_entries = x;
			break;
		case O_BATCH:
			r = dt_parse_u64(optarg, 1, DTVM_CMD_MAX, &x);
			o->batch = x;
			break;
		case O_SELF_HARVEST:
			r = dt_parse_duration(optarg, &o->self_harvest_us);
			if (!r && o->self_harvest_us < 1000)
				r = -ERANGE;
			break;
		case O_NO_TRACKING:
			o->no_tracking = true;
			break;
		case O_RECONNECT:
			o->reconnect = true;
			break;
		case O_DMA:
			errno = 0;
			o->dma_fraction = strtod(optarg, &end);
			if (errno || *end || !(o->dma_fraction >= 0 && o->dma_fraction <= 1))
				r = -EINVAL;
			break;
		case O_VERIFY:
			o->verify = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_SUCCESS);
		default:
			usage(stderr);
			exit(2);
		}
		if (r < 0) {
			fprintf(stderr, "dtvm: invalid --%s '%s': %s\n", opts[c - O_CONNECT].name,
				optarg, strerror(-r));
			exit(2);
		}
	}
	if (optind < argc) {
		usage(stderr);
		exit(2);
	}
	if (o->connect && o->self_harvest_us) {
		fprintf(stderr, "dtvm: --connect and --self-harvest exclude each other\n");
		exit(2);
	}
	if (o->dma_fraction > 0 && o->mode == DT_MODE_RING) {
		fprintf(stderr, "dtvm: --dma-fraction needs a shared bitmap (bitmap modes)\n");
		exit(2);
	}
	if (o->batch > DTVM_RING_BATCH_MAX && o->mode != DT_MODE_BITMAP && !o->no_tracking) {
		fprintf(stderr, "dtvm: --batch %u: ring modes write at most %u pages per guest run "
				"(more can overflow the ring on this KVM)\n",
			o->batch, DTVM_RING_BATCH_MAX);
		exit(2);
	}
	if (!have_wss)
		o->wss = o->memory / DTVM_PAGE_SIZE / 4;
}

static void on_signal(int sig)
{
	got_signal = sig;
}

static int create_shared_bitmaps(struct dtvm *vm)
{
	if (vm->o.no_tracking || vm->o.mode == DT_MODE_RING)
		return 0;
	for (unsigned i = 0; i < vm->nslots; i++) {
		int r = dt_shared_bitmap_new(vm->slots[i].pages, &vm->slots[i].shared);

		if (r < 0)
			return r;
	}
	return 0;
}

static void teardown(struct dtvm *vm)
{
	for (uint32_t i = 0; vm->vcpus && i < vm->o.vcpus; i++) {
		struct dtvm_vcpu *v = &vm->vcpus[i];

		free(v->written);
		free(v->harvested);
		free(v->rec.v);
		if (v->ring)
			munmap(v->ring, vm->ring_entries * sizeof(struct kvm_dirty_gfn));
		if (v->run)
			munmap(v->run, v->run_size);
		if (v->fd >= 0)
			close(v->fd);
	}
	free(vm->vcpus);
	free(vm->zipf_cdf);
	free(vm->page_second);
	free(vm->per_second);
	free(vm->dma_written);
	free(vm->bm_harvested);
	dtvm_memory_teardown(vm);
	close(vm->vm_fd);
	close(vm->kvm_fd);
}

static void run(struct dtvm *vm)
{
	uint64_t next_harvest = vm->start_us + vm->o.self_harvest_us, next_connect = 0;
	bool stopped = false;

	while (__atomic_load_n(&vm->running, __ATOMIC_ACQUIRE) > 0) {
		uint64_t now = dt_now_us(), wake = now + 100000;
		struct pollfd p = { .fd = -1, .events = POLLIN };
		int r;

		if (!stopped && (now >= vm->end_us || got_signal)) {
			dtvm_vcpus_stop(vm);
			stopped = true;
		}
		if (vm->o.self_harvest_us) {
			if (now >= next_harvest) {
				dtvm_dirty_self_harvest(vm, true);
				next_harvest += vm->o.self_harvest_us;
				if (next_harvest < now)
					next_harvest = now + vm->o.self_harvest_us;
			}
			wake = DT_MIN(wake, next_harvest);
		}
		if (!stopped)
			wake = DT_MIN(wake, vm->end_us);
		if (vm->o.connect && !vm->client && vm->o.reconnect && !stopped &&
		    now >= next_connect) {
			if (dtvm_attach(vm) < 0)
				next_connect = now + 1000000;
		}
		if (vm->client) {
			r = dtvm_attach_poll(vm);
			if (r < 0)
				dtvm_attach_lost(vm, r);
		}
		if (vm->client)
			p.fd = dt_client_fd(vm->client);
		r = poll(&p, 1, wake > now ? (int)((wake - now + 999) / 1000) : 0);
		if (r > 0 && vm->client) {
			r = dt_client_dispatch(vm->client);
			if (r < 0)
				dtvm_attach_lost(vm, r);
			else if (vm->detached_by_daemon)
				dtvm_attach_lost(vm, 0);
		}
	}
}

int main(int argc, char **argv)
{
	struct dtvm vm = {
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER,
		.trace_lock = PTHREAD_MUTEX_INITIALIZER,
		.kvm_fd = -1,
		.vm_fd = -1,
		.ram_fd = -1,
	};
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t writes = 0, mismatches = 0, elapsed;
	int r;

	parse_opts(argc, argv, &vm.o);

	r = __kvm_open(&vm.kvm_fd, &vm.vm_fd);
	if (r < 0) {
		fprintf(stderr, "dtvm: /dev/kvm is not usable here: %s; skipping\n", strerror(-r));
		return DTVM_EXIT_SKIP;
	}
	dtvm_dirty_setup_vm(&vm);
	r = dtvm_memory_setup(&vm);
	if (r < 0) {
		if (vm.o.hugepages == DTVM_HP_HUGETLB) {
			fprintf(stderr,
				"dtvm: --hugepages hugetlb: cannot get %llu MiB of 2 MiB huge pages "
				"(%s); see /proc/sys/vm/nr_hugepages; skipping\n",
				(unsigned long long)(vm.o.memory >> 20), strerror(-r));
			return DTVM_EXIT_SKIP;
		}
		dtvm_die("guest memory: %s", strerror(-r));
	}
	r = dtvm_vcpus_create(&vm);
	if (r < 0)
		dtvm_die("creating vCPUs: %s", strerror(-r));
	r = dtvm_workload_init(&vm);
	if (r < 0)
		dtvm_die("--wss %llu: must be between --vcpus and the RAM's %llu pages%s",
			 (unsigned long long)vm.o.wss, (unsigned long long)vm.data_pages,
			 r == -E2BIG ? " (zipf: at most 16M pages per vCPU)" : "");
	r = create_shared_bitmaps(&vm);
	if (r < 0)
		dtvm_die("shared bitmaps: %s", strerror(-r));
	r = dtvm_truth_init(&vm);
	if (r < 0)
		dtvm_die("truth: %s", strerror(-r));

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (vm.o.connect) {
		r = dtvm_attach(&vm);
		if (r < 0) {
			if (!vm.o.reconnect)
				dtvm_die("cannot attach to %s: %s", vm.o.connect, strerror(-r));
			fprintf(stderr, "dtvm: cannot attach to %s (%s): running, retrying\n",
				vm.o.connect, strerror(-r));
			dtvm_memory_set_logging(&vm, false);
		}
	}
	dtvm_memory_describe(&vm);

	vm.start_us = dt_now_us();
	vm.end_us = vm.start_us + vm.o.duration_us;
	r = dtvm_vcpus_start(&vm);
	if (r < 0)
		dtvm_die("starting vCPU threads: %s", strerror(-r));
	run(&vm);
	dtvm_vcpus_join(&vm);
	vm.end_us = DT_MIN(dt_now_us(), vm.end_us);
	dtvm_memory_describe(&vm);

	if (vm.o.self_harvest_us) {
		dtvm_dirty_self_harvest(&vm, true);
		mismatches = dtvm_dirty_verify(&vm);
	}
	dtvm_detach(&vm);

	r = dtvm_truth_write(&vm);
	if (r < 0)
		dtvm_die("writing %s: %s", vm.o.truth, strerror(-r));
	if (vm.trace && fclose(vm.trace) != 0)
		dtvm_die("writing %s: %s", vm.o.trace, strerror(errno));

	elapsed = vm.end_us - vm.start_us;
	for (uint32_t i = 0; i < vm.o.vcpus; i++)
		writes += vm.vcpus[i].writes;
	fprintf(stderr,
		"dtvm: %s%s, %u vCPU(s), %.2f s: %llu guest writes (%.0f/s, %.0f/s per vCPU), "
		"ring-full %llu, resets %llu, self-harvests %llu (%llu pages)",
		vm.o.no_tracking ? "tracking off, " : "", dt_mode_name(vm.o.mode), vm.o.vcpus,
		elapsed / 1e6, (unsigned long long)writes, elapsed ? writes * 1e6 / elapsed : 0.0,
		elapsed ? writes * 1e6 / elapsed / vm.o.vcpus : 0.0,
		(unsigned long long)vm.ring_full_total, (unsigned long long)vm.resets,
		(unsigned long long)vm.harvest_count, (unsigned long long)vm.harvest_entries);
	if (vm.o.self_harvest_us)
		fprintf(stderr, "; verify: %s (%llu mismatches)\n",
			mismatches ? "MISMATCH" : "exact", (unsigned long long)mismatches);
	else
		fputc('\n', stderr);
	if (got_signal)
		fprintf(stderr, "dtvm: stopped by signal %d\n", (int)got_signal);

	teardown(&vm);
	return mismatches ? DTVM_EXIT_MISMATCH : 0;
}
