"""``braindump``: upload a voice note to the backend, follow it and print its tasks.

Run ``python -m braindump_cli --help`` or, once the project is installed,
``braindump --help``.
"""

__version__ = "0.1.0"
