"""Tests of infra/build_source.py and the commands infra/deploy.sh runs.

deploy.sh runs with --dry-run and fake terraform, gcloud and firebase
executables, so nothing is deployed and no network is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SOURCE = REPO_ROOT / "infra" / "build_source.py"
DEPLOY = REPO_ROOT / "infra" / "deploy.sh"

sys.path.insert(0, str(REPO_ROOT / "infra"))
import build_source  # noqa: E402


def write(path: Path, text: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A small repository tree with files that belong in the archive and files that do not."""
    root = tmp_path / "repo"
    for name in (
        "main.py",
        "requirements.txt",
        "functions/__init__.py",
        "functions/uploads/handler.py",
        # Left out:
        "functions/__pycache__/config.cpython-311.pyc",
        "functions/notes.md",
        "tests/unit/test_x.py",
        "infra/terraform/main.tf",
        ".venv/lib/site.py",
        ".venv-tools/bin/checkov",
        ".git/HEAD",
        ".env",
        "benchmarks/run.py",
        "devstack/up.sh",
        "samples/note.m4a",
        "docs/design.md",
        "README.md",
        "requirements-dev.txt",
        "firebase.json",
        "firestore.rules",
        "firestore.indexes.json",
        "storage.rules",
        ".pytest_cache/v/cache",
    ):
        write(root / name)
    return root


def test_archive_contents(repo: Path, tmp_path: Path) -> None:
    output = tmp_path / "out" / "source.zip"
    build_source.build_archive(repo, output)
    with zipfile.ZipFile(output) as archive:
        names = archive.namelist()
    assert names == [
        "functions/__init__.py",
        "functions/uploads/handler.py",
        "main.py",
        "requirements.txt",
    ]


def test_archive_reproducible(repo: Path, tmp_path: Path) -> None:
    first = tmp_path / "first.zip"
    second = tmp_path / "second.zip"
    build_source.build_archive(repo, first)
    os.utime(repo / "main.py", (1_700_000_000, 1_700_000_000))
    build_source.build_archive(repo, second)
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize("missing", ["main.py", "requirements.txt"], ids=["main", "requirements"])
def test_archive_requires_file(repo: Path, tmp_path: Path, missing: str) -> None:
    (repo / missing).unlink()
    result = subprocess.run(
        [sys.executable, str(BUILD_SOURCE), "--repo-root", str(repo), "--output", str(tmp_path / "s.zip")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert f"{missing} not found in {repo}" in result.stderr
    assert not (tmp_path / "s.zip").exists()


# --- deploy.sh ---

FAKE_TERRAFORM = """#!/usr/bin/env bash
case "$*" in
  *"output -json"*) cat "$FAKE_OUTPUTS" ;;
  *"output -raw project_id"*) echo demo-project ;;
  *) echo "fake terraform: unexpected arguments $*" >&2; exit 1 ;;
esac
"""

FAKE_NEVER_RUN = """#!/usr/bin/env bash
echo "fake $(basename "$0") was run in a dry run: $*" >&2
exit 1
"""


def fake_function(name: str, **overrides: object) -> dict[str, object]:
    settings: dict[str, object] = {
        "name": f"braindumpster-{name.replace('_', '-')}",
        "region": "europe-west1",
        "runtime": "python312",
        "entry_point": name,
        "build_service_account": None,
        "memory": "512Mi",
        "cpu": "1",
        "timeout_seconds": 60,
        "min_instances": 0,
        "max_instances": 10,
        "concurrency": 10,
        "ingress_settings": "ALLOW_ALL",
        "service_account": "runtime@demo-project.iam.gserviceaccount.com",
        "environment": {"UPLOAD_BUCKET": "demo-voice-notes", "FUNCTION_TIMEOUT_SECONDS": "60"},
        "secrets": {"GEMINI_API_KEY": "gemini-api-key:latest"},
        "public": False,
        "event_trigger": None,
    }
    settings.update(overrides)
    return settings


FAKE_OUTPUTS = {
    "project_id": {"value": "demo-project"},
    "source_bucket": {"value": "demo-source"},
    "functions": {
        "value": {
            "upload_url": fake_function("upload_url", public=True),
            "process_audio": fake_function(
                "process_audio",
                memory="1Gi",
                timeout_seconds=540,
                max_instances=3,
                concurrency=1,
                ingress_settings="ALLOW_INTERNAL_ONLY",
                event_trigger={
                    "event_type": "google.cloud.storage.object.v1.finalized",
                    "region": "europe-west1",
                    "retry": True,
                    "service_account": "trigger@demo-project.iam.gserviceaccount.com",
                    "bucket": "demo-voice-notes",
                },
            ),
            "health": fake_function(
                "health",
                timeout_seconds=30,
                max_instances=1,
                concurrency=1,
                ingress_settings="ALLOW_INTERNAL_ONLY",
            ),
        }
    },
}


@pytest.fixture
def fake_tools(tmp_path: Path) -> dict[str, str]:
    """Return an environment whose PATH starts with fake terraform, gcloud and firebase."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, script in (("terraform", FAKE_TERRAFORM), ("gcloud", FAKE_NEVER_RUN), ("firebase", FAKE_NEVER_RUN)):
        path = bin_dir / name
        path.write_text(script, encoding="utf-8")
        path.chmod(0o755)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(FAKE_OUTPUTS), encoding="utf-8")
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["FAKE_OUTPUTS"] = str(outputs)
    return env


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    path = tmp_path / "source.zip"
    with zipfile.ZipFile(path, "w") as handle:
        handle.writestr("main.py", "")
    return path


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def run_deploy(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(DEPLOY), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def printed_commands(stdout: str) -> dict[str, list[str]]:
    """Parse the ``+ command`` lines of a dry run, keyed by program and first argument."""
    commands = {}
    for line in stdout.splitlines():
        if line.startswith("+ "):
            words = shlex.split(line[2:])
            key = " ".join(words[:4]) if words[0] == "gcloud" else " ".join(words[:2])
            commands[key] = words
    return commands


def test_deploy_help() -> None:
    result = run_deploy(dict(os.environ), "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: infra/deploy.sh")


def test_deploy_unknown_argument() -> None:
    result = run_deploy(dict(os.environ), "--bogus")
    assert result.returncode == 2
    assert "error: unknown argument '--bogus'" in result.stderr


def test_deploy_all_dry_run(fake_tools: dict[str, str], archive: Path, tmp_path: Path) -> None:
    var_file = tmp_path / "terraform.tfvars"
    var_file.write_text('project_id = "demo-project"\n', encoding="utf-8")
    result = run_deploy(fake_tools, "--dry-run", "--archive", str(archive), "--var-file", str(var_file), "all")
    assert result.returncode == 0, result.stderr
    commands = printed_commands(result.stdout)
    assert commands["terraform -chdir=" + str(REPO_ROOT / "infra" / "terraform")][2:] == [
        "apply",
        "-input=false",
        f"-var-file={var_file}",
        f"-var=source_archive_path={archive}",
    ]
    assert commands["firebase deploy"] == [
        "firebase",
        "deploy",
        "--project",
        "demo-project",
        "--only",
        "firestore:rules,firestore:indexes,storage",
        "--non-interactive",
    ]


def test_deploy_gcloud_process_audio(fake_tools: dict[str, str], archive: Path) -> None:
    result = run_deploy(fake_tools, "--dry-run", "--archive", str(archive), "gcloud")
    assert result.returncode == 0, result.stderr
    words = printed_commands(result.stdout)["gcloud functions deploy braindumpster-process-audio"]
    env_file = next(word for word in words if word.startswith("--env-vars-file="))
    expected_source = f"--source=gs://demo-source/functions/source-{md5(archive)}.zip"
    assert words == [
        "gcloud",
        "functions",
        "deploy",
        "braindumpster-process-audio",
        "--gen2",
        "--region=europe-west1",
        "--runtime=python312",
        "--entry-point=process_audio",
        expected_source,
        "--service-account=runtime@demo-project.iam.gserviceaccount.com",
        "--memory=1Gi",
        "--cpu=1",
        "--timeout=540s",
        "--min-instances=0",
        "--max-instances=3",
        "--concurrency=1",
        "--ingress-settings=internal-only",
        env_file,
        "--set-secrets=GEMINI_API_KEY=gemini-api-key:latest",
        "--trigger-event-filters=type=google.cloud.storage.object.v1.finalized",
        "--trigger-event-filters=bucket=demo-voice-notes",
        "--trigger-location=europe-west1",
        "--trigger-service-account=trigger@demo-project.iam.gserviceaccount.com",
        "--retry",
    ]


@pytest.mark.parametrize(
    ("name", "access_flag"),
    [("upload-url", "--allow-unauthenticated"), ("health", "--no-allow-unauthenticated")],
    ids=["upload_url", "health"],
)
def test_deploy_gcloud_http(fake_tools: dict[str, str], archive: Path, name: str, access_flag: str) -> None:
    result = run_deploy(fake_tools, "--dry-run", "--archive", str(archive), "gcloud")
    assert result.returncode == 0, result.stderr
    words = printed_commands(result.stdout)[f"gcloud functions deploy braindumpster-{name}"]
    assert words[-2:] == ["--trigger-http", access_flag]


def test_deploy_gcloud_uploads_archive(fake_tools: dict[str, str], archive: Path) -> None:
    result = run_deploy(fake_tools, "--dry-run", "--archive", str(archive), "gcloud")
    assert result.returncode == 0, result.stderr
    words = printed_commands(result.stdout)["gcloud storage cp " + str(archive)]
    assert words == [
        "gcloud",
        "storage",
        "cp",
        str(archive),
        f"gs://demo-source/functions/source-{md5(archive)}.zip",
    ]
