#!/usr/bin/env bash
# Deploy the Braindumpster backend. It can run from any directory, because
# paths are resolved from the location of this script. infra/README.md lists
# the prerequisites.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/.." && pwd)"
TF_DIR="${SCRIPT_DIR}/terraform"
ARCHIVE="${SCRIPT_DIR}/build/source.zip"
PYTHON="${PYTHON:-python3}"

usage() {
  cat <<EOF
Usage: infra/deploy.sh [options] [all|terraform|firebase|gcloud]

Modes:
  all        (default) build the source archive, run terraform apply, then
             deploy the Firestore rules and indexes and the Storage rules
             with the Firebase CLI.
  terraform  build the source archive and run terraform apply only.
  firebase   deploy firestore:rules, firestore:indexes and storage only.
  gcloud     fallback: build the archive, upload it to the source bucket and
             redeploy the three functions with gcloud. Every flag comes from
             the "functions" output of the last terraform apply, so run the
             terraform mode at least once first. The next terraform apply
             deploys its own archive again.

Options:
  --var-file FILE   Terraform variables file (default: infra/terraform/terraform.tfvars)
  --archive FILE    deploy this source zip instead of building one, for
                    example the archive of an earlier release to roll back
  --auto-approve    pass -auto-approve to terraform apply
  --dry-run         print the deploy commands instead of running them; the
                    archive is still built, and the gcloud mode still reads
                    terraform output
  -h, --help        show this text
EOF
}

MODE="all"
VAR_FILE="${TF_DIR}/terraform.tfvars"
AUTO_APPROVE=()
DRY_RUN=0
BUILD=1

while [[ $# -gt 0 ]]; do
  case "$1" in
    --var-file)
      [[ $# -ge 2 ]] || { echo "error: --var-file needs a file name" >&2; exit 2; }
      VAR_FILE="$2"
      shift 2
      ;;
    --archive)
      [[ $# -ge 2 ]] || { echo "error: --archive needs a file name" >&2; exit 2; }
      ARCHIVE="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
      BUILD=0
      shift 2
      ;;
    --auto-approve) AUTO_APPROVE=(-auto-approve); shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    all|terraform|firebase|gcloud) MODE="$1"; shift ;;
    *)
      echo "error: unknown argument '$1'" >&2
      usage >&2
      exit 2
      ;;
  esac
done

# Print the command in a form that can be pasted into a shell, then run it
# unless --dry-run is set.
run() {
  printf '+'
  printf ' %q' "$@"
  printf '\n'
  if [[ "${DRY_RUN}" -eq 0 ]]; then
    "$@"
  fi
}

require() {
  local tool
  for tool in "$@"; do
    command -v "${tool}" >/dev/null 2>&1 || {
      echo "error: ${tool} not found on PATH; install it first (see infra/README.md)" >&2
      exit 1
    }
  done
}

build_archive() {
  if [[ "${BUILD}" -eq 0 ]]; then
    [[ -f "${ARCHIVE}" ]] || { echo "error: archive ${ARCHIVE} not found" >&2; exit 1; }
    echo "using archive ${ARCHIVE}"
    return
  fi
  require "${PYTHON}"
  "${PYTHON}" "${SCRIPT_DIR}/build_source.py" --repo-root "${REPO_ROOT}" --output "${ARCHIVE}"
}

terraform_apply() {
  require terraform
  if [[ ! -f "${VAR_FILE}" ]]; then
    echo "error: variables file ${VAR_FILE} not found; copy infra/terraform/terraform.tfvars.example to it and fill it in" >&2
    exit 1
  fi
  run terraform -chdir="${TF_DIR}" init -input=false
  run terraform -chdir="${TF_DIR}" apply -input=false -var-file="${VAR_FILE}" \
    -var="source_archive_path=${ARCHIVE}" "${AUTO_APPROVE[@]}"
}

firebase_deploy() {
  require firebase terraform
  local project
  if ! project="$(terraform -chdir="${TF_DIR}" output -raw project_id 2>/dev/null)" || [[ -z "${project}" ]]; then
    if [[ "${DRY_RUN}" -eq 0 ]]; then
      echo "error: terraform has no project_id output; run infra/deploy.sh terraform first" >&2
      exit 1
    fi
    # A dry run before the first apply has no outputs yet.
    project="PROJECT_ID"
  fi
  # firebase.json is at the repository root, and the CLI reads it from the
  # working directory.
  (cd "${REPO_ROOT}" && run firebase deploy --project "${project}" \
    --only firestore:rules,firestore:indexes,storage --non-interactive)
}

# Write one gcloud command per function in the "functions" Terraform output
# to <dir>/<entry point>.args, its arguments separated by NUL bytes, and the
# function's environment variables to <dir>/<entry point>.env.json.
# Arguments: source URI, the directory, and the file that contains
# `terraform output -json`.
gcloud_commands() {
  "${PYTHON}" - "$1" "$2" "$3" <<'PY'
import json
import sys


def ingress_flag(setting):
    """Map the API value, such as ALLOW_INTERNAL_ONLY, to gcloud's internal-only."""
    return setting.removeprefix("ALLOW_").lower().replace("_", "-")


source_uri, env_dir, outputs_file = sys.argv[1:4]
with open(outputs_file, encoding="utf-8") as handle:
    outputs = json.load(handle)
for entry_point, fn in sorted(outputs["functions"]["value"].items()):
    env_file = f"{env_dir}/{entry_point}.env.json"
    # gcloud reads --env-vars-file as YAML, and JSON is valid YAML, so values
    # with commas or equals signs need no escaping.
    with open(env_file, "w", encoding="utf-8") as handle:
        json.dump({key: str(value) for key, value in fn["environment"].items()}, handle)

    args = [
        "gcloud", "functions", "deploy", fn["name"],
        "--gen2",
        f"--region={fn['region']}",
        f"--runtime={fn['runtime']}",
        f"--entry-point={fn['entry_point']}",
        f"--source={source_uri}",
        f"--service-account={fn['service_account']}",
        f"--memory={fn['memory']}",
        f"--cpu={fn['cpu']}",
        f"--timeout={fn['timeout_seconds']}s",
        f"--min-instances={fn['min_instances']}",
        f"--max-instances={fn['max_instances']}",
        f"--concurrency={fn['concurrency']}",
        f"--ingress-settings={ingress_flag(fn['ingress_settings'])}",
        f"--env-vars-file={env_file}",
    ]
    if fn.get("build_service_account"):
        args.append(f"--build-service-account={fn['build_service_account']}")
    if fn["secrets"]:
        pairs = ",".join(f"{key}={value}" for key, value in sorted(fn["secrets"].items()))
        args.append(f"--set-secrets={pairs}")

    trigger = fn.get("event_trigger")
    if trigger:
        args += [
            f"--trigger-event-filters=type={trigger['event_type']}",
            f"--trigger-event-filters=bucket={trigger['bucket']}",
            f"--trigger-location={trigger['region']}",
            f"--trigger-service-account={trigger['service_account']}",
            "--retry" if trigger["retry"] else "--no-retry",
        ]
    else:
        args.append("--trigger-http")
        args.append("--allow-unauthenticated" if fn["public"] else "--no-allow-unauthenticated")

    with open(f"{env_dir}/{entry_point}.args", "w", encoding="utf-8") as handle:
        handle.write("\0".join(args))
PY
}

gcloud_deploy() {
  require gcloud terraform "${PYTHON}"
  local outputs_file source_bucket object source_uri
  WORK_DIR="$(mktemp -d)"
  trap 'rm -rf "${WORK_DIR}"' EXIT
  outputs_file="${WORK_DIR}/outputs.json"
  terraform -chdir="${TF_DIR}" output -json > "${outputs_file}"
  source_bucket="$("${PYTHON}" -c 'import json, sys; print(json.load(open(sys.argv[1]))["source_bucket"]["value"])' "${outputs_file}")"
  # The same object name as Terraform's google_storage_bucket_object.source.
  object="functions/source-$(md5sum "${ARCHIVE}" | cut -d' ' -f1).zip"
  source_uri="gs://${source_bucket}/${object}"

  run gcloud storage cp "${ARCHIVE}" "${source_uri}"
  gcloud_commands "${source_uri}" "${WORK_DIR}" "${outputs_file}"
  local command_file
  local -a args
  for command_file in "${WORK_DIR}"/*.args; do
    mapfile -d '' -t args < "${command_file}"
    run "${args[@]}"
  done
}

case "${MODE}" in
  all)
    build_archive
    terraform_apply
    firebase_deploy
    ;;
  terraform)
    build_archive
    terraform_apply
    ;;
  firebase)
    firebase_deploy
    ;;
  gcloud)
    build_archive
    gcloud_deploy
    ;;
esac
