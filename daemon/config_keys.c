/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The configuration key table and the value types behind it. A key is one
 * row: adding one is a field in struct dt_config and a line here (and its
 * documentation in config/dirtytrackd.conf and dirtytrackd.conf(5), which
 * tests/integration/man-pages.sh compares with --dump-config-keys).
 */
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "config_keys.h"
#include "dt_util.h"

#define STR_(x)	     #x
#define STRINGIFY(x) STR_(x)
#define FIELD(f)     (((struct dt_config *)0)->f)
/* 0, or a compile error when field f is not of type T. */
#define TYPED(f, T)                                                                                \
	(0 * sizeof(char[__builtin_types_compatible_p(__typeof__(FIELD(f)), T) ? 1 : -1]))
/* The C type of each value type's field. */
#define CT_PATH	     char *
#define CT_PATH_OFF  char *
#define CT_STRING    char *
#define CT_GROUP     char *
#define CT_U32	     uint32_t
#define CT_POW2	     uint32_t
#define CT_DURATION  uint64_t
#define CT_SECONDS   uint32_t
#define CT_SIZE	     uint64_t
#define CT_SIZE_OFF  uint64_t
#define CT_MODE	     uint32_t
#define CT_USERS     uid_t[DT_MAX_ALLOWED_IDS]
#define CT_GROUPS    gid_t[DT_MAX_ALLOWED_IDS]
#define CT_WINDOWS   uint32_t[8]
#define CT_REF_LINKS struct dt_ref_link[DT_MAX_REF_LINKS]

/* clang-format off */
/*
 * One row: KEY(TYPE, section, key, field, default, min, max, restart, doc).
 * (Not clang-formatted: it reads as the table it is.)
 */
#define KEY(t, sec, name, f, def, min, max, rs, doc)                                             \
	{ sec, name, DT_KEY_##t, offsetof(struct dt_config, f) + TYPED(f, CT_##t),                 \
	  sizeof(FIELD(f)), 0, def, min, max, rs, doc }
/* A list: its field and its count. */
#define LIST(t, sec, name, f, n, def, min, max, rs, doc)                                         \
	{ sec, name, DT_KEY_##t, offsetof(struct dt_config, f) + TYPED(f, CT_##t),                 \
	  sizeof(FIELD(f)), offsetof(struct dt_config, n) + TYPED(n, unsigned), def, min, max, rs, \
	  doc }
#define LIVE false
#define RESTART true

/* Sections in the order of the shipped file; keys in their section's order there. */
const struct dt_config_key dt_config_keys[] = {
	KEY(PATH, "daemon", "runtime_dir", runtime_dir, "/run/dirtytrackd", NULL, NULL, RESTART,
	    "directory holding attach.sock and api.sock"),
	KEY(PATH_OFF, "daemon", "state_dir", state_dir, "/var/lib/dirtytrackd", NULL, NULL, RESTART,
	    "where VM histories survive a restart; empty: none"),
	KEY(U32, "daemon", "snapshot_epochs", snapshot_epochs, "60", "1", "1000000", LIVE,
	    "a VM is saved whole every this many epochs (the journal in between)"),
	KEY(U32, "daemon", "state_queue", state_queue, "4096", "16", "1000000", RESTART,
	    "writes (epoch frames, snapshots) queued for the state writer at most; beyond, "
	    "frames wait for the VM's next snapshot"),
	KEY(SIZE, "daemon", "state_queue_size", state_queue_size, "256M", "1M", "64G", RESTART,
	    "bytes the state writer's queue holds at most"),
	KEY(SIZE_OFF, "daemon", "state_max_bytes_per_vm", state_max_bytes_per_vm, "off", "64K",
	    "1024T", LIVE,
	    "a VM's files in state_dir (snapshot and journal) at most; beyond, its journal is "
	    "compacted into a snapshot; off: no quota"),
	KEY(DURATION, "daemon", "state_drain_timeout", state_drain_us, "30s", "1s", "1h", LIVE,
	    "at stop, how long the state writer may take to write what is queued"),
	KEY(DURATION, "daemon", "epoch", epoch_us, "1s", "100ms", "1min", LIVE,
	    "harvest period, for VMs attached afterwards"),
	KEY(DURATION, "daemon", "retention", retention_us, "10min", "0", "720h", LIVE,
	    "how long a detached VM stays listed with its figures"),

	KEY(DURATION, "stats", "history", history_us, "1h", "1s", "24h", LIVE,
	    "longest working-set window, for VMs attached afterwards"),
	KEY(U32, "stats", "recent_epochs", recent_epochs, "64", "1", "100000", LIVE,
	    "per-epoch dirty sets kept exactly, for VMs attached afterwards"),
	KEY(U32, "stats", "coarse_epochs", coarse_epochs, "60", "1", "100000", LIVE,
	    "epochs per bucket of older dirty sets, for VMs attached afterwards"),

	KEY(PATH, "attach", "socket", attach_socket, NULL, NULL, NULL, RESTART,
	    "the VMM attach socket; default runtime_dir/attach.sock"),
	LIST(USERS, "attach", "allowed_users", allowed_uids, n_allowed_uids, "", NULL, NULL, LIVE,
	     "users who may attach besides root and the daemon's user"),
	LIST(GROUPS, "attach", "allowed_groups", allowed_gids, n_allowed_gids, NULL, NULL, NULL,
	     LIVE, "groups whose members may attach; default dirtytrack when it exists"),
	LIST(USERS, "attach", "takeover_users", takeover_uids, n_takeover_uids, "", NULL, NULL, LIVE,
	     "users who may reattach a VM another uid owns"),
	KEY(U32, "attach", "max_vms", max_vms, "64", "1", "65536", LIVE, "VMs attached at once"),
	KEY(U32, "attach", "max_vms_per_owner", max_vms_per_owner, "0", "0", "65536", LIVE,
	    "VMs one uid may have listed; 0: max_vms"),
	KEY(U32, "attach", "max_vcpus", max_vcpus, "512", "1", "4096", LIVE, "vCPUs per VM"),
	KEY(U32, "attach", "max_slots", max_slots, "512", "1", "32768", LIVE,
	    "memory slots per VM"),
	KEY(POW2, "attach", "max_ring_entries", max_ring_entries, "65536", "64", "1048576", LIVE,
	    "entries per dirty ring"),
	KEY(SIZE, "attach", "max_memory", max_memory, "16T", "1M", "1024T", LIVE,
	    "guest memory per VM"),
	KEY(U32, "attach", "max_handshakes", max_handshakes, "32", "1", "65536", LIVE,
	    "connections not past HELLO/WELCOME; at this many, accepting pauses"),
	KEY(DURATION, "attach", "handshake_timeout", handshake_timeout_us, "10s", "100ms", "1h",
	    LIVE, "a connection without HELLO is dropped after this"),

	KEY(PATH, "api", "socket", api_socket, NULL, NULL, NULL, RESTART,
	    "the REST API's Unix socket; default runtime_dir/api.sock"),
	KEY(STRING, "api", "tcp", api_tcp, "127.0.0.1:9111", NULL, NULL, RESTART,
	    "loopback TCP listener HOST:PORT, or off"),
	KEY(U32, "api", "max_connections", api_max_connections, "64", "1", "100000", RESTART,
	    "concurrent HTTP connections per listener"),
	KEY(U32, "api", "max_connections_per_client", api_max_client_connections, "16", "1",
	    "100000", RESTART, "concurrent HTTP connections of one client per listener"),
	KEY(DURATION, "api", "timeout", api_timeout_us, "10s", "1s", "1h", RESTART,
	    "idle HTTP connections are closed after this"),
	KEY(MODE, "api", "socket_mode", api_socket_mode, "0660", NULL, NULL, RESTART,
	    "permissions of the API socket (octal)"),
	KEY(GROUP, "api", "socket_group", api_socket_group, "", NULL, NULL, RESTART,
	    "group of the API socket; empty: the daemon's"),
	KEY(DURATION, "api", "max_wait", api_max_wait_us, "60s", "0", "1h", LIVE,
	    "longest long-poll a client may ask for with ?wait="),
	KEY(SIZE, "api", "memory_limit", api_memory_limit, "64K", "4K", "64M", RESTART,
	    "memory per HTTP connection"),
	KEY(U32, "api", "max_pending_plans", api_max_pending_plans, "16", "1", "1024", RESTART,
	    "migration plans waiting or running at once, per front end (REST, D-Bus)"),
	KEY(DURATION, "api", "plan_timeout", api_plan_timeout_us, "10s", "100ms", "10min", LIVE,
	    "longest a plan or evacuation request waits for the planner thread; then 503 (D-Bus: Timeout)"),
	KEY(U32, "api", "max_plan_rounds", api_max_plan_rounds, "100", "1", "1000", LIVE,
	    "largest ?max_rounds= of a plan request; the plan's cost grows with it"),
	KEY(U32, "api", "pages_limit", api_pages_limit, "10000", "1", "100000", LIVE,
	    "pages per response of /epochs/N/pages without ?limit="),
	KEY(STRING, "api", "remote", api_remote, "off", NULL, NULL, RESTART,
	    "TLS listener for other hosts ADDR:PORT, or off"),
	KEY(PATH_OFF, "api", "tls_certificate", api_tls_cert, "", NULL, NULL, RESTART,
	    "the remote listener's certificate (PEM)"),
	KEY(PATH_OFF, "api", "tls_key", api_tls_key, "", NULL, NULL, RESTART,
	    "the remote listener's private key (PEM)"),
	KEY(PATH_OFF, "api", "token_file", api_token_file, "", NULL, NULL, RESTART,
	    "file holding the remote listener's bearer token"),

	LIST(WINDOWS, "metrics", "wss_windows", metrics_windows, n_metrics_windows,
	     "1s, 10s, 60s, 300s", "1s", "24h", LIVE,
	     "working-set windows exported in /metrics (ascending, whole seconds)"),
	LIST(REF_LINKS, "metrics", "reference_links", ref_links, n_ref_links, "10Gbit/300ms", NULL,
	     NULL, LIVE, "links /metrics predicts every VM's migration at, or off"),

	KEY(STRING, "dbus", "bus", dbus, "system", NULL, NULL, RESTART,
	    "system, session, a bus address, or off"),
	KEY(DURATION, "dbus", "properties_interval", dbus_interval_us, "1s", "100ms", "1h", LIVE,
	    "per-epoch PropertiesChanged at most this often"),

	KEY(STRING, "libvirt", "uri", libvirt_uri, "", NULL, NULL, RESTART,
	    "libvirt URI of the collector of observed VMs, or empty for off"),
	KEY(DURATION, "libvirt", "interval", libvirt_interval_us, "10s", "1s", "1h", RESTART,
	    "how often a calc is started and the previous one read"),
	KEY(SECONDS, "libvirt", "calc_seconds", libvirt_calc_seconds, "1s", "1s", "60s", RESTART,
	    "calc period asked of QEMU, shorter than interval"),
};
const size_t dt_config_n_keys = ARRAY_SIZE(dt_config_keys);
/* clang-format on */

#undef KEY
#undef LIST

static const char *const type_names[_DT_KEY_TYPE_MAX] = {
    [DT_KEY_PATH] = "path",	    [DT_KEY_PATH_OFF] = "path-or-empty",
    [DT_KEY_STRING] = "string",	    [DT_KEY_GROUP] = "group",
    [DT_KEY_U32] = "integer",	    [DT_KEY_POW2] = "power-of-two",
    [DT_KEY_DURATION] = "duration", [DT_KEY_SECONDS] = "seconds",
    [DT_KEY_SIZE] = "size",	    [DT_KEY_SIZE_OFF] = "size-or-off",
    [DT_KEY_MODE] = "octal-mode",
    [DT_KEY_USERS] = "users",	    [DT_KEY_GROUPS] = "groups",
    [DT_KEY_WINDOWS] = "durations", [DT_KEY_REF_LINKS] = "links",
};

const char *dt_config_key_type_name(enum dt_key_type t)
{
	return t < _DT_KEY_TYPE_MAX ? type_names[t] : "?";
}

const struct dt_config_key *dt_config_key_find(const char *section, const char *name)
{
	for (size_t i = 0; i < dt_config_n_keys; i++)
		if (strcmp(dt_config_keys[i].section, section) == 0 &&
		    strcmp(dt_config_keys[i].name, name) == 0)
			return &dt_config_keys[i];
	return NULL;
}

static void *field_of(const struct dt_config_key *k, struct dt_config *c)
{
	return (char *)c + k->offset;
}

static const void *cfield_of(const struct dt_config_key *k, const struct dt_config *c)
{
	return (const char *)c + k->offset;
}

static unsigned count_of(const struct dt_config_key *k, const struct dt_config *c)
{
	return *(const unsigned *)((const char *)c + k->count_offset);
}

static bool is_list(enum dt_key_type t)
{
	return t == DT_KEY_USERS || t == DT_KEY_GROUPS || t == DT_KEY_WINDOWS ||
	       t == DT_KEY_REF_LINKS;
}

static bool is_string(enum dt_key_type t)
{
	return t == DT_KEY_PATH || t == DT_KEY_PATH_OFF || t == DT_KEY_STRING || t == DT_KEY_GROUP;
}

static size_t elem_size(enum dt_key_type t)
{
	return t == DT_KEY_REF_LINKS ? sizeof(struct dt_ref_link) : sizeof(uint32_t);
}

/* A number in the unit of the key's type (microseconds, bytes, or plain). */
static int parse_number(enum dt_key_type t, const char *s, uint64_t *ret)
{
	switch (t) {
	case DT_KEY_DURATION:
	case DT_KEY_SECONDS:
	case DT_KEY_WINDOWS:
		return dt_parse_duration(s, ret);
	case DT_KEY_SIZE:
	case DT_KEY_SIZE_OFF:
		return dt_parse_size(s, ret);
	default:
		return dt_parse_u64(s, 0, UINT64_MAX, ret);
	}
}

/* The key's bounds in its type's unit; a bound as written that does not parse is none. */
static void bounds(const struct dt_config_key *k, uint64_t *min, uint64_t *max)
{
	*min = 0;
	*max = k->type == DT_KEY_U32 || k->type == DT_KEY_POW2 ? UINT32_MAX : UINT64_MAX;
	if (k->min && parse_number(k->type, k->min, min) < 0)
		*min = 0;
	if (k->max && parse_number(k->type, k->max, max) < 0)
		*max = UINT64_MAX;
}

static int set_string(char **field, const char *value)
{
	char *s = NULL;

	if (*value && strcmp(value, "off") != 0) {
		s = strdup(value);
		if (!s)
			return -ENOMEM;
	}
	free(*field);
	*field = s;
	return 0;
}

static int parse_windows(const struct dt_config_key *k, struct dt_config *c, const char *value)
{
	_cleanup_free_ char *copy = strdup(value);
	uint32_t w[ARRAY_SIZE(c->metrics_windows)];
	uint64_t min, max;
	char *save = NULL;
	unsigned n = 0;

	if (!copy)
		return -ENOMEM;
	bounds(k, &min, &max);
	for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		uint64_t us;

		if (n == ARRAY_SIZE(w) || dt_parse_duration(tok, &us) < 0 || us < min || us > max ||
		    us % 1000000 || (n && us / 1000000 <= w[n - 1]))
			return -EINVAL;
		w[n++] = (uint32_t)(us / 1000000);
	}
	if (n == 0)
		return -EINVAL;
	memcpy(c->metrics_windows, w, sizeof(w));
	c->n_metrics_windows = n;
	return 0;
}

/*
 * "BANDWIDTH/DOWNTIME ..." (comma- or space-separated; the downtime after
 * the last '/', so "10Gbit/s/300ms" works), or "off" / "" for none.
 */
static int parse_ref_links(struct dt_config *c, const char *value)
{
	_cleanup_free_ char *copy = strdup(value);
	struct dt_ref_link l[DT_MAX_REF_LINKS];
	char *save = NULL;
	unsigned n = 0;

	if (!copy)
		return -ENOMEM;
	memset(l, 0, sizeof(l));
	if (strcmp(value, "off") != 0) {
		for (char *tok = strtok_r(copy, ", ", &save); tok;
		     tok = strtok_r(NULL, ", ", &save)) {
			char *slash = strrchr(tok, '/');

			if (n == DT_MAX_REF_LINKS || !slash || strlen(tok) >= sizeof(l[n].name))
				return -EINVAL;
			memcpy(l[n].name, tok, strlen(tok));
			*slash = '\0';
			if (dt_parse_bandwidth(tok, &l[n].bandwidth) < 0 ||
			    dt_parse_duration(slash + 1, &l[n].downtime_us) < 0 ||
			    l[n].downtime_us == 0)
				return -EINVAL;
			for (unsigned i = 0; i < n; i++)
				if (strcmp(l[i].name, l[n].name) == 0)
					return -EINVAL;
			n++;
		}
	}
	memcpy(c->ref_links, l, sizeof(l));
	c->n_ref_links = n;
	return 0;
}

/* Comma- or space-separated user (groups: group) names or ids into ids[]. */
static int parse_ids(const char *value, bool groups, uint32_t ids[DT_MAX_ALLOWED_IDS],
		     unsigned *n_ids)
{
	_cleanup_free_ char *copy = strdup(value);
	uint32_t parsed[DT_MAX_ALLOWED_IDS];
	char *save = NULL;
	unsigned n = 0;

	if (!copy)
		return -ENOMEM;
	for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		uint64_t id;

		if (dt_parse_u64(tok, 0, UINT32_MAX - 1, &id) < 0) {
			if (groups) {
				struct group *g = getgrnam(tok);
				if (!g)
					return -ESRCH;
				id = g->gr_gid;
			} else {
				struct passwd *p = getpwnam(tok);
				if (!p)
					return -ESRCH;
				id = p->pw_uid;
			}
		}
		if (n >= DT_MAX_ALLOWED_IDS)
			return -E2BIG;
		parsed[n++] = (uint32_t)id;
	}
	memcpy(ids, parsed, n * sizeof(*ids));
	*n_ids = n;
	return 0;
}

/* What a value of k must be, with its bounds. */
static void explain(const struct dt_config_key *k, char *err, size_t errlen)
{
	const char *what = NULL;

	switch (k->type) {
	case DT_KEY_PATH:
		what = "must be an absolute path";
		break;
	case DT_KEY_PATH_OFF:
		what = "must be an absolute path, or empty";
		break;
	case DT_KEY_STRING:
		what = "invalid value";
		break;
	case DT_KEY_GROUP:
		what = "unknown group";
		break;
	case DT_KEY_U32:
		what = "must be a number";
		break;
	case DT_KEY_POW2:
		what = "must be a power of two";
		break;
	case DT_KEY_DURATION:
		what = "must be a duration";
		break;
	case DT_KEY_SECONDS:
		what = "must be whole seconds";
		break;
	case DT_KEY_SIZE:
		what = "must be a size";
		break;
	case DT_KEY_SIZE_OFF:
		what = "must be a size, or off";
		break;
	case DT_KEY_MODE:
		what = "must be an octal mode such as 0660";
		break;
	case DT_KEY_USERS:
		what = "unknown user, or more than " STRINGIFY(DT_MAX_ALLOWED_IDS);
		break;
	case DT_KEY_GROUPS:
		what = "unknown group, or more than " STRINGIFY(DT_MAX_ALLOWED_IDS);
		break;
	case DT_KEY_WINDOWS:
		what = "must be up to 8 ascending whole-second durations";
		break;
	case DT_KEY_REF_LINKS:
		what = "must be up to " STRINGIFY(DT_MAX_REF_LINKS) " distinct BANDWIDTH/DOWNTIME "
								    "links (10Gbit/300ms), or off";
		break;
	case _DT_KEY_TYPE_MAX:
		break;
	}
	if (k->min && k->max)
		snprintf(err, errlen, "%s from %s to %s", what, k->min, k->max);
	else
		snprintf(err, errlen, "%s", what);
}

static int parse_value(const struct dt_config_key *k, struct dt_config *c, const char *value)
{
	void *f = field_of(k, c);
	uint64_t v, min, max;
	int r;

	switch (k->type) {
	case DT_KEY_PATH:
		return *value == '/' ? set_string(f, value) : -EINVAL;
	case DT_KEY_PATH_OFF:
		return !*value || strcmp(value, "off") == 0 || *value == '/' ? set_string(f, value)
									     : -EINVAL;
	case DT_KEY_STRING:
		return set_string(f, value);
	case DT_KEY_GROUP:
		return !*value || getgrnam(value) ? set_string(f, value) : -ESRCH;
	case DT_KEY_MODE: {
		char *end;
		unsigned long mode;

		errno = 0;
		mode = strtoul(value, &end, 8);
		if (!*value || *end || errno || mode > 0777 || *value == '-' || *value == '+')
			return -EINVAL;
		*(uint32_t *)f = (uint32_t)mode;
		return 0;
	}
	case DT_KEY_USERS:
	case DT_KEY_GROUPS:
		return parse_ids(value, k->type == DT_KEY_GROUPS, f,
				 (unsigned *)((char *)c + k->count_offset));
	case DT_KEY_WINDOWS:
		return parse_windows(k, c, value);
	case DT_KEY_REF_LINKS:
		return parse_ref_links(c, value);
	case DT_KEY_SIZE_OFF:
		if (strcmp(value, "off") == 0) {
			*(uint64_t *)f = 0;
			return 0;
		}
		break;
	case DT_KEY_U32:
	case DT_KEY_POW2:
	case DT_KEY_DURATION:
	case DT_KEY_SECONDS:
	case DT_KEY_SIZE:
		break;
	case _DT_KEY_TYPE_MAX:
		return -EINVAL;
	}
	/* The numbers: parse, bound, store. */
	if (k->type == DT_KEY_U32 || k->type == DT_KEY_POW2)
		r = dt_parse_u64(value, 0, UINT32_MAX, &v);
	else
		r = parse_number(k->type, value, &v);
	if (r < 0)
		return r;
	bounds(k, &min, &max);
	if (v < min || v > max)
		return -ERANGE;
	if (k->type == DT_KEY_POW2 && (v & (v - 1)))
		return -EINVAL;
	if (k->type == DT_KEY_SECONDS && v % 1000000)
		return -EINVAL;
	if (k->type == DT_KEY_SECONDS)
		*(uint32_t *)f = (uint32_t)(v / 1000000);
	else if (k->size == sizeof(uint32_t))
		*(uint32_t *)f = (uint32_t)v;
	else
		*(uint64_t *)f = v;
	return 0;
}

int dt_config_key_parse(const struct dt_config_key *k, struct dt_config *c, const char *value,
			char *err, size_t errlen)
{
	int r = parse_value(k, c, value);

	if (r < 0)
		explain(k, err, errlen);
	return r;
}

/* The largest unit that writes v exactly. */
static void format_duration(uint64_t us, FILE *out)
{
	static const struct {
		const char *unit;
		uint64_t us;
	} units[] = {{"h", 3600000000ull}, {"min", 60000000ull}, {"s", 1000000}, {"ms", 1000}};

	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (us && us % units[i].us == 0) {
			fprintf(out, "%" PRIu64 "%s", us / units[i].us, units[i].unit);
			return;
		}
	fprintf(out, us ? "%" PRIu64 "us" : "%" PRIu64, us);
}

static void format_size(uint64_t b, FILE *out)
{
	static const char units[] = "TGMK";

	for (unsigned i = 0; i < 4; i++) {
		uint64_t m = 1ull << (10 * (4 - i));

		if (b && b % m == 0) {
			fprintf(out, "%" PRIu64 "%c", b / m, units[i]);
			return;
		}
	}
	fprintf(out, "%" PRIu64, b);
}

int dt_config_key_format(const struct dt_config_key *k, const struct dt_config *c, FILE *out)
{
	const void *f = cfield_of(k, c);

	switch (k->type) {
	case DT_KEY_PATH:
	case DT_KEY_PATH_OFF:
	case DT_KEY_GROUP:
	case DT_KEY_STRING: {
		const char *s = *(char *const *)f;

		fputs(s ? s : k->type == DT_KEY_STRING ? "off" : "", out);
		break;
	}
	case DT_KEY_U32:
	case DT_KEY_POW2:
		fprintf(out, "%" PRIu32, *(const uint32_t *)f);
		break;
	case DT_KEY_SECONDS:
		fprintf(out, "%" PRIu32 "s", *(const uint32_t *)f);
		break;
	case DT_KEY_DURATION:
		format_duration(*(const uint64_t *)f, out);
		break;
	case DT_KEY_SIZE:
		format_size(*(const uint64_t *)f, out);
		break;
	case DT_KEY_SIZE_OFF:
		if (*(const uint64_t *)f == 0)
			fputs("off", out);
		else
			format_size(*(const uint64_t *)f, out);
		break;
	case DT_KEY_MODE:
		fprintf(out, "%04" PRIo32, *(const uint32_t *)f);
		break;
	case DT_KEY_USERS:
	case DT_KEY_GROUPS:
	case DT_KEY_WINDOWS:
		for (unsigned i = 0; i < count_of(k, c); i++)
			fprintf(out, "%s%" PRIu32 "%s", i ? ", " : "", ((const uint32_t *)f)[i],
				k->type == DT_KEY_WINDOWS ? "s" : "");
		break;
	case DT_KEY_REF_LINKS:
		for (unsigned i = 0; i < count_of(k, c); i++)
			fprintf(out, "%s%s", i ? ", " : "",
				((const struct dt_ref_link *)f)[i].name);
		if (count_of(k, c) == 0)
			fputs("off", out);
		break;
	case _DT_KEY_TYPE_MAX:
		return -EINVAL;
	}
	return ferror(out) ? -EIO : 0;
}

bool dt_config_key_differs(const struct dt_config_key *k, const struct dt_config *a,
			   const struct dt_config *b)
{
	const void *pa = cfield_of(k, a), *pb = cfield_of(k, b);

	if (is_string(k->type)) {
		const char *sa = *(char *const *)pa, *sb = *(char *const *)pb;
		return (!sa != !sb) || (sa && strcmp(sa, sb) != 0);
	}
	if (is_list(k->type)) {
		unsigned na = count_of(k, a), nb = count_of(k, b);
		return na != nb || memcmp(pa, pb, na * elem_size(k->type)) != 0;
	}
	return memcmp(pa, pb, k->size) != 0;
}

void dt_config_key_free(const struct dt_config_key *k, struct dt_config *c)
{
	if (is_string(k->type)) {
		char **s = field_of(k, c);

		free(*s);
		*s = NULL;
	}
}

int dt_config_dump_keys(FILE *out)
{
	for (size_t i = 0; i < dt_config_n_keys; i++) {
		const struct dt_config_key *k = &dt_config_keys[i];

		fprintf(out, "%s.%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k->section, k->name,
			dt_config_key_type_name(k->type), k->def ? k->def : "-",
			k->min ? k->min : "-", k->max ? k->max : "-",
			k->restart ? "restart" : "reload", k->doc);
	}
	return ferror(out) ? -EIO : 0;
}
