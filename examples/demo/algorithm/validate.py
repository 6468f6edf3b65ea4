"""A validation algorithm that uses only Python's standard library.

It reads the data steward's CSV through the Enclave API (https://localhost:5000, self-signed),
scores every row with the algorithm owner's logistic model, and posts accuracy, sensitivity and
specificity (with 95% Wilson intervals) as the final report, in the shape of EscrowAI's example
criteria. Runtime parameter THRESHOLD (default 0.5) sets the decision threshold.

The model's coefficients are in model.json, next to this file: the algorithm owner's secret.
`sealroom up --demo` seals it (listed in secrets.json); the agent decrypts it inside the enclave.
"""
import base64
import csv
import io
import json
import math
import os
import ssl
import urllib.parse
import urllib.request

API = os.environ.get("ENCLAVE_API_URL", "https://localhost:5000")
CONTEXT = ssl.create_default_context()
CONTEXT.check_hostname = False
CONTEXT.verify_mode = ssl.CERT_NONE  # the enclave's certificate is self-signed, as in EscrowAI

# The algorithm owner's model: logistic regression coefficients (sealed in the uploaded package).
MODEL_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.json")


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(API + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, context=CONTEXT, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def report(document, status):
    return {
        "json_data": base64.b64encode(json.dumps(document).encode()).decode(),
        "name": "demo logistic model",
        "status": status,
        "project": os.environ.get("ESCROW_PROJECT_ID"),
        "run": os.environ.get("ESCROW_RUN_ID"),
        "run_configuration": os.environ.get("ESCROW_RUN_CONFIG_ID"),
        "upload_location": "unused",
    }


def wilson(successes, n):
    if n == 0:
        return 0.0
    p, z = successes / n, 1.96
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return round(half, 4)


def load_model():
    with open(MODEL_PATH) as f:
        model = json.load(f)
    return {k: float(v) for k, v in model["weights"].items()}, float(model["bias"])


def main():
    threshold = float(os.environ.get("THRESHOLD", "0.5"))
    weights, bias = load_model()
    status, body = call("GET", "/api/v1/data/files")
    files = json.loads(body)["files"]
    print(f"{len(files)} file(s) in the dataset")
    tp = tn = fp = fn = 0
    for f in files:
        if not f["name"].endswith(".csv"):
            continue
        query = urllib.parse.urlencode({"filepath": f["name"]})
        status, body = call("GET", f"/api/v1/data/file?{query}")
        for row in csv.DictReader(io.StringIO(body.decode())):
            z = bias + sum(w * float(row[k]) for k, w in weights.items())
            predicted = 1 / (1 + math.exp(-z)) >= threshold
            actual = row["outcome"] == "1"
            tp += predicted and actual
            tn += (not predicted) and (not actual)
            fp += predicted and not actual
            fn += (not predicted) and actual
        call("POST", "/api/v1/report", report({"file": f["name"], "rows_scored": tp + tn + fp + fn}, "In Progress"))
    n = tp + tn + fp + fn
    metrics = {
        "accuracy": {"value": round((tp + tn) / n, 4), "CI": wilson(tp + tn, n), "n": n},
        "sensitivity": {"value": round(tp / max(tp + fn, 1), 4), "CI": wilson(tp, tp + fn), "n": max(tp + fn, 1)},
        "specificity": {"value": round(tn / max(tn + fp, 1), 4), "CI": wilson(tn, tn + fp), "n": max(tn + fp, 1)},
    }
    status, body = call("POST", "/api/v1/report", report({"report": metrics}, "Completed"))
    print("final report:", status, body.decode())
    return 0 if status == 200 else 1


if __name__ == "__main__":
    raise SystemExit(main())
