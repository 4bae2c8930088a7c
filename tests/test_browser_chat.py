"""The chat example in a real browser (issue 9, item 7): headless Chromium, Debian's package
driven through Debian's chromedriver by Selenium, opens two pages of the chat served by real
Hypercorn; each joins the lobby under its own name, sees the other online, and each page's
message, sent through the page's form, shows up in the other page. A screenshot of the second
page is kept at :data:`SCREENSHOT`.

The browser is installed by tox's set-up (tests/_browser.py). Without it the test skips, naming
the install command; under ``CI=true`` it fails instead.

Selenium is synchronous, so the browsers run in one thread (``trio.to_thread.run_sync``) while
the server keeps running in Trio. Every wait is one of the driver's explicit waits, bounded by
:data:`WAIT`; every browser quits when its block ends, whatever happened.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import _browser
import pytest
import trio
from _e2e import ROOT, served
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from examples.chat.app import app

#: Where the screenshot of the second page is kept (``.artifacts/`` is not committed).
SCREENSHOT = ROOT / ".artifacts" / "chat-two-pages.png"
#: Seconds any one wait for the page may take.
WAIT = 15.0
#: Headless Chromium as root in a container, with no network beyond 127.0.0.1: no sandbox
#: (root), no GPU, /tmp instead of a small /dev/shm, and nothing that phones home.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1000,1100",
)

#: The texts of the elements ``selector`` matches, read in one go (no stale elements).
TEXTS = "return Array.from(document.querySelectorAll(arguments[0]), (e) => e.textContent.trim())"


def require_browser(
    environ: Mapping[str, str] = os.environ, binaries: Sequence[Path] = _browser.BINARIES
) -> None:
    """Skip the test without a browser (fail it under ``CI=true``)."""
    verdict = _browser.unavailable(environ, binaries)
    if verdict is not None:
        fail, reason = verdict
        if fail:
            pytest.fail(reason)
        pytest.skip(reason)


@contextmanager
def chromium(profile: Path) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a fresh profile in ``profile``; it quits when the block ends.

    chromedriver's path is given, so Selenium Manager (which would download one) never runs."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(_browser.CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(_browser.CHROMEDRIVER)))
    try:
        driver.set_page_load_timeout(WAIT)
        driver.set_script_timeout(WAIT)
        yield driver
    finally:
        driver.quit()


class Page:
    """One browser page of the chat, used by one person (``name``)."""

    def __init__(self, driver: webdriver.Chrome, name: str) -> None:
        self.driver = driver
        self.name = name

    def texts(self, selector: str) -> list[str]:
        """The text of each element ``selector`` matches, in document order."""
        texts: list[str] = self.driver.execute_script(TEXTS, selector)
        return texts

    def wait(self, what: str, condition: Callable[[], bool]) -> None:
        """Wait (at most :data:`WAIT` s) until ``condition()``; on timeout, fail with ``what``
        and what the page shows."""
        try:
            WebDriverWait(self.driver, WAIT).until(lambda _: condition())
        except TimeoutException:
            raise AssertionError(
                f"{self.name}'s page: no {what} within {WAIT} s; it shows status "
                f"{self.texts('#status')}, online {self.texts('#online li')}, "
                f"messages {self.texts('#messages li')}"
            ) from None

    def submit(self, form: str) -> None:
        """Click the submit button of ``form``, as a person would."""
        self.driver.find_element(
            By.CSS_SELECTOR, f"{form} button:not([type=button]), {form} input[type=submit]"
        ).click()

    def join(self, url: str) -> None:
        """Open the chat and join the room the page offers (the lobby) as :attr:`name`."""
        self.driver.get(url)
        room = self.driver.find_element(By.CSS_SELECTOR, "form#join input#room")
        assert room.get_attribute("value") == "lobby"
        self.driver.find_element(By.CSS_SELECTOR, "form#join input#name").send_keys(self.name)
        self.submit("form#join")
        self.wait("'connected' status", lambda: self.texts("#status") == ["connected"])
        # Only a browser knows what is shown: CSS can beat the hidden attribute.
        shown = {
            form: self.driver.find_element(By.CSS_SELECTOR, form).is_displayed()
            for form in ("form#join", "form#send")
        }
        assert shown == {"form#join": False, "form#send": True}, "after joining"

    def sees_online(self, names: Sequence[str]) -> None:
        """Wait until ``#online`` lists exactly one entry for each of ``names``."""

        def listed() -> bool:
            online = self.texts("#online li")
            return len(online) == len(names) and all(
                sum(name in entry for entry in online) == 1 for name in names
            )

        self.wait(f"online list of {names}", listed)

    def send(self, text: str) -> None:
        """Type ``text`` into the message box and submit the form."""
        self.driver.find_element(By.CSS_SELECTOR, "form#send input#message").send_keys(text)
        self.submit("form#send")

    def sees_message(self, sender: str, text: str) -> None:
        """Wait until a chat message from ``sender`` saying ``text`` is shown."""
        self.wait(
            f"message {text!r} from {sender}",
            lambda: any(
                sender in shown and text in shown for shown in self.texts("#messages li.message")
            ),
        )


def alive(marker: Path) -> list[str]:
    """The command lines of the live processes (not zombies) whose command line names
    ``marker`` (a browser's profile directory), read from Linux's /proc."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:  # it ended while we looked
            continue
        if str(marker) in argv and state != "Z":
            found.append(argv)
    return found


def two_pages(url: str, profiles: Path, screenshot: Path) -> None:
    """Alice and Bob chat through two browsers; Bob's page is saved to ``screenshot``.
    Blocks (run it in a thread); both browsers have quit when it returns or raises."""
    with ExitStack() as stack:
        alice = Page(stack.enter_context(chromium(profiles / "alice")), "alice")
        bob = Page(stack.enter_context(chromium(profiles / "bob")), "bob")
        alice.join(url)
        bob.join(url)
        alice.sees_online(["alice", "bob"])
        bob.sees_online(["alice", "bob"])

        alice.send("hello from alice")
        bob.sees_message("alice", "hello from alice")
        bob.send("hi alice, bob here")
        alice.sees_message("bob", "hi alice, bob here")
        bob.sees_message("bob", "hi alice, bob here")

        screenshot.parent.mkdir(parents=True, exist_ok=True)
        bob.driver.execute_script("window.scrollTo(0, 0)")  # the header, with the status
        assert bob.driver.save_screenshot(str(screenshot)), "the screenshot was not written"


@pytest.mark.deadline(60)
async def test_two_browser_pages_chat(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two Chromium pages join the lobby, see each other online, and each sees the other's
    message sent through the page's form."""
    require_browser()
    SCREENSHOT.unlink(missing_ok=True)
    async with served(app) as client:
        await trio.to_thread.run_sync(two_pages, f"{client.base_url}/", tmp_path, SCREENSHOT)
    assert alive(tmp_path) == [], "a browser process outlived driver.quit()"
    assert SCREENSHOT.stat().st_size > 0
    with capsys.disabled():
        sys.stdout.write(f"\nscreenshot of bob's page: {SCREENSHOT}\n")


# The set-up (tests/_browser.py): what it does on each kind of machine, with fake apt-gets.


def executable(path: Path) -> Path:
    """Make ``path`` an executable file (a stand-in for an installed program)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


class FakeApt:
    """A fake ``run`` for :func:`_browser.ensure`: records each command; ``install`` makes
    ``installs`` executable; ``fail`` names the subcommand that fails."""

    def __init__(self, installs: Sequence[Path] = (), fail: str | None = None) -> None:
        self.installs = installs
        self.fail = fail
        self.commands: list[list[str]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> tuple[int, str]:
        assert timeout == _browser.APT_TIMEOUT
        self.commands.append(list(argv))
        if argv[1] == self.fail:
            return 100, "Reading package lists...\nE: Unable to locate package chromium\n"
        if argv[1] == "install":
            for path in self.installs:
                executable(path)
        return 0, "lots of apt-get output\n"


def ensure(binaries: Sequence[Path], run: FakeApt, *, root: bool = True, apt: bool = True) -> str:
    """What :func:`_browser.ensure` says (one line, or nothing)."""
    lines: list[str] = []
    _browser.ensure(
        binaries=binaries,
        root=root,
        apt_get="/usr/bin/apt-get" if apt else None,
        run=run,
        say=lines.append,
    )
    return "\n".join(lines)


def test_setup_does_nothing_when_the_browser_is_there(tmp_path: Path) -> None:
    """With both programs present the set-up runs nothing and prints nothing."""
    binaries = [executable(tmp_path / "chromium"), executable(tmp_path / "chromedriver")]
    apt = FakeApt()
    assert ensure(binaries, apt) == ""
    assert apt.commands == []


def test_setup_installs_debians_packages_as_root(tmp_path: Path) -> None:
    """As root with apt-get, a missing program is installed from Debian's packages, no
    recommends, and one line (not apt-get's output) is printed."""
    binaries = [executable(tmp_path / "chromium"), tmp_path / "chromedriver"]
    apt = FakeApt(installs=binaries)
    said = ensure(binaries, apt)
    install = "install -y -q --no-install-recommends -o DPkg::Lock::Timeout=120"
    assert apt.commands == [
        ["/usr/bin/apt-get", "update", "-q"],
        ["/usr/bin/apt-get", *install.split(), "chromium", "chromium-driver"],
    ]
    assert said.splitlines()[-1].startswith("installed chromium chromium-driver in ")
    assert "apt-get output" not in said
    assert _browser.missing(binaries) == []


@pytest.mark.parametrize(
    ("root", "apt", "why"), [(False, True, "not root"), (True, False, "no apt-get")]
)
def test_setup_without_root_or_apt_says_the_test_will_skip(
    tmp_path: Path, root: bool, apt: bool, why: str
) -> None:
    """Without root (or apt-get) nothing runs; one line says the browser test will be skipped
    and how to install the browser."""
    run = FakeApt()
    said = ensure([tmp_path / "chromium"], run, root=root, apt=apt)
    assert run.commands == []
    assert said == (
        f"browser test will be skipped: {tmp_path / 'chromium'} not found ({why}); "
        "install with `sudo apt-get install chromium chromium-driver`"
    )


@pytest.mark.parametrize(("fail", "commands"), [("update", 1), ("install", 2)])
def test_setup_reports_a_failed_apt_get_and_goes_on(
    tmp_path: Path, fail: str, commands: int
) -> None:
    """A failing apt-get stops the install; its last lines are in the one line printed, and
    the set-up does not raise (the test then skips)."""
    apt = FakeApt(installs=[tmp_path / "chromium"], fail=fail)
    said = ensure([tmp_path / "chromium"], apt)
    assert len(apt.commands) == commands
    last = said.splitlines()[-1]
    assert last.startswith(f"browser test will be skipped: `/usr/bin/apt-get {fail} ")
    assert "failed (100): Reading package lists... | E: Unable to locate package" in last
    assert last.endswith("install with `sudo apt-get install chromium chromium-driver`")


def test_setup_notices_packages_without_the_programs(tmp_path: Path) -> None:
    """If apt-get succeeds but a program is still missing, that is said, not hidden."""
    said = ensure([tmp_path / "chromium"], FakeApt())
    assert said.splitlines()[-1] == (
        "browser test will be skipped: ('chromium', 'chromium-driver') installed, "
        f"yet {tmp_path / 'chromium'} is missing"
    )


@pytest.mark.parametrize(
    ("argv", "timeout", "expected"),
    [
        ([sys.executable, "-c", "print('out'); import sys; sys.exit(3)"], 30, (3, "out\n")),
        ([sys.executable, "-c", "import time; time.sleep(30)"], 0.2, (-1, "timed out after 0 s")),
    ],
)
def test_setup_runs_commands_bounded(
    argv: list[str], timeout: float, expected: tuple[int, str]
) -> None:
    """The set-up's runner returns a command's status and output, and gives up at its
    timeout."""
    assert _browser.run_quietly(argv, timeout) == expected


def test_setup_runner_reports_a_command_that_cannot_start(tmp_path: Path) -> None:
    """A command that does not exist is a failed command, not an exception."""
    status, output = _browser.run_quietly([str(tmp_path / "apt-get")], 30)
    assert status == -1
    assert "No such file or directory" in output


@pytest.mark.parametrize(
    ("environ", "outcome"),
    [
        ({}, pytest.skip.Exception),
        ({"CI": "false"}, pytest.skip.Exception),
        ({"CI": "true"}, pytest.fail.Exception),
    ],
)
def test_missing_browser_skips_except_under_ci(
    tmp_path: Path, environ: dict[str, str], outcome: type[BaseException]
) -> None:
    """Without a browser the test skips, naming the install command; with CI=true it fails."""
    with pytest.raises(outcome) as raised:
        require_browser(environ, [tmp_path / "chromium"])
    reason = str(raised.value)
    assert reason.startswith(f"no browser: {tmp_path / 'chromium'} not found; ")
    assert "`sudo apt-get install chromium chromium-driver`" in reason
    assert ("CI=true, so a missing browser is a failure" in reason) is (
        outcome is not pytest.skip.Exception
    )


def test_present_browser_is_available(tmp_path: Path) -> None:
    """With the programs there, nothing stops the browser test, CI or not."""
    require_browser({"CI": "true"}, [executable(tmp_path / "chromium")])
