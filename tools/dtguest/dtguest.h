/* dtguest: the bare-metal test guest's memory layout and host interface.
 *
 * dtguest is a 32-bit multiboot ELF (no operating system) that QEMU boots
 * with -kernel. It runs in ring 0, flat protected mode, paging off, so a
 * guest-physical address (GPA) is the pointer it uses. Everything the host
 * needs to drive it lives at fixed GPAs; a host process reaches them by
 * mapping the guest's RAM file (memory-backend-file,share=on) at the same
 * offsets. All fields are little-endian; u64 fields are written by the
 * 32-bit guest as two stores, so the host reads the status block under its
 * seqlock (gen odd = being updated).
 *
 *   0x00100000  guest image: code, data, bss, 16 KiB stack       (private)
 *   0x00200000  mailbox, one page: the host writes, the guest only reads
 *   0x00201000  status, one page: the guest writes, the host only reads
 *   0x00400000  ledger: one u64 per test page, the last sequence number
 *               stamped into it (0 = never written)              (private)
 *   0x04000000  test region, to the end of the RAM range of the multiboot
 *               memory map that holds 64 MiB (capped below 4 GiB)
 *
 * Only the test region is written by the workload; the private area is
 * dirtied by the guest for its own bookkeeping (status page, ledger pages,
 * stack, data) and is not part of any exactness check.
 *
 * Every page write stamps, at offset 0: u32 DTG_PAGE_MAGIC, u32 test-page
 * index, u64 sequence number (16 bytes; the rest of the page is left as it
 * is), and sets the page's ledger entry to that sequence. Sequence numbers start at 1 and grow by one per page
 * write, so "the pages written in a phase" are exactly the test pages whose
 * stamp is in (status.seq before, status.seq after].
 */
#ifndef DTGUEST_H
#define DTGUEST_H

#define DTG_PAGE 4096u
#define DTG_MAILBOX_GPA 0x00200000u
#define DTG_STATUS_GPA 0x00201000u
#define DTG_LEDGER_GPA 0x00400000u
#define DTG_TEST_GPA 0x04000000u
#define DTG_LEDGER_MAX ((DTG_TEST_GPA - DTG_LEDGER_GPA) / 8u)

#define DTG_MB_MAGIC 0x4d475444u   /* "DTGM" (informative; the guest ignores it) */
#define DTG_ST_MAGIC 0x53475444u   /* "DTGS" */
#define DTG_PAGE_MAGIC 0x50475444u /* "DTGP" */
#define DTG_VERSION 1u
#define DTG_NONE 0xffffffffu

/* Commands (mailbox.cmd). The host fills every other field first, then
 * stores cmd_seq (any value different from the last one); the guest acts on
 * each change of cmd_seq and copies it to status.ack_seq:
 *   IDLE    stop any workload; ack when stopped (no test-region store after).
 *   WRITE   write `pages` pages (pattern/seed/wss/base/hot; paced at `rate`
 *           pages/s, 0 = as fast as it can), then ack and go idle.
 *   RUN     ack at once, then write continuously at `rate` (0 = unlimited)
 *           with the pattern until the next command.
 *   VERIFY  check every page with a nonzero ledger entry, then ack: result
 *           in status.verify_*.
 * A command that arrives while WRITE or RUN is in progress replaces it at
 * the next batch boundary (at most 64 pages later). */
enum { DTG_CMD_IDLE = 0, DTG_CMD_WRITE = 1, DTG_CMD_RUN = 2, DTG_CMD_VERIFY = 3 };

/* Patterns; W = wss (0 or too large: every test page from base), N = test pages.
 *   SEQUENTIAL  write i goes to base + (seed + i) mod W
 *   RANDOM      base + below(next(), W)
 *   HOTCOLD     u = below(next(), 100): if u < hot: base + below(next(), W)
 *               (the hot working set), else below(next(), N) (anywhere)
 * next(): x = x * 1664525 + 1013904223 (mod 2^32), x starting at seed;
 * below(x, n) = (x * n) >> 32 (64-bit product). Every command restarts the
 * stream/cursor from its own seed; RUN keeps it going across batches. */
enum { DTG_PAT_SEQUENTIAL = 0, DTG_PAT_RANDOM = 1, DTG_PAT_HOTCOLD = 2 };

/* Status states. */
enum { DTG_ST_BOOT = 0, DTG_ST_IDLE = 1, DTG_ST_WRITE = 2, DTG_ST_RUN = 3, DTG_ST_VERIFY = 4,
       DTG_ST_FAULT = 5 };

/* result: 0 ok, 1 unknown command, 2 bad pattern. */

#ifndef __ASSEMBLER__
typedef unsigned int dtg_u32;
typedef unsigned long long dtg_u64;

struct dtg_mailbox {     /* at DTG_MAILBOX_GPA */
	dtg_u32 magic;   /*  0 */
	dtg_u32 cmd_seq; /*  4: stored last */
	dtg_u32 cmd;     /*  8 */
	dtg_u32 pattern; /* 12 */
	dtg_u32 pages;   /* 16: WRITE: number of page writes */
	dtg_u32 seed;    /* 20 */
	dtg_u32 wss;     /* 24: window in pages, 0 = all from base */
	dtg_u32 base;    /* 28: first test page of the window */
	dtg_u32 rate;    /* 32: pages/s, 0 = unlimited */
	dtg_u32 hot;     /* 36: HOTCOLD: percent of writes into the window */
	dtg_u32 exit_every; /* 40: touch port 0x80 (a VM exit) every n pages, 0 = never */
};

struct dtg_status {            /* at DTG_STATUS_GPA */
	dtg_u32 magic;         /*   0 DTG_ST_MAGIC once booted */
	dtg_u32 version;       /*   4 */
	dtg_u32 gen;           /*   8 seqlock: odd while the guest updates */
	dtg_u32 state;         /*  12 DTG_ST_* */
	dtg_u32 ack_seq;       /*  16 cmd_seq of the last command accepted (RUN) or done */
	dtg_u32 result;        /*  20 of that command */
	dtg_u64 seq;           /*  24 last sequence number stamped */
	dtg_u64 pages_written; /*  32 page writes since boot */
	dtg_u64 tsc_hz;        /*  40 calibrated against the PIT at boot */
	dtg_u64 tsc_now;       /*  48 TSC at the last status update */
	dtg_u64 cmd_tsc;       /*  56 TSC when the current/last command started */
	dtg_u64 cmd_pages;     /*  64 page writes of the current/last command */
	dtg_u64 cmd_seq0;      /*  72 status.seq when that command started */
	dtg_u32 test_gfn;      /*  80 first test page's GPA >> 12 */
	dtg_u32 test_pages;    /*  84 pages in the test region */
	dtg_u32 verify_checked;   /*  88 pages with a ledger entry */
	dtg_u32 verify_bad;       /*  92 */
	dtg_u32 verify_first_bad; /*  96 test-page index, DTG_NONE if none */
	dtg_u32 verify_last_bad;  /* 100 */
	dtg_u32 ticks;            /* 104 1 kHz PIT ticks (updated on status writes) */
	dtg_u32 fault_vector;     /* 108 exception vector when state == FAULT */
	dtg_u32 fault_eip;        /* 112 */
	dtg_u32 cmd;              /* 116 command in progress / last done */
	dtg_u32 verify_us;        /* 120 duration of the last VERIFY, guest TSC */
	dtg_u32 boot_us;          /* 124 from entry to first idle, guest TSC */
	char cmdline[256];        /* 128 the multiboot command line (truncated) */
};
#endif
#endif
