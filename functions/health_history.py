"""Stored results of scheduled health pings, for the Firebase console.

Layout:

- ``_health/latest``: the result of the most recent scheduled ping.
- ``_health/history/{YYYY-MM-DD}/{HH:MM}``: one document per UTC minute with a
  scheduled ping, so a day has at most 1440 documents and a repeated ping in
  the same minute overwrites its entry. The console lists a day's documents in
  time order because the ids sort as text.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.cloud import firestore

logger = logging.getLogger(__name__)

LATEST_DOCUMENT = "_health/latest"
HISTORY_DOCUMENT = "_health/history"


def history_path(checked_at: dt.datetime) -> str:
    """Return the history document path for a ping at ``checked_at`` (converted to UTC)."""
    utc = checked_at.astimezone(dt.UTC)
    return f"{HISTORY_DOCUMENT}/{utc:%Y-%m-%d}/{utc:%H:%M}"


def record_result(
    client: firestore.Client, body: Mapping[str, Any], checked_at: dt.datetime, *, timeout_seconds: float
) -> None:
    """Write ``body`` to ``_health/latest`` and to the day's history in one batch.

    ``checkedAt`` is stored as a Firestore timestamp next to the body, so the
    console shows and sorts it as a date.

    Raises:
        google.api_core.exceptions.GoogleAPICallError: the write failed. It is
            not retried, because the next scheduled ping writes again.
    """
    document = {**body, "checkedAt": checked_at}

    batch = client.batch()
    batch.set(client.document(LATEST_DOCUMENT), document)
    batch.set(client.document(history_path(checked_at)), document)
    batch.commit(retry=None, timeout=timeout_seconds)
