"""The ``upload_url`` flow: verify the caller, validate, count quota, create the note, sign."""

from functions.uploads.handler import handle_upload_url

__all__ = ["handle_upload_url"]
