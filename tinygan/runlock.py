"""One run per output folder: a lock file that holds the running process's id.

    with RunLock("runs/pokemon"):       # RunLockedError if another live run holds it
        ...train, writing into runs/pokemon...

The lock is the file ``FOLDER/.tinygan-run.lock``, created with ``O_CREAT | O_EXCL`` —
the operating system creates it for exactly one of two runs that try at the same moment —
and holding one line of JSON: the process id, host name, start time and command line. It
is removed when the ``with`` block ends, however it ends (an exception, Ctrl-C).

A run killed outright (SIGKILL, a power cut) leaves its lock behind. The next run reads
it and takes it over, saying so, when it is stale:

* the process id no longer exists (``os.kill(pid, 0)`` raises ProcessLookupError), or it
  now belongs to a process that started after the lock was written (a reused id; checked
  where ``/proc`` tells start times);
* the file is not a lock at all (empty, truncated, not JSON).

A lock written on another host cannot be checked from here, so it counts as held; the
message says which host, and that the file may be deleted if no run is using it.
"""
import json
import os
import socket
import sys
import time

LOCK_NAME = ".tinygan-run.lock"
_held_here = set()      # lock paths this process holds now (a pid equal to ours is not enough)


class RunLockedError(RuntimeError):
    """Another run holds the output folder; the message is one line saying what to do."""


class RunLock:
    """``with RunLock(folder, log=print):`` — hold ``folder`` for one run (see the module docstring).

    ``log`` gets a one-line message when a stale lock is taken over. ``acquire`` and
    ``release`` are the two halves of the ``with`` block, for callers that need them apart.
    """

    def __init__(self, folder, log=print):
        self.folder = os.fspath(folder)
        self.path = os.path.join(self.folder, LOCK_NAME)
        self.log = log
        self._content = None          # the bytes we wrote, while we hold the lock

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()

    def acquire(self):
        os.makedirs(self.folder, exist_ok=True)
        content = (json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                               "command": " ".join(sys.argv)}) + "\n").encode()
        for _ in range(5):            # a stale lock is removed, then we try again
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(fd, "wb") as f:
                f.write(content)
            self._content = content
            _held_here.add(os.path.abspath(self.path))
            return self
        raise RunLockedError(f"{self.folder}: could not take the run lock {self.path}: other runs keep "
                             f"taking it; pass another --out")

    def release(self):
        """Remove the lock file if it is still the one we wrote (a no-op when not held)."""
        if self._content is None:
            return
        _held_here.discard(os.path.abspath(self.path))
        try:
            with open(self.path, "rb") as f:
                ours = f.read() == self._content
            if ours:
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        self._content = None

    def _take_over_if_stale(self):
        """Raise RunLockedError if the existing lock is held; else remove it, logging why."""
        owner = _read_lock(self.path)
        if owner is None:                                  # vanished between open and read
            return
        why = "the lock file is empty or not a tinygan lock" if owner == {} else _stale_reason(owner, self.path)
        if why is None:
            raise RunLockedError(_held_message(self.folder, self.path, owner))
        self.log(f"{self.folder}: taking over a stale run lock ({why})")
        try:
            # Two runs taking over the same stale lock at the same instant could both get
            # here; the O_EXCL create that follows still lets only one of them in, except
            # when one removes the other's brand-new lock — a window of microseconds.
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _read_lock(path, settle_seconds=1.0):
    """The lock's JSON as a dict; {} if it is not a lock; None if the file is gone.

    A lock created a moment ago may still be empty (its run has opened it, not yet
    written it), so an unreadable file younger than ``settle_seconds`` is read again.
    """
    deadline = time.monotonic() + settle_seconds
    while True:
        try:
            with open(path, "rb") as f:
                raw = f.read()
            age = time.time() - os.stat(path).st_mtime
        except FileNotFoundError:
            return None
        except OSError:
            return {}
        try:
            owner = json.loads(raw.decode())
            if isinstance(owner, dict) and isinstance(owner.get("pid"), int) and owner["pid"] > 0:
                return owner
        except ValueError:                                 # JSONDecodeError, UnicodeDecodeError
            pass
        if age > settle_seconds or time.monotonic() > deadline:
            return {}
        time.sleep(0.05)


def _stale_reason(owner, path):
    """Why the lock ``owner`` (its JSON) is stale, or None when its run may still be going."""
    pid = owner["pid"]
    if owner.get("host", socket.gethostname()) != socket.gethostname():
        return None                                        # another machine: cannot check
    if pid == os.getpid():
        if os.path.abspath(path) in _held_here:
            return None                                    # this very process holds it
        return f"process {pid} is this one, so that run has ended"
    if os.name == "nt":                                    # os.kill there would end the process
        return None
    try:
        os.kill(pid, 0)                                    # signal 0: only asks whether pid exists
    except ProcessLookupError:
        return f"process {pid} no longer exists"
    except PermissionError:
        pass                                               # exists, owned by another user
    started = _process_start_time(pid)
    if started is not None and started > owner.get("started", float("inf")) + 1:
        return f"process id {pid} now belongs to a process started after the lock was written"
    return None


def _process_start_time(pid):
    """When process ``pid`` started (seconds since the epoch), from Linux's /proc; None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()    # the name, in (), may hold spaces
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")   # field 22: start time in ticks
    except (OSError, ValueError, IndexError, StopIteration, AttributeError):
        return None


def _held_message(folder, path, owner):
    pid, host = owner["pid"], owner.get("host", "?")
    started = owner.get("started")
    when = f", started {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started))}" \
        if isinstance(started, (int, float)) else ""
    if host != socket.gethostname():
        return (f"{folder} is locked by a run on host {host} (pid {pid}{when}), which cannot be checked "
                f"from here: pass another --out, or --resume after it ends (if no run is using the "
                f"folder, delete {path})")
    return (f"{folder} is in use by another run (pid {pid}{when}): pass another --out, "
            f"or --resume after that run ends")
