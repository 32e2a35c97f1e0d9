"""In-process fakes of the services the backend calls, each on 127.0.0.1."""
