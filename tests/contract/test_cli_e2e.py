"""``braindump`` end to end against the local stack."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from braindump_cli.cli import main
from braindump_cli.exits import ExitCode
from devstack.stack import REPO_ROOT, LocalStack

TIMEOUT_SECONDS = "180"
# The offline extractor's first probe loads its model and can exceed the
# probe timeout, so health may be degraded while Firestore and Storage are up.
EXIT_FOR_HEALTH = {"healthy": ExitCode.OK, "degraded": ExitCode.DEGRADED}


@pytest.fixture
def environ(stack: LocalStack) -> dict[str, str]:
    """The variables a shell gets from ``python -m devstack up``, plus the endpoints."""
    return {
        **stack.client_env,
        "BRAINDUMP_UPLOAD_URL": stack.endpoints.upload_url,
        "BRAINDUMP_HEALTH_URL": stack.endpoints.health,
    }


@pytest.fixture
def stack_file(stack: LocalStack, tmp_path: Path) -> Path:
    """A file with what ``python -m devstack up`` prints for this stack."""
    from devstack.__main__ import print_summary

    path = tmp_path / "stack.txt"
    with path.open("w", encoding="utf-8") as output, pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stdout", output)
        print_summary(stack)
    return path


def test_upload_done(
    environ: dict[str, str], uid: str, sample_path: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    audio = sample_path("01-dentist-tomorrow-3pm.m4a")

    code = main(
        [
            "upload",
            str(audio),
            "--timezone",
            "America/Los_Angeles",
            "--recorded-at",
            "2026-03-10T18:30:00-07:00",
            "--uid",
            uid,
            "--timeout",
            TIMEOUT_SECONDS,
            "--json",
        ],
        environ=environ,
    )

    output = json.loads(capsys.readouterr().out)
    assert code == ExitCode.OK
    assert output["note"]["status"] == "done"
    assert [task["title"] for task in output["tasks"]] == ["Call the dentist"]
    assert output["tasks"][0]["dueDate"] == "2026-03-11"
    assert output["tasks"][0]["dueAt"] == "2026-03-11T22:00:00+00:00"


def test_upload_table(
    stack_file: Path, uid: str, sample_path: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    audio = sample_path("01-dentist-tomorrow-3pm.m4a")

    code = main(
        [
            "--stack-file",
            str(stack_file),
            "upload",
            str(audio),
            "--timezone",
            "America/Los_Angeles",
            "--recorded-at",
            "2026-03-10T18:30:00-07:00",
            "--uid",
            uid,
            "--timeout",
            TIMEOUT_SECONDS,
        ],
        environ={},
    )

    captured = capsys.readouterr()
    assert code == ExitCode.OK
    assert "Call the dentist" in captured.out
    # 15:00 in Los Angeles, shown in the note's zone and not in UTC (22:00).
    assert "2026-03-11 15:00 PDT" in captured.out
    assert "done" in captured.err


def test_upload_failed_note(
    environ: dict[str, str], uid: str, sample_path: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    audio = sample_path("edge-text-file.mp3")

    code = main(
        ["upload", str(audio), "--timezone", "UTC", "--uid", uid, "--timeout", TIMEOUT_SECONDS], environ=environ
    )

    captured = capsys.readouterr()
    assert code == ExitCode.NOTE_FAILED
    assert "unsupported_audio" in captured.out
    assert "failed with reason unsupported_audio" in captured.err


def test_upload_rejected_type(
    environ: dict[str, str], uid: str, sample_path: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    audio = sample_path("01-dentist-tomorrow-3pm.m4a")

    code = main(
        ["upload", str(audio), "--timezone", "UTC", "--uid", uid, "--content-type", "video/mp4"], environ=environ
    )

    assert code == ExitCode.REJECTED
    assert "unsupported_content_type" in capsys.readouterr().err


def test_upload_quota(
    stack: LocalStack,
    environ: dict[str, str],
    uid: str,
    sample_path: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    import datetime as dt

    from google.cloud import firestore

    now = dt.datetime.now(dt.UTC)
    firestore.Client(project=stack.project_id).document(f"users/{uid}/quota/uploads").set(
        {
            "hourStart": now,
            "hourCount": 0,
            "dayStart": now.replace(hour=0, minute=0, second=0, microsecond=0),
            "dayCount": 200,
        }
    )

    code = main(
        ["upload", str(sample_path("01-dentist-tomorrow-3pm.m4a")), "--timezone", "UTC", "--uid", uid], environ=environ
    )

    assert code == ExitCode.QUOTA
    assert "try again in" in capsys.readouterr().err


def test_upload_no_follow(
    environ: dict[str, str], uid: str, sample_path: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["upload", str(sample_path("02-dry-cleaning-friday.ogg")), "--timezone", "UTC", "--uid", uid, "--no-follow"],
        environ=environ,
    )

    note_id = capsys.readouterr().out.strip()
    assert code == ExitCode.OK
    assert len(note_id) == 32


def test_health(environ: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["health", "--json"], environ=environ)

    body = json.loads(capsys.readouterr().out)
    assert code == EXIT_FOR_HEALTH[body["status"]]
    assert body["services"]["firebase"] == "connected"
    assert body["services"]["storage"] == "connected"
    assert set(body["checks"]) == set(body["services"])


def test_console_entry(environ: dict[str, str], stack: LocalStack) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "braindump_cli", "health", "--json"],
        env={**environ, "PATH": "/usr/bin:/bin"},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    body = json.loads(result.stdout)
    assert result.returncode == EXIT_FOR_HEALTH[body["status"]], result.stderr
    assert body["services"]["firebase"] == "connected"
