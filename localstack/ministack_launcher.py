"""Start MiniStack with Nagle's algorithm disabled on its Lambda Runtime API.

MiniStack runs `provided.al2023` functions (our Rust binaries) as local
processes that poll a small Runtime API server built on `http.server`. That
server writes the response headers and the body in two separate `write()`s.
On a keep-alive connection the second small write waits for the client's
delayed ACK (Nagle + delayed ACK), so every invoke stalls ~40 ms. Setting
`disable_nagle_algorithm` on `StreamRequestHandler` (the base of every
`http.server` handler) turns on TCP_NODELAY for each accepted connection and
removes the stall.

Second, MiniStack 1.5.33's CloudFormation provisioner stores an
`AWS::ApiGatewayV2::Api` `CorsConfiguration` with the template's keys
(`AllowOrigins`, ...) while its HTTP API reads `allowOrigins`, ...: every
browser preflight was refused with 403 "CORS origin denied". The keys are
renamed on the way in, so the template's CORS settings apply as on AWS.

Nothing else changes: all configuration still comes from the environment
MiniStack reads (GATEWAY_PORT, BIND_HOST, PERSIST_STATE, STATE_DIR,
LOG_LEVEL, ...).

Run with the project venv's python; `cargo xtask dev|test` and the Docker
image in this directory both start the emulator through this file.
"""

import socketserver

socketserver.StreamRequestHandler.disable_nagle_algorithm = True

from ministack.services.cloudformation import provisioners as _provisioners  # noqa: E402


def _camel_case_cors(props):
    cors = props.get("CorsConfiguration") if isinstance(props, dict) else None
    if not isinstance(cors, dict):
        return props
    return {**props, "CorsConfiguration": {k[:1].lower() + k[1:]: v for k, v in cors.items()}}


_api = _provisioners._RESOURCE_HANDLERS["AWS::ApiGatewayV2::Api"]
_create, _update = _api["create"], _api["update"]
_api["create"] = lambda logical_id, props, *rest, **named: _create(logical_id, _camel_case_cors(props), *rest, **named)
_api["update"] = lambda physical_id, old, new, *rest, **named: _update(
    physical_id, old, _camel_case_cors(new), *rest, **named
)

from ministack.app import main  # noqa: E402  (the patch must come first)

if __name__ == "__main__":
    main()
