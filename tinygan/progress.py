"""A dependency-free progress bar for long loops (training epochs, downloads).

    bar = Progress(total=21, desc="epoch 1/20", unit="batches")
    for i in range(21):
        ...
        bar.update(1, postfix="loss_D 0.51 loss_G 2.10")
    bar.close()

On a terminal it redraws one line with ``\\r``; when the stream is not a terminal (CI, a
log file) it prints only the final line, so logs stay readable. ``fmt`` formats counts
(``format_bytes`` for downloads, where the bar also shows the rate).
"""
import sys
import time


def format_seconds(s):
    """Seconds as 'm:ss' or 'h:mm:ss'."""
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_bytes(n):
    """Bytes for people: '812 B', '12.3 kB', '40.1 MB'."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


class Progress:
    def __init__(self, total, desc="", unit="it", width=24, stream=None, enabled=True, fmt=None):
        self.total, self.desc, self.unit, self.width = total, desc, unit, width
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.fmt = fmt
        self.live = enabled and getattr(self.stream, "isatty", lambda: False)()
        self.n, self.postfix, self.start = 0, "", time.perf_counter()
        self._last_draw = 0.0

    def update(self, n=1, postfix=None):
        self.n += n
        if postfix is not None:
            self.postfix = postfix
        now = time.perf_counter()
        if self.live and (now - self._last_draw > 0.1 or (self.total and self.n >= self.total)):
            self._draw(end="\r")
            self._last_draw = now

    def line(self):
        elapsed = time.perf_counter() - self.start
        fmt = self.fmt or str
        if self.total:
            frac = min(self.n / self.total, 1.0)
            filled = int(frac * self.width)
            eta = elapsed / self.n * (self.total - self.n) if self.n else 0.0
            counts = (f"[{'#' * filled}{'.' * (self.width - filled)}] {fmt(self.n)}/{fmt(self.total)} "
                      f"{self.unit} {format_seconds(elapsed)}<{format_seconds(eta)}")
        else:                                       # unknown total: just the count
            counts = f"{fmt(self.n)} {self.unit} {format_seconds(elapsed)}"
        rate = f" {fmt(self.n / elapsed)}/s" if self.fmt and elapsed > 0 else ""
        return f"{self.desc} {counts}{rate} {self.postfix}".rstrip()

    def _draw(self, end):
        self.stream.write("\r" + self.line() + " " * 4 + end if self.live else self.line() + end)
        self.stream.flush()

    def close(self):
        if self.enabled:
            self._draw(end="\n")
