"""The README's curl examples run as written against a stack like ``sandbox up``'s, so the README cannot drift.

Each ``curl`` command is taken from the README's bash blocks (with its ``\\`` continuations), its standard ports
(5100 to 5103) rewritten to the free ports this test serves on, and run by bash in order, with the variables the
README's ``NAME=$(sandbox token ...)`` lines set, run once before (the stack checks tokens, as ``sandbox up`` does).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadtocash.auth import IDENTITY_PORT
from leadtocash.stack import DEFAULT_PORTS, Serving, Stack, StackConfig, start_stack

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(shutil.which("curl") is None, reason="the README's examples need curl"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning"),
]


def readme_curl_commands(text: str) -> list[str]:
    """Every ``curl`` command of the README's ```bash blocks, continuation lines joined, comments kept out."""
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        joined = re.sub(r"\s*\\\n\s*", " ", block)
        commands.extend(line.strip() for line in joined.splitlines() if line.strip().startswith("curl "))
    return commands


def readme_token_lines(text: str) -> list[str]:
    """The ``NAME=$(sandbox token ...)`` lines of the README's ```bash blocks, comments cut."""
    lines: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        for line in block.splitlines():
            if re.match(r"^[A-Z_]+=\$\(sandbox token", line.strip()):
                lines.append(line.split("#", 1)[0].strip())
    return lines


def test_the_extraction_finds_commands_across_continuation_lines() -> None:
    text = "```bash\ncurl -s http://x/a \\\n     --data b\nsandbox up\n```\n```python\ncurl no\n```\n"
    assert readme_curl_commands(text) == ["curl -s http://x/a --data b"]


@pytest.fixture(scope="module")
def served() -> Iterator[Stack]:
    """What `sandbox up` serves (seed 1, the maps running, tokens checked), on free ports."""
    with start_stack(StackConfig(memory=True, seed=1, auth=True), serve=Serving("127.0.0.1")) as stack:
        yield stack


def on_ports(command: str, stack: Stack) -> str:
    for name, port in {**DEFAULT_PORTS, "identity": IDENTITY_PORT}.items():
        command = command.replace(f"http://127.0.0.1:{port}", stack.urls[name])
    if "$(sandbox token" in command:
        scope = "" if "--scope" in command else f" --scope {stack.urls['sales']}/.default"
        command = command.replace(
            "$(sandbox token",
            f"$({sys.executable} -m leadtocash.cli token --identity-url {stack.urls['identity']}{scope}",
        )
    return command


def test_readme_curl_examples_run_as_written(served: Stack) -> None:
    """Every example answers 2xx with JSON, a query finds rows; the customer the POST makes in SCM is found in Sales by the next one."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = readme_curl_commands(text)
    assert len(commands) >= 3, commands
    token_lines = readme_token_lines(text)
    assert token_lines, "the README shows how to get a token"
    # the token lines run once, as written (each starts a `sandbox token` process); every curl command then
    # runs with the variables they set
    names = [line.split("=", 1)[0] for line in token_lines]
    script = "; ".join(on_ports(line, served) for line in token_lines) + "".join(f'; echo "${name}"' for name in names)
    tokens = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert tokens.returncode == 0, tokens.stderr
    values = tokens.stdout.splitlines()
    assert len(values) == len(names) and all(values), tokens.stdout + tokens.stderr
    environment = {**os.environ, **dict(zip(names, values, strict=True))}
    outputs: list[str] = []
    for command in commands:
        # curl's -w appends the status on a line of its own, after the body
        result = subprocess.run(
            ["bash", "-c", on_ports(command, served) + " -w '\\n%{http_code}'"],
            capture_output=True,
            text=True,
            timeout=60,
            env=environment,
        )
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        body, _, status = result.stdout.rpartition("\n")
        assert status.startswith("2"), f"{command}\n-> {status}: {body}"
        answer = json.loads(body) if body.strip() else None  # a JSON answer, not an error page
        if isinstance(answer, dict) and isinstance(answer.get("value"), list):
            assert answer["value"], f"{command}\n-> finds nothing: an example should show data"
        outputs.append(body)
    posted = [index for index, command in enumerate(commands) if "-X POST" in command]
    assert posted, "the README shows a write"
    created = json.loads(outputs[posted[0]])
    name = created.get("OrganizationName") or created.get("name")
    assert any(name and name in later for later in outputs[posted[0] + 1 :]), "the created record is found afterwards"
