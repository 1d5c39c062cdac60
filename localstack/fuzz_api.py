"""Fuzz the deployed REST API against docs/openapi.yaml with schemathesis (`cargo xtask test`).

Registers a throwaway user to get a token, then runs every operation of the spec with generated valid and invalid
inputs, authenticated, and fails on any answer that breaks the spec or a check (5xx, undocumented status, body
that does not match its schema, invalid input accepted, missing auth accepted). Bounded: a fixed number of
examples per operation and a fixed seed, so a run takes about the same time and finds the same cases.

usage: fuzz_api.py <http endpoint> [<max examples per operation>]
"""

import ast
import json
import os
import sys
import threading
import urllib.request
import uuid
from pathlib import Path


def register(base: str) -> str:
    body = json.dumps({"username": f"fuzz_{uuid.uuid4().hex[:10]}", "password": "fuzzing-password-1"}).encode()
    request = urllib.request.Request(f"{base}/auth/register", data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["token"]


def serialize_ast_parse() -> None:
    """CPython 3.11 keeps the AST constructor's recursion counter in state shared by threads: two `ast.parse` at
    once (hypothesis describes lambdas with it, one per worker) can fail with "SystemError: AST constructor
    recursion depth mismatch" (python/cpython#106905, fixed in 3.12). One lock around `ast.parse` keeps the two
    workers from ever parsing at the same moment; nothing else in the run parses Python."""
    parse, lock = ast.parse, threading.Lock()

    def locked_parse(*args, **kwargs):
        with lock:
            return parse(*args, **kwargs)

    ast.parse = locked_parse


def main() -> None:
    base = sys.argv[1].rstrip("/")
    examples = sys.argv[2] if len(sys.argv) > 2 else "15"
    root = Path(__file__).resolve().parent.parent
    token = register(base)
    arguments = [
        "--config-file", str(root / "localstack" / "schemathesis.toml"),
        "run",
        str(root / "docs" / "openapi.yaml"),
        "--url", base,
        "--header", f"Authorization: Bearer {token}",
        "--max-examples", examples,
        "--seed", "20261122",
        "--workers", "2",
        "--request-timeout", "30",
        "--max-time", "300",
        "--warnings", "off",
        # Logging out (or deleting the account) ends the session of the one token the run has: every later
        # request would be a 401. tests/tests/sessions.rs and account_deletion.rs cover these routes.
        "--exclude-operation-id", "logout",
        "--exclude-operation-id", "logoutEverywhere",
        "--exclude-operation-id", "deleteAccount",
    ]
    # schemathesis keeps a cache of failing examples in its working directory: keep it out of the repository.
    workdir = root / ".local" / "schemathesis"
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)
    # In this process rather than as a subprocess, so the lock above covers the run.
    serialize_ast_parse()
    from schemathesis.cli import schemathesis

    schemathesis.main(args=arguments, prog_name="schemathesis")  # exits with the run's status


if __name__ == "__main__":
    main()
