"""Every fenced ``python`` block in README.md and docs/**/*.md runs here, so samples cannot rot.

How a block is run (the convention a sample must follow):

- A block is skipped only when the line right before its opening fence is ``<!-- fragment -->``.
  Everything else is a complete program that a reader can paste into a file and run.
- Each block is written to its own file and run as ``python sample.py URL HASH`` with the
  interpreter running this test (``.ci/venv``'s python in CI), in a fresh temporary directory,
  with ``PORT=0`` in the environment and a 60 s timeout. ``URL`` and ``HASH`` are those of an
  echo server this module starts (``python -m pywebtransport serve --port 0``): a sample that
  plays a client of a separately started server reads them from ``sys.argv``; others ignore them.
- A sample passes when it exits with status 0 and without a traceback, with one exception:
  a sample that serves forever must print a line containing ``Ctrl-C`` once it listens,
  together with its ``https://`` URL and its certificate's SHA-256 (64 hex digits). The test
  then sends it a line with ``python -m pywebtransport connect``, expects the line echoed back,
  interrupts it with SIGINT and expects a clean exit (0, or 130 for an uncaught Ctrl-C)
  without a traceback.
- All non-fragment blocks are also type-checked together with one ``mypy --strict`` call.

Relative links in the same files must point at files that exist in the repository.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FRAGMENT_MARKER = "<!-- fragment -->"
SAMPLE_TIMEOUT = 60.0
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    fragment: bool

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def module_name(self) -> str:
        stem = re.sub(r"\W", "_", str(self.path.relative_to(ROOT).with_suffix("")))
        return f"sample_{stem}_{self.line}"


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def extract_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of one Markdown file, with their language and fragment mark."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence, language = opening.groups()
        body = []
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            body.append(lines[end][len(indent):] if lines[end].startswith(indent) else lines[end])
            end += 1
        fragment = index > 0 and lines[index - 1].strip() == FRAGMENT_MARKER
        blocks.append(Block(path, index + 1, language.lower(), "\n".join(body) + "\n", fragment))
        index = end + 1
    return blocks


ALL_BLOCKS = [block for path in markdown_files() for block in extract_blocks(path)]
PYTHON_BLOCKS = [block for block in ALL_BLOCKS if block.language in ("python", "py")]
RUNNABLE = [block for block in PYTHON_BLOCKS if not block.fragment]


class Lines:
    """Lines of a child's pipe, read by a thread so that a test can wait with a timeout."""

    def __init__(self, pipe: object) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []

        def pump() -> None:
            for line in pipe:  # type: ignore[attr-defined]
                self.queue.put(line)
            self.queue.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def next(self, timeout: float) -> str | None:
        try:
            line = self.queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output within {timeout}s; so far:\n{''.join(self.seen)}") from None
        if line is not None:
            self.seen.append(line)
        return line

    def rest(self, timeout: float = 10) -> str:
        while self.next(timeout) is not None:
            pass
        return "".join(self.seen)


@dataclass(frozen=True)
class EchoServer:
    url: str
    cert_hash: str


def _banner(lines: Lines) -> str:
    while True:
        line = lines.next(SAMPLE_TIMEOUT)
        if line is None:
            raise AssertionError(f"the server ended before it listened:\n{''.join(lines.seen)}")
        if "Ctrl-C" in line:
            return "".join(lines.seen)


def _url_and_hash(banner: str) -> tuple[str, str]:
    url = re.search(r"https://\S+?(?=[\s\"'`]|$)", banner, re.M)
    digest = re.search(r"\b[0-9a-f]{64}\b", banner)
    assert url and digest, f"a serving sample must print its https:// URL and certificate SHA-256:\n{banner}"
    return url.group(0), digest.group(0)


@pytest.fixture(scope="module")
def echo_server() -> Iterator[EchoServer]:
    server = subprocess.Popen([sys.executable, "-m", "pywebtransport", "serve", "--port", "0", "--http-port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:
        url, digest = _url_and_hash(_banner(Lines(server.stdout)))
        yield EchoServer(url, digest)
    finally:
        server.terminate()
        server.wait(timeout=10)


def _connect_and_echo(url: str, digest: str) -> None:
    result = subprocess.run([sys.executable, "-m", "pywebtransport", "connect", url, "--cert-hash", digest,
                             "--message", "ping from the docs test", "--timeout", "10"],
                            capture_output=True, text=True, timeout=SAMPLE_TIMEOUT, cwd=ROOT)
    assert result.returncode == 0, f"connect to the sample's server failed:\n{result.stderr}"
    assert result.stdout.splitlines()[1:] == ["ping from the docs test"], result.stdout


def test_the_docs_have_runnable_python_samples() -> None:
    assert any(block.path.name == "README.md" for block in RUNNABLE), "README.md has no runnable python block"
    assert len(RUNNABLE) >= 5, [block.name for block in RUNNABLE]
    # fragments stay rare: a reader should be able to paste almost any sample
    assert len(PYTHON_BLOCKS) - len(RUNNABLE) <= len(RUNNABLE) // 3, [b.name for b in PYTHON_BLOCKS if b.fragment]


def test_the_extractor_honours_only_the_marker_on_the_line_before(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("text\n<!-- fragment -->\n```python\nx = 1\n```\n\n<!-- fragment -->\n\n```python\ny = 2\n```\n"
                    "```bash\necho hi\n```\n", encoding="utf-8")
    blocks = extract_blocks(page)
    assert [(b.language, b.fragment, b.code) for b in blocks] == [
        ("python", True, "x = 1\n"), ("python", False, "y = 2\n"), ("bash", False, "echo hi\n")]


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.name for block in RUNNABLE])
def test_sample_runs(block: Block, echo_server: EchoServer, tmp_path: Path) -> None:
    script = tmp_path / f"{block.module_name}.py"
    script.write_text(block.code, encoding="utf-8")
    env = {**os.environ, "PORT": "0", "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen([sys.executable, str(script), echo_server.url, echo_server.cert_hash], cwd=tmp_path,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out = Lines(child.stdout)
        serving = False
        while (line := out.next(SAMPLE_TIMEOUT)) is not None:
            if "Ctrl-C" in line:
                serving = True
                break
        if serving:
            _connect_and_echo(*_url_and_hash("".join(out.seen)))
            child.send_signal(signal.SIGINT)
            status = child.wait(timeout=15)
            output = out.rest()
            assert status in (0, 130, -signal.SIGINT), f"{block.name} exited {status} after Ctrl-C:\n{output}"
        else:
            status = child.wait(timeout=15)
            output = "".join(out.seen)
            assert status == 0, f"{block.name} exited {status}:\n{output}"
        assert "Traceback" not in output, f"{block.name}:\n{output}"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_samples_pass_mypy_strict(tmp_path: Path) -> None:
    files = []
    for block in RUNNABLE:
        script = tmp_path / f"{block.module_name}.py"
        script.write_text(block.code, encoding="utf-8")
        files.append(str(script))
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--hide-error-context",
                             *files], capture_output=True, text=True, timeout=600, cwd=ROOT)
    # Report each error at its line in the Markdown file: the fence's line + the line in the block.
    by_file = {str(tmp_path / f"{block.module_name}.py"): block for block in RUNNABLE}

    def markdown_position(match: re.Match[str]) -> str:
        block = by_file.get(match.group(1))
        if block is None:  # an error inside the package itself: report it where it is
            return match.group(0)
        return f"{block.path.relative_to(ROOT)}:{block.line + int(match.group(2))}:"

    report = re.sub(r"^(\S+\.py):(\d+):", markdown_position, result.stdout, flags=re.M)
    assert result.returncode == 0, report + result.stderr


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_files_in_the_repository(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    missing = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        file_part = target.split("#", 1)[0]
        if file_part and not (path.parent / file_part).exists():
            missing.append(target)
    assert "../shared" not in text, f"{path.name} cites files outside the repository"
    assert not missing, f"{path.name} links to files that do not exist: {missing}"
