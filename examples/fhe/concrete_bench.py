#!/usr/bin/env python3
"""Concrete ML side of scripts/bench-fhe: the same 784->W dense + ReLU layer, compiled with
Concrete ML (compile_torch_model) and timed on this machine.

Reads the layers the Rust benchmark wrote (layer-784xW.json, inputs-784xW.json in DIR): integer
weights in -7..7, integer biases, 4-bit inputs. The torch model gets exactly those integers as
float weights, so Concrete ML's 4-bit symmetric weight quantization and 4-bit input quantization
reproduce them; the ReLU output is quantized to 4 bits like Sealroom's. Accumulators of 784 4x4-bit
products need ~16 bits, beyond what a table lookup handles quickly, so Concrete ML's
rounding_threshold_bits (approximate rounding before the ReLU table) is set as its documentation
recommends; the figure is printed with each result.

Prints one JSON object per line.
Usage: concrete_bench.py DIR SAMPLES WIDTH[,WIDTH] [ROUNDING_BITS] [exact|approximate]
"""
import json
import os
import sys
import time

import numpy as np


def main():
    out_dir, samples, widths = sys.argv[1], int(sys.argv[2]), [int(w) for w in sys.argv[3].split(",")]
    rounding = int(sys.argv[4]) if len(sys.argv) > 4 else 6
    method = sys.argv[5] if len(sys.argv) > 5 else "approximate"
    import torch
    import concrete.ml
    from concrete.ml.torch.compile import compile_torch_model

    torch.set_num_threads(os.cpu_count() or 1)
    for width in widths:
        doc = json.load(open(os.path.join(out_dir, f"layer-784x{width}.json")))
        xs = np.array(json.load(open(os.path.join(out_dir, f"inputs-784x{width}.json"))), dtype=np.float64)
        dense = doc["layers"][0]
        W = np.array(dense["weights"], dtype=np.float32).reshape(width, 784)
        b = np.array(dense["bias"], dtype=np.float32)
        model = torch.nn.Sequential(torch.nn.Linear(784, width), torch.nn.ReLU())
        with torch.no_grad():
            model[0].weight.copy_(torch.tensor(W))
            model[0].bias.copy_(torch.tensor(b))
        rng = np.random.default_rng(7)
        calib = rng.integers(0, 16, size=(256, 784)).astype(np.float64)
        calib[0, :] = 0
        calib[1, :] = 15
        result = {"tool": "concrete-ml", "version": concrete.ml.__version__, "layer": f"784x{width}",
                  "n_bits": 4, "rounding_threshold_bits": rounding, "rounding_method": method,
                  "loadavg_1m": os.getloadavg()[0]}
        try:
            t = time.time()
            qm = compile_torch_model(model, calib, n_bits={"model_inputs": 4, "op_inputs": 4,
                                                           "op_weights": 4, "model_outputs": 4},
                                     rounding_threshold_bits={"n_bits": rounding, "method": method})
            result["compile_s"] = round(time.time() - t, 2)
            circuit = qm.fhe_circuit
            t = time.time()
            circuit.keygen(force=True)
            result["keygen_s"] = round(time.time() - t, 2)
            for attr in ("size_of_secret_keys", "size_of_bootstrap_keys", "size_of_keyswitch_keys",
                         "size_of_inputs", "size_of_outputs", "programmable_bootstrap_count",
                         "complexity"):
                try:
                    v = getattr(circuit, attr)
                    result[attr] = v if isinstance(v, (int, float)) else str(v)
                except Exception as e:  # attribute names vary across versions
                    result[attr] = f"n/a ({type(e).__name__})"
            times, agree, total = [], 0, 0
            for x in xs[:samples]:
                x = x[None, :]
                q_x = qm.quantize_input(x)
                enc = circuit.encrypt(q_x)
                t = time.time()
                res = circuit.run(enc)
                times.append((time.time() - t) * 1000.0)
                q_y = circuit.decrypt(res)
                simulated = circuit.simulate(q_x)
                agree += int(np.sum(np.asarray(q_y) == np.asarray(simulated)))
                total += int(np.asarray(q_y).size)
            result["samples"] = len(times)
            result["server_ms_mean"] = round(float(np.mean(times)), 1)
            result["server_ms_min"] = round(float(np.min(times)), 1)
            result["exact_vs_own_simulation"] = round(agree / max(total, 1), 4)
        except Exception as e:
            result["error"] = f"{type(e).__name__}: {e}"[:500]
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
