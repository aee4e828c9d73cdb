#!/usr/bin/env python3
"""Host-side harness for dtguest, the bare-metal test guest (tools/dtguest).

Starts and stops QEMU with the guest, speaks QMP, drives the guest through
its mailbox in the guest's RAM file (memory-backend-file,share=on, mapped
here), and reads ground truth straight from that file: every page the guest
writes carries a sequence-number stamp, so "which test pages were written in
a phase" is a scan for stamps in a sequence range. Python 3 standard library
only; usable as a module (Qemu, QMP, Guest, migrate, expected_pages) and as a
CLI (python3 tests/lib/dtguest.py --help).

Layout (see tools/dtguest/dtguest.h, the contract):
  0x00200000 mailbox (host writes), 0x00201000 status (guest writes),
  0x00400000 ledger (u64 per test page), 0x04000000 test region.
"""
import argparse
import json
import mmap
import os
import shlex
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid as uuidlib

PAGE = 4096
MAILBOX = 0x00200000
STATUS = 0x00201000
LEDGER = 0x00400000
TEST = 0x04000000
MB_MAGIC = 0x4D475444
ST_MAGIC = 0x53475444
PAGE_MAGIC = 0x50475444
NONE = 0xFFFFFFFF

CMD = {"idle": 0, "write": 1, "run": 2, "verify": 3}
PATTERN = {"sequential": 0, "seq": 0, "random": 1, "hotcold": 2}
PATTERN_NAME = {0: "sequential", 1: "random", 2: "hotcold"}
STATE = {0: "boot", 1: "idle", 2: "write", 3: "run", 4: "verify", 5: "fault"}

# struct dtg_mailbox: magic cmd_seq cmd pattern pages seed wss base rate hot exit_every
MB = struct.Struct("<11I")
# struct dtg_status up to boot_us (offset 0..127), then cmdline[256]
ST = struct.Struct("<6I7Q12I")
ST_FIELDS = ("magic version gen state ack_seq result seq pages_written tsc_hz tsc_now "
             "cmd_tsc cmd_pages cmd_seq0 test_gfn test_pages verify_checked verify_bad "
             "verify_first_bad verify_last_bad ticks fault_vector fault_eip cmd verify_us "
             "boot_us").split()
assert ST.size == 128
HEAD = struct.Struct("<IIQ")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
QBOOT = "/usr/share/qemu/qboot.rom"


class DtgError(Exception):
    pass


def parse_size(s):
    """'256M', '1G', '65536K' or bytes -> bytes."""
    if isinstance(s, int):
        return s
    s = str(s).strip().upper().rstrip("B").rstrip("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if s and s[-1] in mult:
        return int(float(s[:-1]) * mult[s[-1]])
    return int(s)


# --- the guest, through its RAM file ------------------------------------------

class Guest:
    """The guest seen through its RAM file: mailbox, status, stamps, ledger."""

    def __init__(self, mem_file, wait_file=10.0):
        end = time.monotonic() + wait_file
        while not (os.path.exists(mem_file) and os.path.getsize(mem_file) > TEST):
            if time.monotonic() > end:
                raise DtgError(f"{mem_file}: no guest RAM file (or smaller than 64 MiB)")
            time.sleep(0.01)
        self.path = mem_file
        self.fd = os.open(mem_file, os.O_RDWR)
        self.size = os.fstat(self.fd).st_size
        self.m = mmap.mmap(self.fd, self.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)

    def close(self):
        if self.m is not None:
            self.m.close()
            os.close(self.fd)
            self.m = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # status --------------------------------------------------------------
    def status(self, timeout=5.0):
        """The status block as a dict, read consistently (seqlock)."""
        m = self.m
        end = None
        n = 0
        while True:
            n += 1
            if n % 64 == 0:
                # the vCPU may be descheduled mid-update: back off, bounded
                end = end or time.monotonic() + timeout
                if time.monotonic() > end:
                    break
                time.sleep(0.0001)
            g1 = struct.unpack_from("<I", m, STATUS + 8)[0]
            if g1 & 1:
                continue
            raw = ST.unpack_from(m, STATUS)
            cl = bytes(m[STATUS + 128:STATUS + 384])
            g2 = struct.unpack_from("<I", m, STATUS + 8)[0]
            if g1 == g2:
                d = dict(zip(ST_FIELDS, raw))
                d["state_name"] = STATE.get(d["state"], str(d["state"]))
                d["cmdline"] = cl.split(b"\0", 1)[0].decode(errors="replace")
                d["host_time"] = time.monotonic()
                return d
        raise DtgError("status block never stable (guest stuck mid-update?)")

    def booted(self):
        s = self.status()
        return s["magic"] == ST_MAGIC and s["state"] != 0

    def wait_booted(self, timeout=30.0, proc=None):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.booted():
                s = self.status()
                if s["state"] == 5:
                    raise DtgError(f"guest fault: vector {s['fault_vector']} eip {s['fault_eip']:#x}")
                return s
            if proc is not None and proc.poll() is not None:
                raise DtgError(f"QEMU exited ({proc.returncode}) before the guest booted")
            time.sleep(0.005)
        raise DtgError(f"guest did not boot within {timeout} s")

    # mailbox ---------------------------------------------------------------
    def mailbox(self):
        return dict(zip("magic cmd_seq cmd pattern pages seed wss base rate hot exit_every".split(),
                        MB.unpack_from(self.m, MAILBOX)))

    def post(self, cmd, pattern="random", pages=0, seed=0, wss=0, base=0, rate=0, hot=90,
             exit_every=0):
        """Post a command; returns its sequence number (not waiting)."""
        if self.status()["magic"] != ST_MAGIC:
            raise DtgError("guest not booted: a command now would be missed")
        c = CMD[cmd] if isinstance(cmd, str) else int(cmd)
        p = PATTERN[pattern] if isinstance(pattern, str) else int(pattern)
        seq = (struct.unpack_from("<I", self.m, MAILBOX + 4)[0] + 1) & 0xFFFFFFFF
        # every argument first, cmd_seq last (x86 keeps stores in order)
        self.m[MAILBOX + 8:MAILBOX + MB.size] = MB.pack(MB_MAGIC, 0, c, p, pages, seed, wss, base,
                                                        rate, hot, exit_every)[8:]
        struct.pack_into("<I", self.m, MAILBOX, MB_MAGIC)
        struct.pack_into("<I", self.m, MAILBOX + 4, seq)
        return seq

    def wait_ack(self, seq, timeout=30.0):
        end = time.monotonic() + timeout
        while True:
            s = self.status()
            if s["ack_seq"] == seq:
                return s
            if s["state"] == 5:
                raise DtgError(f"guest fault: vector {s['fault_vector']} eip {s['fault_eip']:#x}")
            if time.monotonic() > end:
                raise DtgError(f"no ack for command {seq} within {timeout} s (state {s['state_name']}, "
                               f"ack {s['ack_seq']})")
            time.sleep(0.001)

    def command(self, cmd, timeout=None, **kw):
        """Post and wait for the ack; the status after it."""
        if timeout is None:
            timeout = 30.0
            if cmd == "write" and kw.get("rate"):
                timeout += kw.get("pages", 0) / kw["rate"] * 1.5
        t0 = time.monotonic()
        s = self.wait_ack(self.post(cmd, **kw), timeout)
        if s["result"]:
            raise DtgError(f"{cmd}: guest refused it (result {s['result']})")
        s["elapsed"] = s["host_time"] - t0
        return s

    def idle(self):
        """Stop any workload: once acked, the guest stores nothing more into the test region."""
        return self.command("idle")

    def write(self, pages, pattern="random", seed=0, wss=0, base=0, rate=0, hot=90, exit_every=0,
              timeout=None):
        """WRITE `pages` page writes; returns the phase: {seq_from, seq_to, ...}. The test
        pages written are exactly truth(seq_from, seq_to)."""
        s = self.command("write", pages=pages, pattern=pattern, seed=seed, wss=wss, base=base,
                         rate=rate, hot=hot, exit_every=exit_every, timeout=timeout)
        return {"seq_from": s["cmd_seq0"], "seq_to": s["seq"], "writes": s["cmd_pages"],
                "elapsed": s["elapsed"],
                "guest_seconds": (s["tsc_now"] - s["cmd_tsc"]) / s["tsc_hz"] if s["tsc_hz"] else None}

    def run(self, rate=0, pattern="random", seed=0, wss=0, base=0, hot=90, exit_every=0):
        """RUN: the guest writes continuously, paced by itself at `rate` pages/s (0 = flat out),
        until the next command. Returns the status at the ack."""
        return self.command("run", rate=rate, pattern=pattern, seed=seed, wss=wss, base=base,
                            hot=hot, exit_every=exit_every)

    def verify(self, timeout=60.0):
        """VERIFY in the guest: every page with a ledger entry checked against it."""
        s = self.command("verify", timeout=timeout)
        return {"checked": s["verify_checked"], "bad": s["verify_bad"],
                "first_bad": None if s["verify_first_bad"] == NONE else s["verify_first_bad"],
                "last_bad": None if s["verify_last_bad"] == NONE else s["verify_last_bad"],
                "guest_us": s["verify_us"]}

    def measure_rate(self, seconds=2.0):
        """Page writes per second over `seconds`, by the host clock and by the guest's TSC."""
        a = self.status()
        time.sleep(seconds)
        b = self.status()
        dp = b["pages_written"] - a["pages_written"]
        dh = b["host_time"] - a["host_time"]
        dg = (b["tsc_now"] - a["tsc_now"]) / b["tsc_hz"] if b["tsc_hz"] else 0
        return {"pages": dp, "host_seconds": dh, "host_rate": dp / dh if dh > 0 else 0,
                "guest_seconds": dg, "guest_rate": dp / dg if dg > 0 else 0}

    # ground truth -------------------------------------------------------------
    def test_pages(self):
        n = self.status()["test_pages"]
        return n or (self.size - TEST) // PAGE

    def stamp(self, idx):
        """(magic, index, seq) at the head of test page idx."""
        return HEAD.unpack_from(self.m, TEST + idx * PAGE)

    def truth(self, seq_from=0, seq_to=None, gfn=False):
        """Sorted test-page indices (or GFNs) whose stamp has seq in (seq_from, seq_to]:
        the pages written in that phase (each page holds its last write's stamp)."""
        if seq_to is None:
            seq_to = 1 << 64
        n = self.test_pages()
        m, unpack, out = self.m, HEAD.unpack_from, []
        base = TEST
        for i in range(n):
            mg, ix, sq = unpack(m, base + i * PAGE)
            if mg == PAGE_MAGIC and ix == i and seq_from < sq <= seq_to:
                out.append(i)
        if gfn:
            g = TEST // PAGE
            out = [g + i for i in out]
        return out

    def ledger(self, idx):
        return struct.unpack_from("<Q", self.m, LEDGER + 8 * idx)[0]

    def host_verify(self):
        """The guest's VERIFY done from the host on the RAM file (the guest idle or paused)."""
        n = self.test_pages()
        checked = bad = 0
        first = last = None
        for i in range(n):
            seq = self.ledger(i)
            if not seq:
                continue
            checked += 1
            off = TEST + i * PAGE
            if HEAD.unpack_from(self.m, off) != (PAGE_MAGIC, i, seq):
                bad += 1
                first = i if first is None else first
                last = i
        return {"checked": checked, "bad": bad, "first_bad": first, "last_bad": last}

    def corrupt(self, idx, what="stamp"):
        """Damage test page idx: its stamp's sequence ('stamp') or its ledger entry
        ('ledger')."""
        if what == "stamp":
            off = TEST + idx * PAGE + 8
        elif what == "ledger":
            off = LEDGER + 8 * idx
        else:
            raise DtgError(f"corrupt: what is stamp or ledger, not {what}")
        v = struct.unpack_from("<Q", self.m, off)[0]
        struct.pack_into("<Q", self.m, off, v ^ (1 << 40))


def _below(x, n):
    return (x * n) >> 32


def expected_pages(test_pages, pages, pattern="random", seed=0, wss=0, base=0, hot=90):
    """The guest's WRITE pattern recomputed: the list of test-page indices it writes,
    in order (see dtguest.h for the definition)."""
    n = test_pages
    p = PATTERN[pattern] if isinstance(pattern, str) else int(pattern)
    if wss == 0 or base >= n or wss > n - base:
        wss = n - base if base < n else 0
    hot = min(hot, 100)
    x = seed & 0xFFFFFFFF
    cur = seed % wss if wss else 0
    out = []
    append = out.append
    for _ in range(pages):
        if p == 0:
            append(base + cur)
            cur = 0 if cur + 1 == wss else cur + 1
        elif p == 1:
            x = (x * 1664525 + 1013904223) & 0xFFFFFFFF
            append(base + _below(x, wss))
        else:
            x = (x * 1664525 + 1013904223) & 0xFFFFFFFF
            u = _below(x, 100)
            x = (x * 1664525 + 1013904223) & 0xFFFFFFFF
            append(base + _below(x, wss) if u < hot else _below(x, n))
    return out


# --- QMP --------------------------------------------------------------------------

class QMP:
    """A small QMP client: one command at a time, events kept in .events."""

    def __init__(self, path, timeout=10.0):
        end = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.monotonic() > end:
                    raise DtgError(f"QMP: cannot connect to {path}")
                time.sleep(0.02)
        self.s.settimeout(timeout)
        self.f = self.s.makefile("rb")
        self.events = []
        greeting = self._read()
        if "QMP" not in greeting:
            raise DtgError(f"QMP: bad greeting {greeting}")
        self.cmd("qmp_capabilities")

    def _read(self):
        line = self.f.readline()
        if not line:
            raise DtgError("QMP: connection closed")
        return json.loads(line)

    def cmd(self, execute, **args):
        msg = {"execute": execute}
        if args:
            msg["arguments"] = {k.replace("_", "-") if k not in ("uri",) else k: v
                                for k, v in args.items()}
        self.s.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r:
                raise DtgError(f"QMP {execute}: {r['error'].get('class')}: {r['error'].get('desc')}")
            return r.get("return")

    def raw(self, execute, arguments=None):
        """A command with its arguments exactly as given (no name mangling)."""
        msg = {"execute": execute}
        if arguments:
            msg["arguments"] = arguments
        self.s.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r:
                raise DtgError(f"QMP {execute}: {r['error'].get('class')}: {r['error'].get('desc')}")
            return r.get("return")

    def query_status(self):
        return self.cmd("query-status")

    def query_migrate(self):
        return self.cmd("query-migrate")

    def migrate_set_parameters(self, **params):
        return self.cmd("migrate-set-parameters", **params)

    def migrate_set_capabilities(self, **caps):
        return self.cmd("migrate-set-capabilities",
                        capabilities=[{"capability": k.replace("_", "-"), "state": bool(v)}
                                      for k, v in caps.items()])

    def migrate(self, uri):
        return self.cmd("migrate", uri=uri)

    def quit(self):
        try:
            self.cmd("quit")
        except (DtgError, OSError):
            pass  # the connection goes down with QEMU

    def close(self):
        try:
            self.f.close()
            self.s.close()
        except OSError:
            pass


# --- QEMU -------------------------------------------------------------------------

def default_kernel():
    b = os.environ.get("BUILD", os.path.join(ROOT, "build"))
    if not os.path.isabs(b):
        b = os.path.join(os.getcwd(), b)
    return os.path.join(b, "dtguest.elf")


class Qemu:
    """One QEMU process running dtguest.

    workdir holds the QMP socket, QEMU's log and the debug console (the
    guest's boot line); mem_file (default: /dev/shm, not on disk) is the
    guest RAM that Guest maps. bios='auto' uses qboot when installed (boots
    in ~0.25 s here instead of SeaBIOS's ~3 s; both sides of a migration must
    use the same). preload= sets LD_PRELOAD; env= adds variables; extra_args
    go at the end of QEMU's command line; incoming= starts it waiting for a
    migration (no boot wait then)."""

    def __init__(self, workdir, name="dtguest", memory="256M", uuid=None, mem_file=None,
                 qmp=None, kernel=None, append="", machine="q35", bios="auto", accel="kvm",
                 preload=None, env=None, extra_args=(), incoming=None, qemu="qemu-system-x86_64",
                 smp=1):
        self.workdir = os.path.abspath(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.name = name
        self.size = parse_size(memory)
        if self.size < TEST + (8 << 20):
            raise DtgError("memory: at least 72 MiB (the test region starts at 64 MiB)")
        self.uuid = uuid or str(uuidlib.uuid4())
        self.mem_file = mem_file or f"/dev/shm/dtguest-{os.getpid()}-{name}.ram"
        self.qmp_path = qmp or os.path.join(self.workdir, f"{name}.qmp")
        self.log = os.path.join(self.workdir, f"{name}.log")
        self.console = os.path.join(self.workdir, f"{name}.console")
        self.kernel = kernel or default_kernel()
        self.append = append
        self.machine = machine
        self.bios = QBOOT if bios == "auto" and os.path.exists(QBOOT) else (
            None if bios in ("auto", "seabios", "", None) else bios)
        self.accel = accel
        self.preload = preload
        self.env = dict(env or {})
        self.extra_args = list(extra_args)
        self.incoming = incoming
        self.qemu = qemu
        self.smp = smp
        self.proc = None
        self.qmp = None
        self._guest = None
        self.t_start = None

    def argv(self):
        mb = self.size >> 20
        a = [self.qemu, "-accel", self.accel, "-machine", f"{self.machine},memory-backend=ram",
             "-cpu", "host,-arch-capabilities" if self.accel.split(",")[0] == "kvm" else "max",
             "-nodefaults", "-display", "none", "-no-user-config",
             "-m", f"{mb}M", "-smp", str(self.smp),
             "-object", f"memory-backend-file,id=ram,size={mb}M,mem-path={self.mem_file},share=on",
             "-kernel", self.kernel, "-append", self.append,
             "-name", self.name, "-uuid", self.uuid,
             "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
             "-debugcon", f"file:{self.console}"]
        if self.bios:
            a += ["-bios", self.bios]
        if self.incoming:
            a += ["-incoming", self.incoming]
        return a + self.extra_args

    def start(self, wait=True, timeout=30.0):
        if not os.path.exists(self.kernel):
            raise DtgError(f"{self.kernel}: no guest (make builds it)")
        for p in (self.mem_file, self.qmp_path):
            if os.path.exists(p):
                os.unlink(p)  # fresh RAM is zero: no stale stamps or mailbox
        env = dict(os.environ)
        env.update(self.env)
        if self.preload:
            env["LD_PRELOAD"] = self.preload
        with open(self.log, "ab") as log:
            log.write(("+ " + " ".join(shlex.quote(x) for x in self.argv()) + "\n").encode())
            log.flush()
            self.t_start = time.monotonic()
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        try:
            self.qmp = QMP(self.qmp_path, timeout=timeout)
        except DtgError:
            raise DtgError(f"QEMU did not come up: {self.log_tail()}")
        if wait and not self.incoming:
            self.guest().wait_booted(timeout, self.proc)
            self.boot_seconds = time.monotonic() - self.t_start
        return self

    def guest(self):
        if self._guest is None:
            self._guest = Guest(self.mem_file)
        return self._guest

    def log_tail(self, n=15):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0, remove_mem=True):
        """quit over QMP, then SIGKILL if it lingers; removes the RAM file."""
        if self.proc is not None and self.proc.poll() is None:
            if self.qmp is not None:
                self.qmp.quit()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.qmp is not None:
            self.qmp.close()
            self.qmp = None
        if self._guest is not None:
            self._guest.close()
            self._guest = None
        if remove_mem and os.path.exists(self.mem_file):
            os.unlink(self.mem_file)
        return self.proc.returncode if self.proc is not None else None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


def migrate(src_qmp, dst_qmp, uri, timeout=120.0, max_bandwidth=8 << 30, downtime_limit=None,
            parameters=None, capabilities=None, poll=0.05):
    """Live-migrate: src_qmp/dst_qmp are QMP objects (or socket paths); the destination
    was started with -incoming URI. Waits for completion and for the destination to
    run; returns query-migrate's figures plus the host-measured wall time.
    max_bandwidth: bytes/s (QEMU's default, 32 MiB/s, would make this slow)."""
    own = []
    if isinstance(src_qmp, str):
        src_qmp = QMP(src_qmp)
        own.append(src_qmp)
    if isinstance(dst_qmp, str):
        dst_qmp = QMP(dst_qmp)
        own.append(dst_qmp)
    try:
        params = dict(parameters or {})
        if max_bandwidth:
            params.setdefault("max-bandwidth", int(max_bandwidth))
        if downtime_limit is not None:
            params.setdefault("downtime-limit", int(downtime_limit))
        if params:
            src_qmp.raw("migrate-set-parameters", params)
        if capabilities:
            src_qmp.migrate_set_capabilities(**capabilities)
        t0 = time.monotonic()
        src_qmp.migrate(uri)
        end = t0 + timeout
        while True:
            q = src_qmp.query_migrate()
            st = q.get("status")
            if st == "completed":
                break
            if st in ("failed", "cancelled"):
                raise DtgError(f"migration {st}: {q.get('error-desc', q)}")
            if time.monotonic() > end:
                src_qmp.cmd("migrate_cancel")
                raise DtgError(f"migration not done in {timeout} s: {q}")
            time.sleep(poll)
        wall = time.monotonic() - t0
        while dst_qmp.query_status().get("status") != "running":
            if time.monotonic() > end:
                raise DtgError(f"destination not running: {dst_qmp.query_status()}")
            time.sleep(poll)
        ram = q.get("ram", {})
        return {"status": q["status"], "total_time_ms": q.get("total-time"),
                "downtime_ms": q.get("downtime"), "setup_time_ms": q.get("setup-time"),
                "ram_transferred": ram.get("transferred"), "ram_total": ram.get("total"),
                "ram_duplicate_pages": ram.get("duplicate"), "ram_normal_pages": ram.get("normal"),
                "dirty_sync_count": ram.get("dirty-sync-count"), "mbps": ram.get("mbps"),
                "wall_seconds": wall, "query_migrate": q,
                "source_status": src_qmp.query_status().get("status")}
    finally:
        for q in own:
            q.close()


# --- CLI -------------------------------------------------------------------------

def _out(obj):
    json.dump(obj, sys.stdout, indent=None, sort_keys=True)
    sys.stdout.write("\n")


def _workload_args(p, pages=False):
    if pages:
        p.add_argument("--pages", type=int, required=True, help="page writes")
    p.add_argument("--pattern", choices=["sequential", "random", "hotcold"], default="random")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--wss", type=int, default=0, help="window in pages (0 = every test page)")
    p.add_argument("--base", type=int, default=0, help="first test page of the window")
    p.add_argument("--hot", type=int, default=90, help="hotcold: percent of writes in the window")
    p.add_argument("--rate", type=int, default=0, help="pages/s (0 = as fast as it can)")
    p.add_argument("--exit-every", type=int, default=0, help="a VM exit every n pages")


def _wl(a):
    return dict(pattern=a.pattern, seed=a.seed, wss=a.wss, base=a.base, hot=a.hot, rate=a.rate,
                exit_every=a.exit_every)


def cli_start(a):
    env = dict(kv.split("=", 1) for kv in a.env)
    extra = a.extra[1:] if a.extra[:1] == ["--"] else a.extra
    q = Qemu(a.workdir, name=a.name, memory=a.memory, uuid=a.uuid, mem_file=a.mem_file, qmp=a.qmp,
             kernel=a.kernel, append=a.append, machine=a.machine, bios=a.bios, accel=a.accel,
             preload=a.preload, env=env, extra_args=extra, incoming=a.incoming)
    try:
        q.start(wait=not a.no_wait, timeout=a.timeout)
    except DtgError as e:
        if q.proc and q.proc.poll() is None:
            q.proc.kill()
        print(f"dtguest start: {e}\n{q.log_tail()}", file=sys.stderr)
        return 1
    if a.pidfile:
        with open(a.pidfile, "w") as f:
            f.write(f"{q.proc.pid}\n")
    info = {"pid": q.proc.pid, "qmp": q.qmp_path, "mem_file": q.mem_file, "log": q.log,
            "console": q.console, "uuid": q.uuid, "name": q.name, "argv": q.argv()}
    if not a.no_wait and not a.incoming:
        info["boot_seconds"] = round(q.boot_seconds, 3)
        info["status"] = q.guest().status()
    q.qmp.close()
    _out(info)
    return 0


def cli_stop(a):
    pid = None
    if a.pidfile and os.path.exists(a.pidfile):
        with open(a.pidfile) as f:
            pid = int(f.read().split()[0])
    try:
        q = QMP(a.qmp, timeout=3)
        q.quit()
        q.close()
    except DtgError:
        pass
    if pid:
        end = time.monotonic() + a.timeout
        while time.monotonic() < end:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if a.mem_file and os.path.exists(a.mem_file):
        os.unlink(a.mem_file)
    return 0


def cli_cmd(a):
    g = Guest(a.mem)
    try:
        if a.op == "status":
            _out(g.status())
        elif a.op == "wait-boot":
            _out(g.wait_booted(a.timeout))
        elif a.op == "idle":
            _out(g.idle())
        elif a.op == "write":
            ph = g.write(a.pages, timeout=a.timeout, **_wl(a))
            if a.check:
                exp = sorted(set(expected_pages(g.test_pages(), a.pages, a.pattern, a.seed, a.wss,
                                                a.base, a.hot)))
                got = g.truth(ph["seq_from"], ph["seq_to"])
                ph.update(distinct=len(got), expected=len(exp), exact=got == exp,
                          missing=sorted(set(exp) - set(got))[:20],
                          extra=sorted(set(got) - set(exp))[:20])
            _out(ph)
            if a.check and not ph["exact"]:
                return 1
        elif a.op == "run":
            _out(g.run(**_wl(a)))
        elif a.op == "verify":
            r = g.verify(a.timeout)
            _out(r)
        elif a.op == "host-verify":
            _out(g.host_verify())
        elif a.op == "truth":
            pages = g.truth(a.seq_from, a.seq_to, gfn=a.gfn)
            if a.list:
                sys.stdout.write("".join(f"{p}\n" for p in pages))
            else:
                _out({"seq_from": a.seq_from, "seq_to": a.seq_to, "count": len(pages),
                      "unit": "gfn" if a.gfn else "test_page", "pages": pages})
        elif a.op == "expect":
            pages = sorted(set(expected_pages(g.test_pages(), a.pages, a.pattern, a.seed, a.wss,
                                              a.base, a.hot)))
            if a.gfn:
                pages = [TEST // PAGE + p for p in pages]
            if a.list:
                sys.stdout.write("".join(f"{p}\n" for p in pages))
            else:
                _out({"count": len(pages), "pages": pages})
        elif a.op == "rate":
            _out(g.measure_rate(a.seconds))
        elif a.op == "corrupt":
            g.corrupt(a.page, a.what)
            _out({"corrupted": a.page, "what": a.what})
        elif a.op == "stamp":
            mg, ix, sq = g.stamp(a.page)
            _out({"page": a.page, "magic_ok": mg == PAGE_MAGIC, "index": ix, "seq": sq,
                  "ledger": g.ledger(a.page)})
    finally:
        g.close()
    return 0


def cli_qmp(a):
    q = QMP(a.qmp)
    try:
        args = json.loads(a.arguments) if a.arguments else None
        _out(q.raw(a.execute, args))
    finally:
        q.close()
    return 0


def cli_migrate(a):
    r = migrate(a.src, a.dst, a.uri, timeout=a.timeout, max_bandwidth=parse_size(a.max_bandwidth),
                downtime_limit=a.downtime_limit)
    if not a.full:
        r.pop("query_migrate", None)
    _out(r)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="dtguest.py", description=__doc__.split("\n\n")[0],
        epilog="examples:\n"
        "  dtguest.py start --workdir /tmp/g --name src --memory 256M --mem-file /dev/shm/src.ram\n"
        "  dtguest.py cmd --mem /dev/shm/src.ram write --pages 1000 --pattern random --seed 3 --check\n"
        "  dtguest.py cmd --mem /dev/shm/src.ram run --rate 20000 --pattern hotcold --wss 5000\n"
        "  dtguest.py cmd --mem /dev/shm/src.ram truth --seq-from 0 --seq-to 1000 --list\n"
        "  dtguest.py start ... --name dst --incoming unix:/tmp/g/mig.sock --no-wait\n"
        "  dtguest.py migrate --src /tmp/g/src.qmp --dst /tmp/g/dst.qmp --uri unix:/tmp/g/mig.sock\n"
        "  dtguest.py cmd --mem /dev/shm/dst.ram verify\n"
        "  dtguest.py stop --qmp /tmp/g/src.qmp --pidfile /tmp/g/src.pid --mem-file /dev/shm/src.ram",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)

    p = sub.add_parser("start", help="start QEMU with the guest (detached); prints JSON")
    p.add_argument("--workdir", required=True, help="QMP socket, logs")
    p.add_argument("--name", default="dtguest")
    p.add_argument("--memory", default="256M")
    p.add_argument("--uuid")
    p.add_argument("--mem-file", help="guest RAM file (default /dev/shm/dtguest-PID-NAME.ram)")
    p.add_argument("--qmp", help="QMP socket path (default WORKDIR/NAME.qmp)")
    p.add_argument("--kernel", help="guest ELF (default $BUILD/dtguest.elf)")
    p.add_argument("--append", default="", help='workload at boot, e.g. "rate=5000 pattern=random wss=20000"')
    p.add_argument("--machine", default="q35")
    p.add_argument("--bios", default="auto", help="auto (qboot if installed), seabios, or a path")
    p.add_argument("--accel", default="kvm")
    p.add_argument("--preload", help="LD_PRELOAD for QEMU")
    p.add_argument("--env", action="append", default=[], metavar="K=V")
    p.add_argument("--incoming", help="migration URI to listen on (no boot wait)")
    p.add_argument("--pidfile")
    p.add_argument("--no-wait", action="store_true", help="do not wait for the guest to boot")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("extra", nargs=argparse.REMAINDER, help="-- then extra QEMU arguments")
    p.set_defaults(fn=cli_start)

    p = sub.add_parser("stop", help="quit QEMU (QMP), kill it if it lingers, remove its RAM file")
    p.add_argument("--qmp", required=True)
    p.add_argument("--pidfile")
    p.add_argument("--mem-file")
    p.add_argument("--timeout", type=float, default=10.0)
    p.set_defaults(fn=cli_stop)

    p = sub.add_parser("cmd", help="drive the guest / read truth through its RAM file")
    p.add_argument("--mem", required=True, help="the guest RAM file")
    cs = p.add_subparsers(dest="op", required=True)
    c = cs.add_parser("status")
    c = cs.add_parser("wait-boot")
    c.add_argument("--timeout", type=float, default=30.0)
    cs.add_parser("idle")
    c = cs.add_parser("write", help="WRITE n pages, wait for the ack; prints the seq range")
    _workload_args(c, pages=True)
    c.add_argument("--check", action="store_true",
                   help="compare the truth with the recomputed pattern, page for page")
    c.add_argument("--timeout", type=float)
    c = cs.add_parser("run", help="RUN at a rate until the next command")
    _workload_args(c)
    c = cs.add_parser("verify", help="VERIFY in the guest")
    c.add_argument("--timeout", type=float, default=60.0)
    cs.add_parser("host-verify", help="the same check, done from the host")
    c = cs.add_parser("truth", help="test pages whose stamp seq is in (FROM, TO]")
    c.add_argument("--seq-from", type=int, default=0)
    c.add_argument("--seq-to", type=int)
    c.add_argument("--gfn", action="store_true", help="guest frame numbers, not test-page indices")
    c.add_argument("--list", action="store_true", help="one per line instead of JSON")
    c = cs.add_parser("expect", help="the distinct pages a WRITE with these arguments writes")
    _workload_args(c, pages=True)
    c.add_argument("--gfn", action="store_true")
    c.add_argument("--list", action="store_true")
    c = cs.add_parser("rate", help="achieved page writes/s over a window")
    c.add_argument("--seconds", type=float, default=2.0)
    c = cs.add_parser("corrupt", help="damage one test page's stamp or ledger entry")
    c.add_argument("--page", type=int, required=True)
    c.add_argument("--what", choices=["stamp", "ledger"], default="stamp")
    c = cs.add_parser("stamp", help="one test page's stamp and ledger entry")
    c.add_argument("--page", type=int, required=True)
    p.set_defaults(fn=cli_cmd)

    p = sub.add_parser("qmp", help="one QMP command; prints its return")
    p.add_argument("--qmp", required=True)
    p.add_argument("execute")
    p.add_argument("arguments", nargs="?", help="JSON object")
    p.set_defaults(fn=cli_qmp)

    p = sub.add_parser("migrate", help="live-migrate SRC to DST (started with --incoming URI)")
    p.add_argument("--src", required=True, help="source QMP socket")
    p.add_argument("--dst", required=True, help="destination QMP socket")
    p.add_argument("--uri", required=True)
    p.add_argument("--max-bandwidth", default="8G", help="bytes/s (suffixes K M G)")
    p.add_argument("--downtime-limit", type=int, help="ms")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--full", action="store_true", help="include query-migrate's whole answer")
    p.set_defaults(fn=cli_migrate)

    a = ap.parse_args(argv)
    try:
        return a.fn(a)
    except DtgError as e:
        print(f"dtguest: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
