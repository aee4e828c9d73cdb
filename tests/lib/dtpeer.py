"""A deliberately raw attach-protocol peer for tests: builds wire messages by
hand (see docs/protocol.md) so it can also build wrong ones."""
import array
import fcntl
import mmap
import os
import socket
import struct
import time

MAGIC = 0x4B525444
HDR = struct.Struct("<IHHIIIHH")  # magic version type flags len seq nfds reserved
T = dict(HELLO=1, WELCOME=2, REFUSE=3, ERROR=4, ACK=5, ADD_SLOT=6, REMOVE_SLOT=7,
         ADD_RING=8, ADD_BITMAP=9, RESET_RINGS=10, RESET_DONE=11, SYNC_BITMAP=12,
         SYNC_DONE=13, RING_FULL=14, DETACH=15, PING=16, PONG=17, MEMORY_SAMPLE=18)
NAMES = {v: k for k, v in T.items()}
F_ADD_SEALS, F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW = 1033, 1, 2, 4


def hello(name, vcpus=1, mode=1, page_size=4096, uuid=b"\0" * 16, caps=1 | 2 | 4 | 32,
          minv=1, maxv=1):
    return struct.pack("<HHIIIII16s32s64s", minv, maxv, page_size, vcpus, mode, caps, 0,
                       uuid, b"dtpeer", name.encode())


def add_slot(slot, gpa, pages):
    return struct.pack("<IIQQ", slot, 0, gpa, pages)


def add_ring(vcpu, entries, offset=0, fetch=0):
    return struct.pack("<IIQII", vcpu, entries, offset, fetch, 0)


def add_bitmap(slot, offset=0):
    return struct.pack("<IIQ", slot, 0, offset)


class Peer:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.settimeout(5)
        self.s.connect(path)
        self.seq = 0

    def send_raw(self, data, fds=()):
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        self.s.sendmsg([data], anc)

    def send(self, mtype, payload=b"", fds=(), nfds=None, version=1, magic=MAGIC, length=None,
             flags=0):
        self.seq += 1
        hdr = HDR.pack(magic, version, mtype, flags,
                       len(payload) if length is None else length, self.seq,
                       len(fds) if nfds is None else nfds, 0)
        self.send_raw(hdr + payload, fds)
        return self.seq

    def recv(self, until=None):
        """(type, payload) or None on EOF; answers and skips daemon requests.
        With `until` (a time.time() deadline), raises socket.timeout after it."""
        while True:
            if until is not None:
                left = until - time.time()  # read once: it may pass zero in between
                if left <= 0:
                    raise socket.timeout()
                self.s.settimeout(left)
            try:
                data = self.s.recv(8192)
            except ConnectionResetError:
                return None
            if not data:
                return None
            _, _, mtype, _, length, seq, _, _ = HDR.unpack_from(data)
            payload = data[HDR.size:HDR.size + length]
            if mtype in (T["RESET_RINGS"], T["SYNC_BITMAP"]):
                done = T["RESET_DONE"] if mtype == T["RESET_RINGS"] else T["SYNC_DONE"]
                try:
                    self.send(done, struct.pack("<IiQ", seq, 0, 0))
                except (BrokenPipeError, ConnectionResetError):
                    # the daemon asked before it read our DETACH and has closed
                    # since: its answer is still queued for us to read
                    pass
                continue
            return mtype, payload

    def pump(self, seconds):
        """Answer the daemon's requests for a while (a VMM's main loop)."""
        end = time.time() + seconds
        old = self.s.gettimeout()
        try:
            while time.time() < end:
                try:
                    if self.recv(until=end) is None:
                        return False
                except socket.timeout:
                    break
        finally:
            self.s.settimeout(old)
        return True

    def request(self, mtype, payload=b"", fds=()):
        self.send(mtype, payload, fds)
        return self.recv()

    def attach(self, name, **kw):
        r = self.request(T["HELLO"], hello(name, **kw))
        assert r and r[0] == T["WELCOME"], f"no WELCOME: {r}"
        return struct.unpack_from("<HHIQ", r[1])[2]  # vm id

    def closed(self):
        try:
            return self.recv() is None
        except socket.timeout:
            return False


def error_of(reply):
    """(errno, reason) of an ERROR/REFUSE reply."""
    err, _, _, _ = struct.unpack_from("<iHHI", reply[1])
    reason = reply[1][16:].split(b"\0")[0].decode()
    return err, reason


def memfd(size, seals=F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL):
    fd = os.memfd_create("dtpeer", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, size)
    if seals:
        fcntl.fcntl(fd, F_ADD_SEALS, seals)
    return fd


class Ring:
    """A KVM-layout dirty ring in a memfd."""

    def __init__(self, entries):
        self.entries = entries
        self.fd = memfd(entries * 16)
        self.m = mmap.mmap(self.fd, entries * 16)
        self.index = 0

    def push(self, slot, offset):
        e = (self.index % self.entries) * 16
        flags = struct.unpack_from("<I", self.m, e)[0]
        assert flags in (0,), f"pushing onto an un-reset entry (flags {flags})"
        struct.pack_into("<IQ", self.m, e + 4, slot, offset)
        struct.pack_into("<I", self.m, e, 1)  # DIRTY last (x86 stores are ordered)
        self.index += 1

    def flags(self, i):
        return struct.unpack_from("<I", self.m, (i % self.entries) * 16)[0]

    def reset(self, upto):
        """What KVM_RESET_DIRTY_RINGS does: clear harvested entries in order."""
        n = 0
        for i in range(upto):
            if self.flags(i) & 2:
                struct.pack_into("<I", self.m, (i % self.entries) * 16, 0)
                n += 1
        return n
