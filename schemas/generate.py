"""Write the JSON Schema of each top-level message type into ``schemas/json/``.

Run ``python -m schemas.generate`` after changing a model, and commit the result;
``python -m schemas.generate --check`` exits 1 if the committed files are stale. Output is
deterministic: sorted keys, two-space indent, trailing newline.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import BaseModel

from schemas._base import SCHEMA_VERSION
from schemas.feedback import Feedback
from schemas.forward import Forward
from schemas.notice import Notice
from schemas.report import Report

__all__ = ["JSON_DIR", "REGENERATE", "json_schemas", "main"]

JSON_DIR = Path(__file__).parent / "json"
REGENERATE = "python -m schemas.generate"

_MESSAGES: dict[str, type[BaseModel]] = {
    "report.schema.json": Report,
    "feedback.schema.json": Feedback,
    "notice.schema.json": Notice,
    "forward.schema.json": Forward,
}


def json_schemas() -> dict[str, str]:
    """File name to JSON Schema text (draft 2020-12) for each top-level message type."""
    out = {}
    for name, model in _MESSAGES.items():
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"urn:fusionbus:schema:{name.split('.')[0]}:{SCHEMA_VERSION}"
        out[name] = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE, description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args(argv)
    stale = []
    for name, text in json_schemas().items():
        path = JSON_DIR / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(name)
        if not args.check:
            JSON_DIR.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        sys.stderr.write(f"stale JSON Schema files: {', '.join(stale)}; run {REGENERATE}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
