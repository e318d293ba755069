#!/usr/bin/python3
# SPDX-License-Identifier: MIT
#
# demo-gen.py DIR STEPS... - writes the sample training run of the demo:
# DIR/step-N/ for each step, holding model.safetensors (a tiny MLP),
# optimizer.pt (its AdamW state, via torch.save, when torch is there)
# and trainer_state.json.  Deterministic; a few hundred KiB in all.
# Prints "STEP VAL_LOSS" per checkpoint.  Runs without torch too (no
# optimizer.pt then): there is no python safetensors package, so the
# safetensors files are written by hand (8-byte length, JSON, data).
import json
import math
import os
import random
import struct
import sys

try:
    import torch
except ImportError:
    torch = None


def safetensors(path, tensors, metadata):
    header, blob = {"__metadata__": metadata}, b""
    for name, shape, values in tensors:
        data = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape,
                        "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + blob)


def main(out, steps):
    rnd = random.Random(42)
    shapes = [("layer1.weight", [64, 32]), ("layer1.bias", [64]),
              ("layer2.weight", [10, 64]), ("layer2.bias", [10])]
    params = {n: [rnd.gauss(0, 0.1) for _ in range(math.prod(s))]
              for n, s in shapes}
    if torch is not None:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(32, 64),
                                    torch.nn.Linear(64, 10))
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    for i, step in enumerate(steps):
        # A loss that falls, with one bad evaluation to make "best" matter.
        loss = round(2.4 / (1 + 0.6 * i) + (0.35 if i == 3 else 0)
                     + rnd.uniform(0, 0.02), 4)
        d = os.path.join(out, "step-%d" % step)
        os.makedirs(d, exist_ok=True)
        for n in params:
            params[n] = [v + rnd.gauss(0, 0.01) for v in params[n]]
        if torch is not None:
            x = torch.randn(16, 32)
            model(x).pow(2).mean().backward()
            opt.step()
            opt.zero_grad()
            sd = {k: v.detach().reshape(-1).tolist()
                  for k, v in model.state_dict().items()}
            params = {n: sd[n.replace("layer1", "0").replace("layer2", "1")]
                      for n, _ in shapes}
            torch.save({"optimizer": opt.state_dict(), "step": step,
                        "epoch": i // 2, "lr": 3e-4},
                       os.path.join(d, "optimizer.pt"))
        safetensors(os.path.join(d, "model.safetensors"),
                    [(n, s, params[n]) for n, s in shapes],
                    {"format": "pt", "step": str(step)})
        with open(os.path.join(d, "trainer_state.json"), "w") as f:
            json.dump({"global_step": step, "epoch": i // 2,
                       "log_history": [{"step": step, "eval_loss": loss}]},
                      f, indent=2)
        print(step, loss)


if __name__ == "__main__":
    main(sys.argv[1], [int(s) for s in sys.argv[2:]])
