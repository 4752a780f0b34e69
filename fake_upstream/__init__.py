"""The local upstream (dev tooling, never in the image): Shikimori and Kodik formats and
limits over HTTP (see server.py), for `make run` without internet, the tests and the benchmark."""

OFFLINE_PORT = 8765
OFFLINE_KODIK_TOKEN = "kitsu-offline-token"  # the token it accepts unless told another
