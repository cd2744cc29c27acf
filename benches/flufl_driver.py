#!/usr/bin/env python3
"""Reference driver for benches/throughput.py: flufl.bounce over every file of a directory.

Each file is parsed with the stdlib email package (flufl.bounce's input) and
given to `scan_message`; one JSON line goes out per bouncing recipient, the same
work as `bounced parse --format ndjson DIR`. A message flufl.bounce raises on is
counted, not fatal, and the counts go to stderr.
"""

from __future__ import annotations

import email
import json
import logging
import sys
from pathlib import Path

from flufl.bounce import __version__, scan_message


def main(directory: Path) -> int:
    # Detectors log every exception with a traceback; the count below says enough.
    logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)
    messages = results = errors = 0
    out = sys.stdout
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        messages += 1
        with path.open("rb") as handle:
            message = email.message_from_binary_file(handle)
        try:
            recipients = scan_message(message)
        except Exception:
            errors += 1
            continue
        for recipient in sorted(recipients):
            text = (
                recipient.decode("utf-8", "replace") if isinstance(recipient, bytes) else recipient
            )
            out.write(json.dumps({"file": path.name, "recipient": text}) + "\n")
            results += 1
    print(
        f"flufl.bounce {__version__}: {messages} messages, {results} results, {errors} errors",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} DIRECTORY")
    sys.exit(main(Path(sys.argv[1])))
