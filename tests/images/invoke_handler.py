"""Run inside a bare interpreter (``python -S -s -P``, ``PYTHONPATH`` = the reproduced task root): import the
handler a function runs (its command: functions.json's handler, which Terraform sets as image_config.command),
invoke it once with the event read from stdin, print the result as JSON. Without an event in the request it
only imports the handler and reports whether it is callable.

It also reports every imported module that came from outside the task root and the standard library, so
the test proves the image's own install is complete (nothing borrowed from the developer's site-packages).
Standard library only: this file is not on the import path it checks.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import sysconfig
import uuid
from typing import Any


class Context:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "2026/01/01/[$LATEST]0"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def main() -> int:
    request: dict[str, Any] = json.load(sys.stdin)
    task_root = os.path.realpath(request["task_root"])
    module_name, _, function_name = request["handler"].rpartition(".")
    handler = getattr(importlib.import_module(module_name), function_name)
    if "event" in request:
        result = handler(request["event"], Context(request["function_name"]))
    else:
        result = {"callable": callable(handler)}

    allowed = [task_root]
    allowed += [os.path.realpath(sysconfig.get_paths()[key]) for key in ("stdlib", "platstdlib")]
    outside = sorted(
        f"{name}: {path}"
        for name, module in list(sys.modules.items())
        if name not in {"__main__", "__mp_main__"}
        if (path := getattr(module, "__file__", None))
        and not any(os.path.realpath(path).startswith(prefix + os.sep) for prefix in allowed)
    )
    site_packages = [entry for entry in sys.path if "site-packages" in entry]
    report = {"result": result, "outside_modules": outside, "site_packages_on_path": site_packages}
    sys.stdout.write("\n@@RESULT@@" + json.dumps(report, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
