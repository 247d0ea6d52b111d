"""Progress bar (terminal only, rank 0) and log levels of `fe2qc run`."""

import io
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from fe2qc.progress import Log, ProgressBar

ROOT = Path(__file__).resolve().parents[1]


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_bar_draws_on_a_terminal_only_and_log_lines_clear_it():
    tty = _Tty()
    bar = ProgressBar(1.0, stream=tty, interval=0.0)
    bar.update(load=0.5, step="increment 2")
    bar.rves(3, 8)
    log = Log("info", stream=tty, bar=bar)
    log("step   1  load 0.5")
    bar.close()
    text = tty.getvalue()
    assert "load 0.5/1 [############------------] increment 2  RVEs 3/8" in text
    # the log line is printed on a cleared line, and the bar drawn again after it
    assert "\r\x1b[2Kstep   1  load 0.5\n\r\x1b[2Kload 0.5/1" in text
    assert text.endswith("\r\x1b[2K")
    pipe = io.StringIO()  # not a terminal: nothing but the log line
    bar = ProgressBar(1.0, stream=pipe)
    bar.update(load=1.0, step="x")
    Log("info", stream=pipe, bar=None)("a line")
    assert pipe.getvalue() == "a line\n"
    off = _Tty()
    ProgressBar(1.0, stream=off, enabled=False).update(load=1.0)  # another rank
    assert off.getvalue() == ""


def test_log_levels(capsys):
    for level, shown in (("error", []), ("warning", ["w"]), ("info", ["w", "i"]),
                         ("debug", ["w", "i", "d"])):
        log = Log(level, stream=sys.stdout)
        log.warning("w")
        log.info("i")
        log.debug("d")
        out = capsys.readouterr()
        assert out.out.split() + out.err.split() == [s for s in ("i", "d") if s in shown] + [
            s for s in ("w",) if s in shown], level
        assert ("w" in out.err) == ("w" in shown)  # warnings go to stderr
    with pytest.raises(ValueError, match="log level must be one of"):
        Log("verbose")
    assert not Log("debug", enabled=False).at("error")  # another rank prints nothing


@pytest.mark.timeout(300)
def test_fe2qc_run_in_a_terminal_draws_the_bar(tmp_path):
    """`fe2qc run` with stderr on a pseudo-terminal: the bar, then a clean last line."""
    toml = tmp_path / "p.toml"
    toml.write_text((ROOT / "tests" / "test_restart.py").read_text().split('PROBLEM = f"""')[1]
                    .split('"""')[0].replace("{STEPS}", "2"))
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "coupling.cli", "run", str(toml),
                             "--outdir", "out"], cwd=tmp_path, stdout=slave, stderr=slave,
                            stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            proc.kill()
            pytest.fail("no output for 120 s")
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(60) == 0
    os.close(master)
    text = b"".join(chunks).decode()
    assert "\r\x1b[2Kload 0.5/1 [############------------] increment 2" in text
    assert "RVEs 4/4" in text  # the batch of 4 Gauss points, drawn when done
    assert "fe2qc run: done" in text
