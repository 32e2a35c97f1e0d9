"""A local Google Cloud stack for the backend, on 127.0.0.1 only.

Runs the Firestore and Pub/Sub emulators, fake-gcs-server, a Pub/Sub-to-CloudEvent
bridge standing in for Eventarc, and each function of main.py as a
functions-framework server. ``python -m devstack up`` starts it;
``python -m devstack.demo`` sends one voice note through it.
"""

from __future__ import annotations

import logging

from devstack.stack import BUCKET, PROJECT_ID, LocalStack

logger = logging.getLogger(__name__)

__all__ = ["BUCKET", "PROJECT_ID", "LocalStack"]
