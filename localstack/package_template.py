"""Point each Rust function's CodeUri at its `cargo lambda build` output.

This does for the local emulator what `sam build` does before a real AWS
deploy: every `AWS::Serverless::Function` whose `Metadata.BuildMethod` is
`rust-cargolambda` gets `Properties.CodeUri` set to the directory holding its
compiled `bootstrap` (`<target>/lambda/<Metadata.BuildProperties.Binary>`).
The SAM template itself therefore stays identical for AWS and the emulator;
`aws cloudformation package` then zips those directories and uploads them.

Usage (with the project venv's python):
    python localstack/package_template.py infra/template.yaml OUT.yaml \
        [--lambda-dir target/lambda]
"""

import argparse
import os
import sys
from pathlib import Path

import yaml
from awscli.customizations.cloudformation.yamlhelper import yaml_dump, yaml_parse

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTION_TYPE = "AWS::Serverless::Function"
BUILD_METHOD = "rust-cargolambda"


def default_lambda_dir() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR")
    return (Path(target) if target else REPO_ROOT / "target") / "lambda"


def rewrite(template: dict, lambda_dir: Path) -> list[str]:
    """Set CodeUri on every cargo-lambda function; return the problems found."""
    problems = []
    resources = template.get("Resources") or {}
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") != FUNCTION_TYPE:
            continue
        metadata = resource.get("Metadata") or {}
        if metadata.get("BuildMethod") != BUILD_METHOD:
            continue
        binary = (metadata.get("BuildProperties") or {}).get("Binary")
        if not binary:
            problems.append(
                f"{logical_id}: Metadata.BuildProperties.Binary is missing "
                "(needed to find the cargo-lambda output)"
            )
            continue
        code_dir = (lambda_dir / binary).resolve()
        if not (code_dir / "bootstrap").is_file():
            problems.append(
                f"{logical_id}: {code_dir}/bootstrap does not exist "
                "(run `cargo lambda build --release` first)"
            )
            continue
        resource.setdefault("Properties", {})["CodeUri"] = str(code_dir)
        print(f"  {logical_id}: CodeUri -> {code_dir}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path, help="SAM template to read")
    parser.add_argument("output", type=Path, help="where to write the result")
    parser.add_argument(
        "--lambda-dir",
        type=Path,
        default=default_lambda_dir(),
        help="cargo-lambda output directory (default: $CARGO_TARGET_DIR or target, + /lambda)",
    )
    args = parser.parse_args()

    try:
        template = yaml_parse(args.template.read_text())
    except (OSError, ValueError, yaml.YAMLError) as err:
        print(f"package_template: cannot read {args.template}: {err}", file=sys.stderr)
        return 1
    if not isinstance(template, dict):
        print(f"package_template: {args.template} is not a template mapping", file=sys.stderr)
        return 1

    problems = rewrite(template, args.lambda_dir)
    if problems:
        print("package_template: cannot package " + str(args.template) + ":", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(yaml_dump(template))
    return 0


if __name__ == "__main__":
    sys.exit(main())
