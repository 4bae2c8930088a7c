"""The browser of the real-browser tests (issue 9, item 7): Debian's ``chromium`` and
``chromium-driver`` packages, found at fixed paths, and the set-up step that installs them.

tox's ``py`` environment runs this file before pytest (``commands_pre``: ``python
tests/_browser.py``). It never fails the run:

* both programs present: it does nothing (so every later run costs one ``stat`` each);
* missing, as root with ``apt-get``: it installs the two packages with ``apt-get`` (bounded in
  time, its output kept to one line unless it fails);
* missing otherwise: it prints one line saying the browser test will be skipped and how to
  install the packages.

The test then skips without a browser, with :func:`unavailable`'s reason; under ``CI=true`` a
missing browser fails it instead, so a CI machine cannot pass by skipping.

Only Debian's packages are used: nothing is downloaded from anywhere else (Selenium Manager is
never asked, because the test names chromedriver's path itself).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

#: The browser and its WebDriver server, as Debian's packages install them.
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
BINARIES = (CHROMIUM, CHROMEDRIVER)
#: The Debian packages that provide :data:`BINARIES`.
PACKAGES = ("chromium", "chromium-driver")
#: What a user runs to get them.
INSTALL = f"sudo apt-get install {' '.join(PACKAGES)}"
#: Seconds each ``apt-get`` command may take (an update, then a download of ~100 MB).
APT_TIMEOUT = 600.0
#: apt-get waits (bounded) for another apt-get to let go of dpkg's lock rather than fail at once.
LOCK_WAIT = ("-o", "DPkg::Lock::Timeout=120")
#: Lines of apt-get's output shown when it fails.
TAIL = 5

#: Runs a command: ``run(argv, timeout)`` -> (exit status, combined output).
Runner = Callable[[Sequence[str], float], tuple[int, str]]


def missing(binaries: Sequence[Path] = BINARIES) -> list[Path]:
    """The programs of ``binaries`` that are not there as executable files."""
    return [path for path in binaries if not (path.is_file() and os.access(path, os.X_OK))]


def unavailable(
    environ: Mapping[str, str], binaries: Sequence[Path] = BINARIES
) -> tuple[bool, str] | None:
    """``None`` when the browser test can run; else ``(fail, reason)``: the test fails (under
    ``CI=true``) or skips, with ``reason`` naming what is missing and the install command."""
    absent = missing(binaries)
    if not absent:
        return None
    names = " and ".join(str(path) for path in absent)
    reason = (
        f"no browser: {names} not found; install Debian's packages with `{INSTALL}` "
        "(tox's py env does it when run as root)"
    )
    if environ.get("CI", "").lower() in ("true", "1"):
        return True, f"{reason}; CI=true, so a missing browser is a failure, not a skip"
    return False, reason


def ensure(
    *,
    binaries: Sequence[Path] = BINARIES,
    root: bool,
    apt_get: str | None,
    run: Runner,
    say: Callable[[str], object],
) -> None:
    """Install :data:`PACKAGES` with ``apt_get`` if any of ``binaries`` is missing and we are
    ``root``; ``say`` one line about what happened (nothing when all are present). Never
    raises for a failed install: the test skips (or fails under CI) on its own."""
    absent = missing(binaries)
    if not absent:
        return
    names = " and ".join(str(path) for path in absent)
    if not root or apt_get is None:
        why = "not root" if apt_get is not None else "no apt-get"
        say(f"browser test will be skipped: {names} not found ({why}); install with `{INSTALL}`")
        return
    say(f"installing {' '.join(PACKAGES)} with apt-get for the browser test ({names} missing)")
    started = time.monotonic()
    steps = (
        [apt_get, "update", "-q"],
        [apt_get, "install", "-y", "-q", "--no-install-recommends", *LOCK_WAIT, *PACKAGES],
    )
    for argv in steps:
        status, output = run(argv, APT_TIMEOUT)
        if status != 0:
            tail = " | ".join(output.strip().splitlines()[-TAIL:])
            say(
                f"browser test will be skipped: `{' '.join(argv)}` failed ({status}): {tail}; "
                f"install with `{INSTALL}`"
            )
            return
    still = missing(binaries)
    if still:
        say(f"browser test will be skipped: {PACKAGES} installed, yet {still[0]} is missing")
        return
    say(f"installed {' '.join(PACKAGES)} in {time.monotonic() - started:.0f} s")


def run_quietly(argv: Sequence[str], timeout: float) -> tuple[int, str]:
    """Run ``argv`` non-interactively for at most ``timeout`` seconds; its exit status (-1 when
    it timed out, or could not start) and its output, stdout and stderr together."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {timeout:.0f} s"
    except OSError as error:
        return -1, str(error)
    return done.returncode, done.stdout.decode(errors="replace")


def main() -> int:
    """tox's set-up step: :func:`ensure` on this machine, printing to stdout; always 0."""
    ensure(
        root=os.geteuid() == 0,
        apt_get=shutil.which("apt-get"),
        run=run_quietly,
        say=lambda line: print(line, flush=True),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
