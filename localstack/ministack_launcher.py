"""Start MiniStack with Nagle's algorithm disabled on its Lambda Runtime API.

MiniStack runs `provided.al2023` functions (our Rust binaries) as local
processes that poll a small Runtime API server built on `http.server`. That
server writes the response headers and the body in two separate `write()`s.
On a keep-alive connection the second small write waits for the client's
delayed ACK (Nagle + delayed ACK), so every invoke stalls ~40 ms. Setting
`disable_nagle_algorithm` on `StreamRequestHandler` (the base of every
`http.server` handler) turns on TCP_NODELAY for each accepted connection and
removes the stall. Nothing else changes: all configuration still comes from
the environment MiniStack reads (GATEWAY_PORT, BIND_HOST, PERSIST_STATE,
STATE_DIR, LOG_LEVEL, ...).

Run with the project venv's python; `cargo xtask dev|test` and the Docker
image in this directory both start the emulator through this file.
"""

import socketserver

socketserver.StreamRequestHandler.disable_nagle_algorithm = True

from ministack.app import main  # noqa: E402  (the patch must come first)

if __name__ == "__main__":
    main()
