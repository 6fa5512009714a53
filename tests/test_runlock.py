"""RunLock: one run per output folder; stale locks taken over, live ones refused in one line."""
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from tinygan.runlock import LOCK_NAME, RunLock, RunLockedError, _process_start_time


def write_lock(folder, age_seconds=0, **owner):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    path.write_text(json.dumps({"host": socket.gethostname(), "started": time.time(), **owner}) + "\n")
    if age_seconds:
        t = time.time() - age_seconds
        os.utime(path, (t, t))
    return path


def dead_pid():
    """The id of a process that has exited (and been reaped)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_lock_file_holds_our_pid_and_is_removed_at_exit(tmp_path):
    folder = tmp_path / "new" / "run"                        # created if needed
    with RunLock(folder, log=pytest.fail):
        owner = json.loads((folder / LOCK_NAME).read_text())
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
        assert "started" in owner and "command" in owner
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_lock_is_removed_when_the_block_raises(tmp_path, error):
    with pytest.raises(error):
        with RunLock(tmp_path):
            raise error()
    assert not (tmp_path / LOCK_NAME).exists()


def test_second_lock_on_a_held_folder_is_refused_in_one_line(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunLockedError) as e:
            RunLock(tmp_path).acquire()
        assert (tmp_path / LOCK_NAME).exists()            # the refused lock did not remove it
    msg = str(e.value)
    assert str(tmp_path) in msg and f"pid {os.getpid()}" in msg
    assert "--out" in msg and "--resume" in msg and "\n" not in msg


def test_the_same_process_can_lock_again_after_releasing(tmp_path):
    for _ in range(3):
        with RunLock(tmp_path, log=pytest.fail):
            pass
    assert not (tmp_path / LOCK_NAME).exists()


def test_stale_lock_of_a_dead_process_is_taken_over_with_a_message(tmp_path):
    pid = dead_pid()
    write_lock(tmp_path, pid=pid)
    said = []
    with RunLock(tmp_path, log=said.append):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert len(said) == 1 and str(tmp_path) in said[0] and str(pid) in said[0]
    assert "no longer exists" in said[0] and "\n" not in said[0]


def test_lock_left_with_our_own_pid_is_stale(tmp_path):
    write_lock(tmp_path, pid=os.getpid())                  # e.g. a container restarted: pids repeat
    said = []
    with RunLock(tmp_path, log=said.append):
        pass
    assert len(said) == 1 and "this one" in said[0]


@pytest.mark.skipif(_process_start_time(os.getpid()) is None, reason="no /proc start times here")
def test_reused_pid_of_a_live_process_started_after_the_lock_is_stale(tmp_path):
    write_lock(tmp_path, pid=os.getppid(), started=1.0)    # written in 1970: the parent is younger
    said = []
    with RunLock(tmp_path, log=said.append):
        pass
    assert len(said) == 1 and "started after" in said[0]


def test_live_process_with_a_lock_written_after_it_started_holds_it(tmp_path):
    write_lock(tmp_path, pid=os.getppid())
    with pytest.raises(RunLockedError, match=f"pid {os.getppid()}"):
        RunLock(tmp_path).acquire()


@pytest.mark.parametrize("content", [b"", b"garbage\x00\xff", b'{"pid": "12"}', b"[1, 2]", b'{"pid": -1}'])
def test_unreadable_lock_is_taken_over_with_a_message(tmp_path, content):
    path = tmp_path / LOCK_NAME
    path.write_bytes(content)
    os.utime(path, (time.time() - 60, time.time() - 60))   # not one being written right now
    said = []
    with RunLock(tmp_path, log=said.append):
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert len(said) == 1 and "not a tinygan lock" in said[0]


def test_a_lock_being_written_right_now_is_waited_for(tmp_path):
    """Another run has created the file (O_EXCL) but not yet written its pid: not garbage."""
    path = tmp_path / LOCK_NAME
    path.write_bytes(b"")

    def finish_writing():
        time.sleep(0.2)
        path.write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(),
                                    "started": time.time()}))

    t = threading.Thread(target=finish_writing)
    t.start()
    try:
        with pytest.raises(RunLockedError, match=f"pid {os.getppid()}"):
            RunLock(tmp_path, log=pytest.fail).acquire()
    finally:
        t.join()


def test_lock_from_another_host_counts_as_held(tmp_path):
    path = write_lock(tmp_path, pid=dead_pid(), host="some-other-machine")
    with pytest.raises(RunLockedError) as e:
        RunLock(tmp_path).acquire()
    msg = str(e.value)
    assert "some-other-machine" in msg and str(path) in msg and "\n" not in msg
    assert path.exists()


def test_release_leaves_a_lock_that_is_no_longer_ours(tmp_path):
    lock = RunLock(tmp_path).acquire()
    path = write_lock(tmp_path, pid=os.getppid())          # someone replaced it
    lock.release()
    assert path.exists()


HOLDER = textwrap.dedent("""
    import sys
    from tinygan.runlock import RunLock
    with RunLock(sys.argv[1]):
        print("locked", flush=True)
        sys.stdin.read()            # hold it until the test closes our stdin
""")


def start_holder(folder):
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "locked\n"
    return p


def test_a_second_process_is_refused_then_lets_go_when_the_first_ends(tmp_path):
    p = start_holder(tmp_path)
    try:
        with pytest.raises(RunLockedError) as e:
            RunLock(tmp_path).acquire()
        assert str(tmp_path) in str(e.value) and f"pid {p.pid}" in str(e.value)
    finally:
        p.stdin.close()
        assert p.wait(timeout=30) == 0
    assert not (tmp_path / LOCK_NAME).exists()
    with RunLock(tmp_path, log=pytest.fail):               # free: no takeover message
        pass


def test_lock_of_a_killed_process_is_taken_over(tmp_path):
    p = start_holder(tmp_path)
    p.kill()                                               # SIGKILL: no cleanup ran
    p.wait(timeout=30)
    p.stdin.close()
    p.stdout.close()
    assert (tmp_path / LOCK_NAME).exists()
    said = []
    with RunLock(tmp_path, log=said.append):
        pass
    assert len(said) == 1 and f"process {p.pid} no longer exists" in said[0]
