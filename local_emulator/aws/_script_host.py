"""Runs one `aws:executeScript` script the way SSM does: a fresh interpreter, the handler called
with `(events, context)`, its return value as the step's `Payload`.

Started by the SSM runner as `python -I _script_host.py REQUEST.json RESULT.json`; `-I` keeps the
project off `sys.path`, so a script that imports something SSM would not have fails here too.
It must stay importable on its own: standard library only.
"""
import json
import sys
import traceback


def main(request_path: str, result_path: str) -> int:
    with open(request_path, encoding="utf-8") as handle:
        request = json.load(handle)
    filename = request.get("filename") or "<aws:executeScript>"
    # An attachment runs as its module (its name without .py), an inline script as a script.
    module = filename[:-3] if filename.endswith(".py") else "__ssm_script__"
    namespace = {"__name__": module, "__file__": filename}
    try:
        exec(compile(request["script"], filename, "exec"), namespace)
        handler = namespace.get(request["handler"])
        if not callable(handler):
            raise NameError(f"the script defines no function {request['handler']!r} "
                            "(inputs.Handler must name a function of the script)")
        payload = handler(request["events"], request["context"])
        json.dumps(payload)  # SSM needs a JSON-serialisable return value too
        result = {"ok": True, "payload": payload}
    except BaseException as exc:  # noqa: BLE001 - any failure of the script is the step's failure
        result = {"ok": False, "error_type": type(exc).__name__, "error": str(exc),
                  "traceback": traceback.format_exc()}
    with open(result_path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
