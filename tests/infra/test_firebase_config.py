"""Checks of firebase.json, firestore.indexes.json and the rules files.

The rules' behaviour is tested against the Firestore emulator elsewhere. These
tests check only the files' shape and the settings deploy.sh relies on.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).resolve().parent / "schemas" / "firebase-config.json"

# Checksum of schema/firebase-config.json in firebase-tools 15.34.2, as noted in
# schemas/README.md, so an accidental edit of the vendored copy fails here.
SCHEMA_SHA256 = "91f322c3c86517c195606e47e42440ecdc284715a82adba618adf9e17effbeb6"


def load_json(name: str) -> Any:
    return json.loads((REPO_ROOT / name).read_text(encoding="utf-8"))


def test_schema_is_vendored_copy() -> None:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256


def test_firebase_json_matches_schema() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(load_json("firebase.json"))]
    assert errors == []


def test_schema_rejects_unknown_key() -> None:
    # The test above catches a misspelt key only because the schema forbids
    # additional properties.
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    config = load_json("firebase.json")
    config["firestores"] = {}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, schema, cls=jsonschema.Draft7Validator)


def test_firebase_json_has_no_functions() -> None:
    # The Firebase CLI deploys only Firebase Functions SDK code, not plain
    # functions-framework entry points, so Terraform deploys the functions.
    assert "functions" not in load_json("firebase.json")


def test_firebase_json_deploy_targets() -> None:
    config = load_json("firebase.json")
    assert config["firestore"] == {"rules": "firestore.rules", "indexes": "firestore.indexes.json"}
    assert config["storage"] == {"rules": "storage.rules"}


@pytest.mark.parametrize(
    ("emulator", "port"),
    [("firestore", 8080), ("pubsub", 8085), ("storage", 9199), ("hub", 4400), ("logging", 4500)],
    ids=["firestore", "pubsub", "storage", "hub", "logging"],
)
def test_emulator_port(emulator: str, port: int) -> None:
    settings = load_json("firebase.json")["emulators"][emulator]
    assert settings == {"host": "127.0.0.1", "port": port}


def test_emulator_ui_disabled() -> None:
    assert load_json("firebase.json")["emulators"]["ui"] == {"enabled": False}


@pytest.mark.parametrize(
    "name",
    ["firestore.rules", "firestore.indexes.json", "storage.rules"],
    ids=["firestore_rules", "indexes", "storage_rules"],
)
def test_deployed_file_exists(name: str) -> None:
    assert (REPO_ROOT / name).is_file()


# --- firestore.indexes.json ---


def index_keys() -> set[tuple[str, str, tuple[tuple[str, str], ...]]]:
    keys = set()
    for index in load_json("firestore.indexes.json")["indexes"]:
        fields = tuple((field["fieldPath"], field["order"]) for field in index["fields"])
        keys.add((index["collectionGroup"], index["queryScope"], fields))
    return keys


def test_composite_indexes() -> None:
    assert index_keys() == {
        ("tasks", "COLLECTION", (("completed", "ASCENDING"), ("dueAt", "ASCENDING"))),
        ("tasks", "COLLECTION", (("completed", "ASCENDING"), ("dueDate", "ASCENDING"))),
        ("tasks", "COLLECTION", (("sourceNoteId", "ASCENDING"), ("dueAt", "ASCENDING"))),
        ("voiceNotes", "COLLECTION", (("status", "ASCENDING"), ("createdAt", "DESCENDING"))),
        # The sweep of stale notes queries every user's notes at once.
        ("voiceNotes", "COLLECTION_GROUP", (("status", "ASCENDING"), ("uploadExpiresAt", "ASCENDING"))),
        ("voiceNotes", "COLLECTION_GROUP", (("status", "ASCENDING"), ("lease.expiresAt", "ASCENDING"))),
    }


def test_index_field_overrides() -> None:
    overrides = load_json("firestore.indexes.json")["fieldOverrides"]
    assert [(item["collectionGroup"], item["fieldPath"], item["indexes"]) for item in overrides] == [
        ("voiceNotes", "transcript", []),
        ("voiceNotes", "history", []),
    ]


# --- rules files: shape only ---


def test_storage_rules_deny_all() -> None:
    text = (REPO_ROOT / "storage.rules").read_text(encoding="utf-8")
    allows = re.findall(r"^\s*allow\s+(.+?);", text, flags=re.MULTILINE)
    assert allows == ["read, write: if false"]


def test_firestore_rules_allow_lines() -> None:
    # Every grant in the file, so a new one is a deliberate change of this list.
    text = (REPO_ROOT / "firestore.rules").read_text(encoding="utf-8")
    allows = [" ".join(line.split()) for line in re.findall(r"^\s*allow\s+([^:]+):", text, flags=re.MULTILINE)]
    assert allows == ["get, list", "get, list", "update"]
