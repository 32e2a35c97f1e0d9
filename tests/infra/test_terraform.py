"""Static checks of infra/terraform: parsed HCL, terraform fmt and checkov.

Nothing here talks to Google Cloud. `terraform validate` is not run because it
needs `terraform init`, which downloads the provider.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TF_DIR = REPO_ROOT / "infra" / "terraform"
TOOLS_VENV = REPO_ROOT / ".venv-tools"

FUNCTIONS = ("upload_url", "process_audio", "health")

# Checkov findings accepted on purpose, each with its reason.
CHECKOV_SKIPS = {
    # upload_url is the app's public API and verifies a Firebase ID token on
    # every request. process_audio and health are internal-only.
    "CKV_GCP_124": "public HTTP ingress of upload_url",
    # Cloud Audit Logs record data access, so usage-log buckets would add a
    # bucket and cost for no extra signal.
    "CKV_GCP_62": "bucket access logging",
    # Versioning would keep copies of voice notes after the functions or the
    # lifecycle rule delete them, and the source archives are rebuilt from git.
    "CKV_GCP_78": "bucket versioning",
}


def _parse(text: str) -> dict[str, Any]:
    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
    return hcl2.loads(text, serialization_options=options)


@functools.cache
def config() -> dict[str, dict[str, Any]]:
    """Merge every .tf file into resources, data sources, variables, locals and outputs."""
    merged: dict[str, dict[str, Any]] = {
        "resource": {},
        "data": {},
        "variable": {},
        "locals": {},
        "output": {},
    }
    for path in sorted(TF_DIR.glob("*.tf")):
        parsed = _parse(path.read_text(encoding="utf-8"))
        for kind in ("resource", "data"):
            for block in parsed.get(kind, []):
                for type_name, by_name in block.items():
                    merged[kind].setdefault(type_name, {}).update(by_name)
        for kind in ("variable", "output"):
            for block in parsed.get(kind, []):
                merged[kind].update(block)
        for block in parsed.get("locals", []):
            merged["locals"].update(block)
    return merged


def resource(type_name: str, name: str) -> dict[str, Any]:
    return config()["resource"][type_name][name]


def function(name: str) -> dict[str, Any]:
    return resource("google_cloudfunctions2_function", name)


def service_config(name: str) -> dict[str, Any]:
    return function(name)["service_config"][0]


def process_audio_trigger() -> dict[str, Any]:
    return function("process_audio")["event_trigger"][0]


def unwrap(expression: str) -> str:
    """Strip the ``${...}`` that the parser puts around an expression."""
    assert expression.startswith("${"), expression
    assert expression.endswith("}"), expression
    return expression[2:-1]


# --- process_audio: scaling, retries and its Eventarc trigger ---


def test_process_audio_instance_limits() -> None:
    settings = service_config("process_audio")
    assert settings["max_instance_count"] == 3
    assert settings["max_instance_request_concurrency"] == 1
    assert settings["min_instance_count"] == 0


def test_process_audio_retry_policy() -> None:
    assert process_audio_trigger()["retry_policy"] == "RETRY_POLICY_RETRY"


def test_process_audio_event_type() -> None:
    assert process_audio_trigger()["event_type"] == "google.cloud.storage.object.v1.finalized"


def test_process_audio_bucket_filter() -> None:
    filters = process_audio_trigger()["event_filters"]
    assert filters == [{"attribute": "bucket", "value": "${google_storage_bucket.uploads.name}"}]


def test_trigger_region_is_bucket_location() -> None:
    assert process_audio_trigger()["trigger_region"] == "${lower(google_storage_bucket.uploads.location)}"


def test_trigger_service_account() -> None:
    expected = "${google_service_account.trigger.email}"
    assert process_audio_trigger()["service_account_email"] == expected


def test_only_process_audio_has_trigger() -> None:
    with_trigger = [name for name in FUNCTIONS if "event_trigger" in function(name)]
    assert with_trigger == ["process_audio"]


# --- settings shared by the three functions ---


@pytest.mark.parametrize("name", FUNCTIONS, ids=FUNCTIONS)
def test_function_runtime(name: str) -> None:
    assert function(name)["build_config"][0]["runtime"] == "python312"


@pytest.mark.parametrize("name", FUNCTIONS, ids=FUNCTIONS)
def test_function_entry_point(name: str) -> None:
    assert function(name)["build_config"][0]["entry_point"] == name


@pytest.mark.parametrize("name", FUNCTIONS, ids=FUNCTIONS)
def test_function_source_archive(name: str) -> None:
    storage_source = function(name)["build_config"][0]["source"][0]["storage_source"][0]
    assert storage_source == {
        "bucket": "${google_storage_bucket.source.name}",
        "object": "${google_storage_bucket_object.source.name}",
    }


@pytest.mark.parametrize("name", FUNCTIONS, ids=FUNCTIONS)
def test_function_runs_as_runtime_account(name: str) -> None:
    assert service_config(name)["service_account_email"] == "${google_service_account.runtime.email}"


@pytest.mark.parametrize("name", FUNCTIONS, ids=FUNCTIONS)
def test_gemini_key_from_secret(name: str) -> None:
    assert service_config(name)["secret_environment_variables"] == [
        {
            "key": "GEMINI_API_KEY",
            "project_id": "${var.project_id}",
            "secret": "${google_secret_manager_secret.gemini_api_key.secret_id}",
            "version": "${var.gemini_api_key_secret_version}",
        }
    ]


@pytest.mark.parametrize("name", FUNCTIONS, ids=FUNCTIONS)
def test_timeout_env_equals_timeout(name: str) -> None:
    settings = service_config(name)
    timeout = settings["timeout_seconds"]
    timeout_expression = unwrap(timeout) if isinstance(timeout, str) else str(timeout)
    expected = f"${{merge(local.common_env, {{FUNCTION_TIMEOUT_SECONDS = {timeout_expression}}})}}"
    assert settings["environment_variables"] == expected


@pytest.mark.parametrize(
    ("name", "ingress"),
    [
        ("upload_url", "ALLOW_ALL"),
        ("process_audio", "ALLOW_INTERNAL_ONLY"),
        ("health", "ALLOW_INTERNAL_ONLY"),
    ],
    ids=FUNCTIONS,
)
def test_function_ingress(name: str, ingress: str) -> None:
    assert service_config(name)["ingress_settings"] == ingress


def test_process_audio_timeout_variable() -> None:
    variables = config()["variable"]
    assert service_config("process_audio")["timeout_seconds"] == "${var.process_audio_timeout_seconds}"
    # 540 s is the maximum for event-driven functions, and the Gemini request
    # deadline has to end before it.
    assert variables["process_audio_timeout_seconds"]["default"] == 540
    assert variables["gemini_attempt_timeout_seconds"]["default"] == 120


def test_common_env_names() -> None:
    assert set(config()["locals"]["common_env"]) == {
        "GOOGLE_CLOUD_PROJECT",
        "UPLOAD_BUCKET",
        "EXTRACTOR",
        "GEMINI_MODEL",
        "GEMINI_ATTEMPT_TIMEOUT_SECONDS",
        "MAX_UPLOAD_BYTES",
        "MAX_AUDIO_SECONDS",
        "UPLOAD_URL_TTL_SECONDS",
        "UPLOADS_PER_HOUR",
        "UPLOADS_PER_DAY",
        "SIGNING_SERVICE_ACCOUNT",
        "LOG_LEVEL",
    }


def test_common_env_read_by_config() -> None:
    # A misspelt name would be ignored silently and the default used instead.
    source = (REPO_ROOT / "functions" / "config.py").read_text(encoding="utf-8")
    read_names = set(re.findall(r'env, "([A-Z_]+)"', source))
    unknown = set(config()["locals"]["common_env"]) - read_names
    assert unknown == set()


def test_common_env_values() -> None:
    env = config()["locals"]["common_env"]
    assert env["EXTRACTOR"] == "gemini"
    assert env["UPLOAD_BUCKET"] == "${local.upload_bucket}"
    assert env["SIGNING_SERVICE_ACCOUNT"] == "${google_service_account.runtime.email}"
    assert "GEMINI_API_KEY" not in env


# --- Cloud Scheduler ---


def test_scheduler_calls_health() -> None:
    job = resource("google_cloud_scheduler_job", "health")
    target = job["http_target"][0]
    health_uri = "${google_cloudfunctions2_function.health.service_config[0].uri}"
    assert job["schedule"] == "*/5 * * * *"
    assert target["http_method"] == "GET"
    assert target["uri"] == health_uri


def test_scheduler_oidc_token() -> None:
    target = resource("google_cloud_scheduler_job", "health")["http_target"][0]
    assert target["oidc_token"] == [
        {
            "service_account_email": "${google_service_account.scheduler.email}",
            "audience": "${google_cloudfunctions2_function.health.service_config[0].uri}",
        }
    ]


# --- buckets ---


@pytest.mark.parametrize("name", ["uploads", "source"], ids=["uploads", "source"])
def test_bucket_access(name: str) -> None:
    bucket = resource("google_storage_bucket", name)
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["location"] == "${var.region}"


def test_upload_bucket_cors() -> None:
    dynamic = resource("google_storage_bucket", "uploads")["dynamic"]
    assert len(dynamic) == 1
    cors = dynamic[0]["cors"]
    assert cors["for_each"] == "${length(var.cors_origins) > 0 ? [var.cors_origins] : []}"
    assert cors["content"] == [
        {
            "origin": "${cors.value}",
            "method": ["PUT"],
            "response_header": [
                "Content-Type",
                "x-goog-content-length-range",
                "x-goog-if-generation-match",
            ],
            "max_age_seconds": 3600,
        }
    ]


def test_cors_headers_match_signed_headers() -> None:
    # The browser preflight lists every header the signed URL requires.
    from functions.uploads.signing import upload_headers

    content = resource("google_storage_bucket", "uploads")["dynamic"][0]["cors"]["content"][0]
    assert set(content["response_header"]) == set(upload_headers("audio/mp4", 1))


def test_upload_bucket_lifecycle() -> None:
    rules = resource("google_storage_bucket", "uploads")["lifecycle_rule"]
    assert rules == [
        {
            "condition": [
                {
                    "age": "${var.voice_note_retention_days}",
                    "matches_prefix": ["${local.voice_note_prefix}"],
                }
            ],
            "action": [{"type": "Delete"}],
        }
    ]
    assert config()["locals"]["voice_note_prefix"] == "voice-notes/"


def test_upload_bucket_kept_on_destroy() -> None:
    assert resource("google_storage_bucket", "uploads")["force_destroy"] is False


# --- IAM ---

RUNTIME = "serviceAccount:${google_service_account.runtime.email}"
TRIGGER = "serviceAccount:${google_service_account.trigger.email}"
SCHEDULER = "serviceAccount:${google_service_account.scheduler.email}"
GCS_AGENT = "serviceAccount:${data.google_storage_project_service_account.gcs_agent.email_address}"

# (member, role, what the grant applies to)
EXPECTED_GRANTS = {
    (RUNTIME, "roles/datastore.user", "project"),
    (RUNTIME, "roles/storage.objectAdmin", "bucket ${google_storage_bucket.uploads.name}"),
    (
        RUNTIME,
        "roles/secretmanager.secretAccessor",
        "secret ${google_secret_manager_secret.gemini_api_key.secret_id}",
    ),
    (
        RUNTIME,
        "roles/iam.serviceAccountTokenCreator",
        "service account ${google_service_account.runtime.name}",
    ),
    (TRIGGER, "roles/eventarc.eventReceiver", "project"),
    (TRIGGER, "roles/run.invoker", "service ${google_cloudfunctions2_function.process_audio.name}"),
    (SCHEDULER, "roles/run.invoker", "service ${google_cloudfunctions2_function.health.name}"),
    ("allUsers", "roles/run.invoker", "service ${google_cloudfunctions2_function.upload_url.name}"),
    (GCS_AGENT, "roles/pubsub.publisher", "project"),
}

# The attribute that names the resource each IAM member type grants on.
IAM_SCOPES = {
    "google_project_iam_member": None,
    "google_storage_bucket_iam_member": ("bucket", "bucket"),
    "google_secret_manager_secret_iam_member": ("secret", "secret_id"),
    "google_service_account_iam_member": ("service account", "service_account_id"),
    "google_cloud_run_v2_service_iam_member": ("service", "name"),
}


def granted() -> set[tuple[str, str, str]]:
    grants = set()
    for type_name, by_name in config()["resource"].items():
        if not type_name.endswith(("_iam_member", "_iam_binding", "_iam_policy")):
            continue
        assert type_name in IAM_SCOPES, f"{type_name} is not covered by this test"
        scope_attribute = IAM_SCOPES[type_name]
        for body in by_name.values():
            if scope_attribute is None:
                scope = "project"
            else:
                label, attribute = scope_attribute
                scope = f"{label} {body[attribute]}"
            grants.add((body["member"], body["role"], scope))
    return grants


def test_exact_role_set() -> None:
    assert granted() == EXPECTED_GRANTS


def test_iam_member_count() -> None:
    # A duplicated grant with another resource name would collapse in the set.
    count = sum(
        len(by_name)
        for type_name, by_name in config()["resource"].items()
        if type_name.endswith("_iam_member")
    )
    assert count == len(EXPECTED_GRANTS)


# --- APIs, variables and the example variables file ---


def test_enabled_apis() -> None:
    assert sorted(config()["locals"]["services"]) == [
        "artifactregistry.googleapis.com",
        "cloudbuild.googleapis.com",
        "cloudfunctions.googleapis.com",
        "cloudscheduler.googleapis.com",
        "eventarc.googleapis.com",
        "firebaserules.googleapis.com",
        "firestore.googleapis.com",
        "iam.googleapis.com",
        "iamcredentials.googleapis.com",
        "pubsub.googleapis.com",
        "run.googleapis.com",
        "secretmanager.googleapis.com",
        "storage.googleapis.com",
    ]


def test_tfvars_example_names_declared() -> None:
    example = _parse((TF_DIR / "terraform.tfvars.example").read_text(encoding="utf-8"))
    example.pop("__comments__", None)
    assert set(example) - set(config()["variable"]) == set()


def test_tfvars_example_sets_required() -> None:
    example = _parse((TF_DIR / "terraform.tfvars.example").read_text(encoding="utf-8"))
    required = {name for name, body in config()["variable"].items() if "default" not in body}
    assert required == {"project_id", "cors_origins"}
    assert required - set(example) == set()


def test_functions_output_reads_resources() -> None:
    # deploy.sh builds its gcloud flags from this output, so each value must
    # come from the deployed function and not from a second copy of a setting.
    value = config()["output"]["functions"]["value"]
    for fragment in (
        "max_instances = function.service_config[0].max_instance_count",
        "concurrency = function.service_config[0].max_instance_request_concurrency",
        "timeout_seconds = function.service_config[0].timeout_seconds",
        "runtime = function.build_config[0].runtime",
        "environment = function.service_config[0].environment_variables",
        'retry = function.event_trigger[0].retry_policy == "RETRY_POLICY_RETRY"',
        "event_type = function.event_trigger[0].event_type",
        "region = function.event_trigger[0].trigger_region",
        "bucket = google_storage_bucket.uploads.name",
    ):
        assert fragment in value


# --- tools ---


def test_terraform_fmt() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform binary not on PATH; `terraform fmt -check` not run")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", str(TF_DIR)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout == ""
    assert result.returncode == 0


def checkov_environment() -> dict[str, str]:
    """Return an environment in which checkov makes no network request.

    With no API key it never contacts the Prisma Cloud platform,
    CKV_SKIP_PACKAGE_UPDATE_CHECK stops its PyPI version check and
    BC_SKIP_MAPPING its download of check metadata. Any request that remains
    goes to a proxy on a closed loopback port and fails at once.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("BC_", "PRISMA_", "CKV_"))}
    env.update(
        {
            "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
            "BC_SKIP_MAPPING": "TRUE",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "HTTP_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "",
        }
    )
    return env


def test_checkov_passes() -> None:
    checkov = TOOLS_VENV / "bin" / "checkov"
    if not checkov.exists():
        pytest.skip(".venv-tools is absent; create it with `pip install -r requirements-tools.txt`")
    result = subprocess.run(
        [
            str(checkov),
            "--directory",
            str(TF_DIR),
            "--framework",
            "terraform",
            "--skip-download",
            "--download-external-modules",
            "false",
            "--skip-check",
            ",".join(sorted(CHECKOV_SKIPS)),
            "--output",
            "json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=checkov_environment(),
        check=False,
    )
    report = json.loads(result.stdout)
    failed = [(check["check_id"], check["resource"]) for check in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 0
    assert result.returncode == 0
