"""Upload quotas on the Firestore emulator: limits, windows, Retry-After and concurrent requests."""

from __future__ import annotations

import datetime as dt
import json
import threading

import flask
import pytest
from google.cloud import firestore

from functions.errors import QuotaExceeded
from functions.store import QuotaLimits, create_note_with_quota, quota_path
from tests.fakes.certs import CertificateServer
from tests.security.conftest import UPLOADS_PER_DAY, UPLOADS_PER_HOUR, VALID_BODY, note_count, stored
from tests.security.tokens import TokenMint

pytestmark = pytest.mark.security

LIMITS = QuotaLimits(per_hour=UPLOADS_PER_HOUR, per_day=UPLOADS_PER_DAY)
CONCURRENT_REQUESTS = 10


def _create(db: firestore.Client, uid: str, note_id: str, now: dt.datetime) -> None:
    create_note_with_quota(db, uid=uid, note_id=note_id, note={"objectName": f"{note_id}.m4a"}, limits=LIMITS, now=now)


def test_hour_limit(db: firestore.Client) -> None:
    now = dt.datetime(2026, 3, 10, 18, 30, tzinfo=dt.UTC)
    for index in range(UPLOADS_PER_HOUR):
        _create(db, "user-1", f"note-{index}", now)

    with pytest.raises(QuotaExceeded) as raised:
        _create(db, "user-1", "note-over", now)

    assert raised.value.retry_after_seconds == 30 * 60 + 1
    assert note_count(db) == UPLOADS_PER_HOUR
    quota = stored(db, quota_path("user-1"))
    assert quota["hourCount"] == UPLOADS_PER_HOUR
    assert quota["dayCount"] == UPLOADS_PER_HOUR


def test_day_limit(db: firestore.Client) -> None:
    first_hour = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)
    second_hour = first_hour + dt.timedelta(hours=1)
    for index in range(UPLOADS_PER_HOUR):
        _create(db, "user-1", f"early-{index}", first_hour)
    for index in range(UPLOADS_PER_DAY - UPLOADS_PER_HOUR):
        _create(db, "user-1", f"later-{index}", second_hour)

    with pytest.raises(QuotaExceeded) as raised:
        _create(db, "user-1", "note-over", second_hour)

    assert raised.value.retry_after_seconds == 14 * 3600 + 1
    assert note_count(db) == UPLOADS_PER_DAY


def test_hour_window_resets(db: firestore.Client) -> None:
    now = dt.datetime(2026, 3, 10, 9, 59, tzinfo=dt.UTC)
    for index in range(UPLOADS_PER_HOUR):
        _create(db, "user-1", f"note-{index}", now)

    _create(db, "user-1", "next-hour", now + dt.timedelta(minutes=1))

    quota = stored(db, quota_path("user-1"))
    assert quota["hourCount"] == 1
    assert quota["dayCount"] == UPLOADS_PER_HOUR + 1


def test_quota_per_user(db: firestore.Client) -> None:
    now = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)
    for index in range(UPLOADS_PER_HOUR):
        _create(db, "user-1", f"note-{index}", now)

    _create(db, "user-2", "own-quota", now)

    assert stored(db, quota_path("user-2"))["hourCount"] == 1


def test_concurrent_uploads_capped(
    upload_app: flask.Flask, real_auth: CertificateServer, mint: TokenMint, db: firestore.Client
) -> None:
    authorization = f"Bearer {mint.token('user-1')}"
    statuses: list[int] = []
    retry_after: list[str | None] = []
    lock = threading.Lock()
    start = threading.Barrier(CONCURRENT_REQUESTS)

    def upload() -> None:
        client = upload_app.test_client()
        start.wait(timeout=30)
        response = client.post(
            "/",
            data=json.dumps(VALID_BODY),
            headers={"Authorization": authorization, "Content-Type": "application/json"},
        )
        with lock:
            statuses.append(response.status_code)
            retry_after.append(response.headers.get("Retry-After"))

    threads = [threading.Thread(target=upload, name=f"upload-{index}") for index in range(CONCURRENT_REQUESTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(statuses) == [201] * UPLOADS_PER_HOUR + [429] * (CONCURRENT_REQUESTS - UPLOADS_PER_HOUR)
    assert sum(1 for value in retry_after if value is not None) == CONCURRENT_REQUESTS - UPLOADS_PER_HOUR
    assert note_count(db) == UPLOADS_PER_HOUR
    assert stored(db, quota_path("user-1"))["hourCount"] == UPLOADS_PER_HOUR
