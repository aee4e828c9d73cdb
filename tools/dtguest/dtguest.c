/* dtguest: a bare-metal guest that writes pages of its test region at a
 * commanded rate and pattern, stamps a sequence number in every page it
 * writes, and can verify every stamp against its ledger. Driven through a
 * mailbox page the host writes (see dtguest.h), or by the workload on the
 * multiboot command line. No libc, no libgcc: 64-bit division goes through
 * udiv64 below. */
#include "dtguest.h"

typedef dtg_u32 u32;
typedef dtg_u64 u64;
typedef unsigned short u16;
typedef unsigned char u8;

#define barrier() __asm__ __volatile__("" ::: "memory")

static volatile struct dtg_mailbox *const mb = (volatile struct dtg_mailbox *)DTG_MAILBOX_GPA;
static volatile struct dtg_status *const st = (volatile struct dtg_status *)DTG_STATUS_GPA;
static u64 *const ledger = (u64 *)DTG_LEDGER_GPA;

volatile u32 dtg_ticks;
extern const u32 dtg_exc_table[32];
void dtg_isr_timer(void);
void dtg_isr_ignore(void);
void dtg_main(u32 magic, u32 mbi);
void dtg_fault(u32 *frame);

/* --- CPU and port helpers ------------------------------------------------ */
static inline void outb(u16 port, u8 v)
{
	__asm__ __volatile__("outb %0, %1" ::"a"(v), "Nd"(port));
}
static inline u8 inb(u16 port)
{
	u8 v;

	__asm__ __volatile__("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline u64 rdtsc(void)
{
	u32 lo, hi;

	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}
/* Wait for the next interrupt (the 1 kHz tick at the latest). */
static inline void idle_wait(void)
{
	__asm__ __volatile__("sti; hlt; cli" ::: "memory");
}

/* n / d and n % d for a 32-bit divisor, with two divl. */
static u64 udiv64(u64 n, u32 d, u32 *rem)
{
	u32 hi = (u32)(n >> 32), lo = (u32)n, qhi, qlo, r;

	qhi = hi / d;
	r = hi % d;
	__asm__("divl %4" : "=a"(qlo), "=d"(r) : "a"(lo), "d"(r), "rm"(d));
	if (rem)
		*rem = r;
	return ((u64)qhi << 32) | qlo;
}

/* --- debug console (port 0xe9, QEMU -debugcon) ----------------------------- */
static void puts_(const char *s)
{
	while (*s)
		outb(0xe9, (u8)*s++);
}
static void putu(u64 v)
{
	char b[24];
	int i = 23;
	u32 r;

	b[i] = 0;
	do {
		v = udiv64(v, 10, &r);
		b[--i] = (char)('0' + r);
	} while (v);
	puts_(b + i);
}

/* --- status block (seqlock) ------------------------------------------------ */
static inline void st_begin(void)
{
	st->gen = st->gen + 1;
	barrier();
}
static inline void st_end(void)
{
	barrier();
	st->gen = st->gen + 1;
}

/* --- the workload ------------------------------------------------------------ */
static u32 test_pages;
static u64 seq;           /* last stamped */
static u64 pages_written; /* since boot */
static u64 tsc_hz, tsc_tick;

struct job {
	u32 cmd, ack, pattern, pages, seed, wss, base, rate, hot, exit_every;
	u32 x;      /* xorshift32 state */
	u32 cursor; /* sequential */
	u32 done;   /* page writes so far */
	u32 since_exit;
	u64 deadline; /* TSC when the next page is due (rate > 0) */
	u64 q;        /* tsc_hz / rate ... */
	u32 r, acc;   /* ... and its remainder, spread Bresenham-style */
	u64 backlog;  /* at most this much lateness is caught up */
	u64 t0;
};
static struct job job;

/* The random stream: a 32-bit LCG (x = x * 1664525 + 1013904223), a value in
 * [0, n) taken from its high bits as (x * n) >> 32. Two instructions each:
 * this KVM emulates every ring-0 instruction, so the loop's length is the
 * write rate. */
static inline u32 lcg(u32 *x)
{
	*x = *x * 1664525u + 1013904223u;
	return *x;
}
static inline u32 below(u32 x, u32 n)
{
	return (u32)(((u64)x * n) >> 32);
}

static inline void stamp(u32 idx, u64 s)
{
	volatile u32 *p = (volatile u32 *)(DTG_TEST_GPA + idx * DTG_PAGE);

	p[0] = DTG_PAGE_MAGIC;
	p[1] = idx;
	p[2] = (u32)s;
	p[3] = (u32)(s >> 32);
	ledger[idx] = s;
}

/* n page writes of the job's pattern, as few instructions per page as C allows. */
static void write_pages(struct job *j, u32 n)
{
	u64 s = seq;
	u32 x = j->x, base = j->base, wss = j->wss;

	switch (j->pattern) {
	case DTG_PAT_SEQUENTIAL: {
		u32 c = j->cursor;

		while (n--) {
			stamp(base + c, ++s);
			if (++c == wss)
				c = 0;
		}
		j->cursor = c;
		break;
	}
	case DTG_PAT_RANDOM:
		while (n--)
			stamp(base + below(lcg(&x), wss), ++s);
		break;
	default: { /* HOTCOLD */
		u32 hot = j->hot, all = test_pages;

		while (n--) {
			u32 u = below(lcg(&x), 100);

			stamp(u < hot ? base + below(lcg(&x), wss) : below(lcg(&x), all), ++s);
		}
		break;
	}
	}
	j->x = x;
	seq = s;
}

static void status_progress(void)
{
	st_begin();
	st->seq = seq;
	st->pages_written = pages_written;
	st->cmd_pages = job.done;
	st->tsc_now = rdtsc();
	st->ticks = dtg_ticks;
	st_end();
}

static void ack(u32 state, u32 result)
{
	st_begin();
	st->seq = seq;
	st->pages_written = pages_written;
	st->cmd_pages = job.done;
	st->tsc_now = rdtsc();
	st->ticks = dtg_ticks;
	st->state = state;
	st->result = result;
	st->ack_seq = job.ack;
	st_end();
}

static void verify(void)
{
	u32 checked = 0, bad = 0, first = DTG_NONE, last = DTG_NONE;
	u64 t0 = rdtsc(), us;

	for (u32 i = 0; i < test_pages; i++) {
		u64 l = ledger[i];
		const volatile u32 *p;

		if (!l)
			continue;
		checked++;
		p = (const volatile u32 *)(DTG_TEST_GPA + i * DTG_PAGE);
		if (p[0] != DTG_PAGE_MAGIC || p[1] != i || p[2] != (u32)l || p[3] != (u32)(l >> 32)) {
			if (first == DTG_NONE)
				first = i;
			last = i;
			bad++;
		}
	}
	us = udiv64((rdtsc() - t0) * 1000000ull, (u32)tsc_hz, 0);
	st_begin();
	st->verify_checked = checked;
	st->verify_bad = bad;
	st->verify_first_bad = first;
	st->verify_last_bad = last;
	st->verify_us = (u32)us;
	st_end();
}

/* Start a command (from the mailbox or the command line). */
static void start(struct job *j)
{
	u32 result = 0;

	if (j->wss == 0 || j->base >= test_pages || j->wss > test_pages - j->base)
		j->wss = j->base < test_pages ? test_pages - j->base : 0;
	if (j->hot > 100)
		j->hot = 100;
	if (j->pattern > DTG_PAT_HOTCOLD)
		result = 2;
	if (j->wss == 0 && (j->cmd == DTG_CMD_WRITE || j->cmd == DTG_CMD_RUN))
		result = 2;
	if (j->cmd > DTG_CMD_VERIFY)
		result = 1;
	j->x = j->seed;
	j->cursor = j->wss ? j->seed % j->wss : 0;
	j->done = 0;
	j->since_exit = 0;
	j->t0 = rdtsc();
	j->deadline = j->t0;
	if (j->rate) {
		j->q = udiv64(tsc_hz, j->rate, &j->r);
		j->acc = 0;
	}
	j->backlog = udiv64(tsc_hz, 20, 0); /* 50 ms */
	st_begin();
	st->cmd = j->cmd;
	st->cmd_tsc = j->t0;
	st->cmd_pages = 0;
	st->cmd_seq0 = seq;
	st_end();
	if (result) {
		j->cmd = DTG_CMD_IDLE;
		ack(DTG_ST_IDLE, result);
		return;
	}
	switch (j->cmd) {
	case DTG_CMD_IDLE:
		ack(DTG_ST_IDLE, 0);
		break;
	case DTG_CMD_WRITE:
		if (!j->pages) {
			j->cmd = DTG_CMD_IDLE;
			ack(DTG_ST_IDLE, 0);
		} else {
			st_begin();
			st->state = DTG_ST_WRITE;
			st_end();
		}
		break;
	case DTG_CMD_RUN:
		ack(DTG_ST_RUN, 0);
		break;
	case DTG_CMD_VERIFY:
		st_begin();
		st->state = DTG_ST_VERIFY;
		st_end();
		verify();
		j->cmd = DTG_CMD_IDLE;
		ack(DTG_ST_IDLE, 0);
		break;
	}
}

/* Up to 64 page writes (fewer when paced or at the end of a WRITE). */
static void step(struct job *j)
{
	u32 n = 64, k = 0;

	if (j->cmd == DTG_CMD_WRITE && j->pages - j->done < n)
		n = j->pages - j->done;
	if (j->rate) {
		u64 now = rdtsc();

		if (now < j->deadline) {
			if (j->deadline - now > tsc_tick)
				idle_wait();
			else
				__asm__ __volatile__("pause");
			return;
		}
		if (now - j->deadline > j->backlog)
			j->deadline = now - j->backlog; /* stalled (paused VM): no burst */
		for (; k < n && j->deadline <= now; k++) {
			j->deadline += j->q;
			j->acc += j->r;
			if (j->acc >= j->rate) {
				j->acc -= j->rate;
				j->deadline++;
			}
		}
		write_pages(j, k);
	} else {
		write_pages(j, k = n);
	}
	j->done += k;
	pages_written += k;
	if (j->exit_every) {
		j->since_exit += k;
		if (j->since_exit >= j->exit_every) {
			j->since_exit = 0;
			outb(0x80, 0);
		}
	}
	if (j->cmd == DTG_CMD_WRITE && j->done == j->pages) {
		j->cmd = DTG_CMD_IDLE;
		ack(DTG_ST_IDLE, 0);
		return;
	}
	status_progress();
}

/* --- boot ---------------------------------------------------------------------- */
struct idt_entry {
	u16 off_lo, sel;
	u8 zero, type;
	u16 off_hi;
} __attribute__((packed));
static struct idt_entry idt[48] __attribute__((aligned(8)));

static void idt_set(int v, u32 handler)
{
	idt[v].off_lo = (u16)handler;
	idt[v].sel = 0x08;
	idt[v].zero = 0;
	idt[v].type = 0x8e; /* present, ring 0, 32-bit interrupt gate */
	idt[v].off_hi = (u16)(handler >> 16);
}

static void setup_interrupts(void)
{
	struct {
		u16 limit;
		u32 base;
	} __attribute__((packed)) desc = { sizeof(idt) - 1, (u32)idt };

	for (int v = 0; v < 32; v++)
		idt_set(v, dtg_exc_table[v]);
	idt_set(32, (u32)dtg_isr_timer);
	for (int v = 33; v < 48; v++)
		idt_set(v, (u32)dtg_isr_ignore);
	__asm__ __volatile__("lidt %0" ::"m"(desc));
	/* 8259 pair at vectors 32..47, auto-EOI, only IRQ0 (the PIT) unmasked. */
	outb(0x20, 0x11);
	outb(0xa0, 0x11);
	outb(0x21, 0x20);
	outb(0xa1, 0x28);
	outb(0x21, 0x04);
	outb(0xa1, 0x02);
	outb(0x21, 0x03);
	outb(0xa1, 0x03);
	outb(0x21, 0xfe);
	outb(0xa1, 0xff);
	/* The 8259 reaches the CPU through the local APIC's LINT0 in ExtINT mode
	 * ("virtual wire"). SeaBIOS sets that up, qboot does not: do it here.
	 * APIC software-enable (SVR bit 8, spurious vector 0xff), LINT0 ExtINT,
	 * LINT1 NMI. */
	{
		volatile u32 *apic = (volatile u32 *)0xfee00000u;

		apic[0xf0 / 4] = 0x1ff;
		apic[0x350 / 4] = 0x700;
		apic[0x360 / 4] = 0x400;
	}
	/* PIT channel 0, mode 2, 1193182 / 1193 = 1000.15 Hz. */
	outb(0x43, 0x34);
	outb(0x40, 1193 & 0xff);
	outb(0x40, 1193 >> 8);
}

static inline u32 inl(u16 port)
{
	u32 v;

	__asm__ __volatile__("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* The ACPI PM timer: 24 bits at 3.579545 MHz, free running, read with one
 * port access. Where SeaBIOS puts it: q35 (ICH9) PMBASE 0x600, pc (PIIX4)
 * 0xb000; the timer is at +8. Found by watching it move. */
static u16 pm_timer_port(void)
{
	static const u16 ports[] = { 0x608, 0xb008 };

	for (u32 i = 0; i < 2; i++) {
		u32 a = inl(ports[i]) & 0xffffff, b = a;

		if (inl(ports[i]) == 0xffffffffu)
			continue;
		for (u32 k = 0; k < 1000 && b == a; k++)
			b = inl(ports[i]) & 0xffffff;
		if (b != a)
			return ports[i];
	}
	return 0;
}

/* TSC ticks while the PM timer advances `want` ticks (wrap-safe). */
static u64 tsc_over_pm(u16 port, u32 want)
{
	u32 p0 = inl(port) & 0xffffff, p1;
	u64 t0 = rdtsc(), t1;

	do {
		p1 = inl(port) & 0xffffff;
		t1 = rdtsc();
	} while (((p1 - p0) & 0xffffff) < want);
	/* scale to exactly `want` PM ticks */
	return udiv64((t1 - t0) * want, (p1 - p0) & 0xffffff, 0);
}

/* TSC frequency from PIT channel 2 (one-shot, mode 0, gate via port 0x61),
 * the fallback where there is no PM timer. Bounded: 0 if OUT never rose. */
static u64 tsc_over_pit(u32 count)
{
	u8 g = inb(0x61);
	u64 t0, t1;
	u32 spins = 0;

	outb(0x61, (u8)(g & ~0x03)); /* gate low, speaker off */
	outb(0x43, 0xb0);            /* ch 2, lsb/msb, mode 0 */
	outb(0x42, (u8)(count & 0xff));
	outb(0x42, (u8)(count >> 8));
	outb(0x61, (u8)((g & ~0x02) | 0x01)); /* gate high */
	t0 = rdtsc();
	while (!(inb(0x61) & 0x20))
		if (++spins > 2000000)
			return 0;
	t1 = rdtsc();
	outb(0x61, (u8)(g & ~0x03));
	return t1 - t0;
}

/* TSC frequency: best (shortest, least exit latency in it) of three 20 ms
 * windows of the ACPI PM timer, else of the PIT. Reported in status. */
static const char *tsc_source = "none";
static u64 calibrate_tsc(void)
{
	u16 pm = pm_timer_port();
	u64 best = ~0ull, t;

	if (pm) {
		for (int r = 0; r < 3; r++)
			if ((t = tsc_over_pm(pm, 71591)) < best) /* 20 ms */
				best = t;
		tsc_source = pm == 0x608 ? "acpi-pm 0x608" : "acpi-pm 0xb008";
		return udiv64(best * 3579545ull, 71591, 0);
	}
	for (int r = 0; r < 3; r++)
		if ((t = tsc_over_pit(23864)) && t < best) /* 20 ms */
			best = t;
	if (best == ~0ull)
		return 0;
	tsc_source = "pit";
	return udiv64(best * 1193182ull, 23864, 0);
}

static int streq_n(const char *a, const char *b, u32 n)
{
	for (u32 i = 0; i < n; i++)
		if (a[i] != b[i] || !a[i])
			return 0;
	return b[n] == 0;
}

static u32 parse_u32(const char *s, u32 n)
{
	u32 v = 0;

	for (u32 i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		v = v * 10 + (u32)(s[i] - '0');
	return v;
}

/* "rate=5000 pattern=random wss=20000 seed=1 base=0 hot=90 pages=N exit_every=64":
 * a RUN (or a WRITE of N pages when pages= is given) started at boot. */
static int parse_cmdline(const char *c, struct job *j)
{
	int any = 0;

	j->pattern = DTG_PAT_RANDOM;
	j->hot = 90;
	j->cmd = DTG_CMD_RUN;
	while (*c) {
		const char *k, *v;
		u32 kl = 0, vl = 0;

		while (*c == ' ')
			c++;
		k = c;
		while (*c && *c != ' ' && *c != '=')
			c++;
		kl = (u32)(c - k);
		if (*c != '=') {
			continue;
		}
		v = ++c;
		while (*c && *c != ' ')
			c++;
		vl = (u32)(c - v);
		if (streq_n(k, "rate", kl)) {
			j->rate = streq_n(v, "max", vl) ? 0 : parse_u32(v, vl);
			any = 1;
		} else if (streq_n(k, "pattern", kl)) {
			if (streq_n(v, "sequential", vl) || streq_n(v, "seq", vl))
				j->pattern = DTG_PAT_SEQUENTIAL;
			else if (streq_n(v, "hotcold", vl))
				j->pattern = DTG_PAT_HOTCOLD;
			else
				j->pattern = DTG_PAT_RANDOM;
			any = 1;
		} else if (streq_n(k, "wss", kl)) {
			j->wss = parse_u32(v, vl);
		} else if (streq_n(k, "seed", kl)) {
			j->seed = parse_u32(v, vl);
		} else if (streq_n(k, "base", kl)) {
			j->base = parse_u32(v, vl);
		} else if (streq_n(k, "hot", kl)) {
			j->hot = parse_u32(v, vl);
		} else if (streq_n(k, "exit_every", kl)) {
			j->exit_every = parse_u32(v, vl);
		} else if (streq_n(k, "pages", kl)) {
			j->pages = parse_u32(v, vl);
			j->cmd = DTG_CMD_WRITE;
			any = 1;
		}
	}
	return any;
}

struct mb_info {
	u32 flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	u32 syms[4];
	u32 mmap_length, mmap_addr;
};

/* End of the RAM range that holds the test region's start. */
static u32 ram_end(const struct mb_info *mi)
{
	if (mi && (mi->flags & (1u << 6))) {
		u32 p = mi->mmap_addr, end = mi->mmap_addr + mi->mmap_length;

		while (p < end) {
			const u32 *e = (const u32 *)p; /* size, base lo/hi, len lo/hi, type */
			u64 b = ((u64)e[2] << 32) | e[1], l = ((u64)e[4] << 32) | e[3];

			if (e[5] == 1 && b <= DTG_TEST_GPA && b + l > DTG_TEST_GPA) {
				u64 top = b + l;

				return top > 0xfffff000ull ? 0xfffff000u : (u32)top;
			}
			p += e[0] + 4;
		}
		return 0;
	}
	if (mi && (mi->flags & 1u))
		return 0x100000u + mi->mem_upper * 1024u;
	return 0;
}

/* frame: vector, error code, eip, cs, eflags (from exc_common) */
void dtg_fault(u32 *frame)
{
	st_begin();
	st->state = DTG_ST_FAULT;
	st->fault_vector = frame[0];
	st->fault_eip = frame[2];
	st_end();
	puts_("dtguest: FAULT vector ");
	putu(frame[0]);
	puts_(" eip ");
	putu(frame[2]);
	puts_("\n");
}

void dtg_main(u32 magic, u32 mbi)
{
	const struct mb_info *mi = magic == 0x2BADB002u ? (const struct mb_info *)mbi : 0;
	u64 boot0 = rdtsc();
	u32 end, last_seq, beat = 0;
	char *cl = (char *)st->cmdline;
	struct job boot = { 0 };
	int have_boot;

	/* The status page first: a clean slate, the command line kept. */
	for (u32 i = 0; i < DTG_PAGE / 4; i++)
		((volatile u32 *)st)[i] = 0;
	if (mi && (mi->flags & (1u << 2))) {
		const char *s = (const char *)mi->cmdline;
		u32 i = 0;

		for (; s[i] && i < sizeof(st->cmdline) - 1; i++)
			cl[i] = s[i];
		cl[i] = 0;
	}
	end = ram_end(mi);
	if (end > DTG_TEST_GPA)
		test_pages = (end - DTG_TEST_GPA) / DTG_PAGE;
	if (test_pages > DTG_LEDGER_MAX)
		test_pages = DTG_LEDGER_MAX;
	for (u32 i = 0; i < test_pages; i++)
		ledger[i] = 0;
	setup_interrupts();
	tsc_hz = calibrate_tsc();
	if (tsc_hz < 1000000 || tsc_hz > 0xffffffffull) { /* unusable: pacing is then approximate */
		tsc_hz = 2000000000ull;
		tsc_source = "guessed";
	}
	tsc_tick = udiv64(tsc_hz, 1000, 0);

	st_begin();
	st->magic = DTG_ST_MAGIC;
	st->version = DTG_VERSION;
	st->tsc_hz = tsc_hz;
	st->test_gfn = DTG_TEST_GPA / DTG_PAGE;
	st->test_pages = test_pages;
	st->verify_first_bad = DTG_NONE;
	st->verify_last_bad = DTG_NONE;
	st->boot_us = (u32)udiv64((rdtsc() - boot0) * 1000000ull, (u32)tsc_hz, 0);
	st_end();
	puts_("dtguest: test region ");
	putu(test_pages);
	puts_(" pages at 64 MiB, tsc ");
	putu(udiv64(tsc_hz, 1000, 0));
	puts_(" kHz (");
	puts_(tsc_source);
	puts_("), boot ");
	putu(st->boot_us);
	puts_(" us, cmdline '");
	puts_(cl);
	puts_("'\n");

	last_seq = mb->cmd_seq;
	job.ack = st->ack_seq;
	have_boot = parse_cmdline(cl, &boot);
	if (have_boot) {
		job = boot;
		job.ack = 0;
		start(&job);
	} else {
		ack(DTG_ST_IDLE, 0);
	}
	for (;;) {
		u32 s = mb->cmd_seq;

		if (s != last_seq) {
			last_seq = s;
			barrier();
			job.cmd = mb->cmd;
			job.pattern = mb->pattern;
			job.pages = mb->pages;
			job.seed = mb->seed;
			job.wss = mb->wss;
			job.base = mb->base;
			job.rate = mb->rate;
			job.hot = mb->hot;
			job.exit_every = mb->exit_every;
			job.ack = s;
			start(&job);
			continue;
		}
		if (job.cmd == DTG_CMD_WRITE || job.cmd == DTG_CMD_RUN) {
			step(&job);
			continue;
		}
		idle_wait();
		if (++beat >= 100) { /* a heartbeat every ~100 ms while idle */
			beat = 0;
			st_begin();
			st->tsc_now = rdtsc();
			st->ticks = dtg_ticks;
			st_end();
		}
	}
}
