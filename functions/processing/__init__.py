"""The ``process_audio`` flow for storage finalize events."""

from functions.processing.handler import handle_storage_event

__all__ = ["handle_storage_event"]
