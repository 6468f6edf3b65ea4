#!/usr/bin/env python3
"""Reference answers from Python cerberus 1.3.8 for the differential tests.

Reads JSON lines from stdin and writes one JSON line per input line to stdout.

  {"id": N, "schema": TEXT, "doc": TEXT}
      -> {"id": N, "result": "ok", "valid": BOOL, "errors": {...}}
       | {"id": N, "result": "schema_error" | "schema_raised" | "raised", "detail": STR}
  {"id": N, "pattern": STR, "strings": [STR, ...]}
      -> {"id": N, "result": "compiled", "matches": [BOOL, ...]} | {"id": N, "result": "re_error", "detail": STR}

Schema and document texts are decoded with json.loads, as a Python Enclave API would. Each case
gets a fresh schema cache (Cerberus caches validated schemas by hash across validators).
"""
import json
import re
import sys
import warnings

import cerberus
from cerberus import Validator
from cerberus.schema import SchemaError

warnings.simplefilter("ignore")
assert cerberus.__version__ == "1.3.8", cerberus.__version__


def run_case(case):
    out = {"id": case["id"]}
    if "pattern" in case:
        p = case["pattern"]
        if not p.endswith("$"):
            p += "$"
        try:
            r = re.compile(p)
        except Exception as e:  # re.error, OverflowError, RecursionError
            out.update(result="re_error", detail="%s: %s" % (type(e).__name__, e))
            return out
        out.update(result="compiled", matches=[r.match(s) is not None for s in case["strings"]])
        return out
    Validator.clear_caches()
    schema = json.loads(case["schema"])
    doc = json.loads(case["doc"])
    try:
        v = Validator(schema)
    except SchemaError as e:
        out.update(result="schema_error", detail=str(e))
        return out
    except Exception as e:
        out.update(result="schema_raised", detail="%s: %s" % (type(e).__name__, e))
        return out
    try:
        valid = v.validate(doc)
        errors = v.errors
    except Exception as e:
        out.update(result="raised", detail="%s: %s" % (type(e).__name__, e))
        return out
    out.update(result="ok", valid=valid, errors=errors)
    return out


def main():
    sys.setrecursionlimit(10000)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        case = json.loads(line)
        res = run_case(case)
        sys.stdout.write(json.dumps(res, ensure_ascii=False) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
