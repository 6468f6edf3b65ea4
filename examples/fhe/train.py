#!/usr/bin/env python3
"""Train the example digit classifier offline and export it in the sealroom-fhe model format.

Data: scikit-learn's bundled 8x8 digits (load_digits reads a file shipped inside the package,
nothing is downloaded). Every fifth image (index % 5 == 0) is the test split, the rest trains.
Writes, next to this script:
  digits.txt       the data set, one image per line: label,64 base-17 digits (grey levels 0..16)
  digits-mlp.json  the quantized model (format documented in docs/fhe.md)

Quantization (mirrors crates/sealroom-fhe/src/model.rs exactly, integers only):
  input    q0 = (v*15 + 8) // 16                         4 bits
  dense    y = b + sum(w*q)                               int weights in [-127, 127]
  relu     q = min((max(y,0)*mult + 2^(shift-1)) >> shift, 2^bits - 1)
  range    calibrated [lo, hi] of y over the training split, widened by 10% on each side
Usage: python3 examples/fhe/train.py   (needs numpy and scikit-learn)
"""
import json
import os

import numpy as np
from sklearn.datasets import load_digits
from sklearn.neural_network import MLPClassifier

HERE = os.path.dirname(os.path.abspath(__file__))
HIDDEN = (32, 32)
ACT_BITS = 4
WEIGHT_MAX = 127
SHIFT = 24
CLIP_PERCENTILE = 99.5
RANGE_WIDEN = 0.1


def quantize_input(v):
    return (v * 15 + 8) // 16


def relu_requant(y, mult, shift, bits):
    y = np.maximum(y, 0).astype(object)
    q = (y * mult + (1 << (shift - 1))) >> shift
    return np.minimum(q, (1 << bits) - 1).astype(np.int64)


def main():
    d = load_digits()
    X_raw = d.data.astype(np.int64)  # 0..16
    y_lab = d.target.astype(np.int64)
    n = len(X_raw)
    test = np.arange(n) % 5 == 0
    train = ~test
    Xq = quantize_input(X_raw)
    Xf = Xq / 15.0

    clf = MLPClassifier(hidden_layer_sizes=HIDDEN, activation="relu", alpha=1e-3,
                        max_iter=2000, random_state=0)
    clf.fit(Xf[train], y_lab[train])
    float_acc = float((clf.predict(Xf[test]) == y_lab[test]).mean())

    layers = []
    q = Xq[train]
    q_test = Xq[test]
    in_scale = 1.0 / 15.0  # real value of one input step
    n_layers = len(clf.coefs_)
    for li, (W, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        s_w = np.abs(W).max() / WEIGHT_MAX
        w_int = np.round(W / s_w).astype(np.int64)  # (in, out)
        acc_scale = in_scale * s_w  # real value of one accumulator step
        b_int = np.round(b / acc_scale).astype(np.int64)
        layers.append({
            "type": "dense",
            "inputs": int(W.shape[0]),
            "outputs": int(W.shape[1]),
            "weights": [int(v) for v in w_int.T.reshape(-1)],
            "bias": [int(v) for v in b_int],
        })
        acc = q @ w_int + b_int
        acc_test = q_test @ w_int + b_int
        if li == n_layers - 1:
            break
        pos = acc[acc > 0]
        clip = float(np.percentile(pos, CLIP_PERCENTILE)) if len(pos) else 1.0
        qmax = (1 << ACT_BITS) - 1
        # q = y * qmax / clip, as mult / 2^shift.
        mult = max(1, int(round(qmax / clip * (1 << SHIFT))))
        lo, hi = int(acc.min()), int(acc.max())
        span = hi - lo
        lo_w = lo - int(RANGE_WIDEN * span)
        hi_w = hi + int(RANGE_WIDEN * span)
        layers.append({"type": "relu", "mult": mult, "shift": SHIFT, "bits": ACT_BITS,
                       "range": [lo_w, hi_w]})
        q = relu_requant(acc, mult, SHIFT, ACT_BITS)
        q_test = relu_requant(acc_test, mult, SHIFT, ACT_BITS)
        in_scale = clip / qmax
    quant_acc = float((np.argmax(acc_test, axis=1) == y_lab[test]).mean())

    doc = {
        "format": "sealroom-fhe-model",
        "version": 1,
        "name": "digits-mlp",
        "description": "MLP 64-32-32-10 on scikit-learn's 8x8 digits, 4-bit inputs and activations, "
                       "int8 weights (examples/fhe/train.py)",
        "input": {"shape": [1, 8, 8], "bits": 4},
        "layers": layers,
        "max_encrypted_layers": 4,
        "labels": [str(i) for i in range(10)],
        "metadata": {
            "dataset": "sklearn.datasets.load_digits, test = index % 5 == 0",
            "train_samples": int(train.sum()),
            "test_samples": int(test.sum()),
            "float_test_accuracy": round(float_acc, 4),
            "quantized_test_accuracy": round(quant_acc, 4),
            "sklearn_random_state": 0,
        },
    }
    with open(os.path.join(HERE, "digits-mlp.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    digits17 = "0123456789abcdefg"
    with open(os.path.join(HERE, "digits.txt"), "w") as f:
        f.write("# scikit-learn load_digits (UCI optical digits, CC BY 4.0): label,64 grey levels 0..16 in base 17\n")
        for img, lab in zip(X_raw, y_lab):
            f.write(f"{lab}," + "".join(digits17[v] for v in img) + "\n")
    print(f"float test accuracy {float_acc:.4f}, quantized test accuracy {quant_acc:.4f}")


if __name__ == "__main__":
    main()
