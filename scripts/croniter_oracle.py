#!/usr/bin/env python3
"""Independent oracle for the Cron property test: reads JSON lines
{"expr": str, "tz": str, "start": int (unix seconds), "count": int} on stdin and writes one JSON
line per input: {"runs": [unix seconds, ...]} or {"error": str}. Uses PyPI croniter."""
import json
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter


def main() -> None:
    requests = [json.loads(line) for line in sys.stdin.read().splitlines() if line.strip()]
    out = []
    for request in requests:
        try:
            start = datetime.fromtimestamp(request["start"], ZoneInfo(request["tz"]))
            iterator = croniter(request["expr"], start)
            runs = [int(iterator.get_next(datetime).timestamp()) for _ in range(request["count"])]
            out.append(json.dumps({"runs": runs}))
        except Exception as error:  # report, never hide: the Swift side decides what to do
            out.append(json.dumps({"error": f"{type(error).__name__}: {error}"}))
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
