"""Score a user in one command: a script reads the user's features from a hash, runs a model on them and
writes the score back into the hash.

What it shows
-------------
1. A TorchScript churn model (``torch.jit.script`` of a small ``nn.Module`` with fixed weights, no
   downloads): features ``[N, 3]`` (age, visits, spend) -> probability ``[N, 1]``, stored with
   ``AI.MODELSTORE {user:42}churn TORCH CPU BLOB ...``.
2. The user's features in a plain Redis hash, as a feature store keeps them:
   ``HSET {user:42} age 35 visits 12 spend 320.5``.
3. A script (RedisAI 1.2's TorchScript extensions) that, in one ``AI.SCRIPTEXECUTE``, reads the hash
   with ``redis.execute("HMGET", ...)``, builds a tensor, runs the model with
   ``redisAI.model_execute`` and writes ``score`` back with ``redis.execute("HSET", ...)``.
   The user's hash and the model are the command's ``KEYS``: the only keys the script may touch, which
   is what Redis Cluster routes on (both share the ``{user:42}`` hash tag) and what ACLs check; the
   script's commands run as the client's ACL user and reach replicas and the AOF.
4. Checking the score against torch running the same model locally.

How to run
----------
``make run`` in one terminal, then ``.venv/bin/python examples/feature_store_score.py``
(``--host`` / ``--port`` to point elsewhere). Client side: redisai (this package) and torch.
"""

from __future__ import annotations

import argparse
import io
import math
import warnings

USER = "{user:42}"
MODEL = "{user:42}churn"
SCRIPT_KEY = "{user:42}scoring"
FEATURES = {"age": 35, "visits": 12, "spend": 320.5}

# The script, as the README shows it.
SCRIPT = '''
def score_user(tensors: List[Tensor], keys: List[str], args: List[str]):
    user, model = keys[0], keys[1]
    fields = redis.asList(redis.execute("HMGET", user, "age", "visits", "spend"))
    features = torch.tensor([[float(str(v)) for v in fields]])
    score = redisAI.model_execute(model, [features], 1)[0]
    redis.execute("HSET", user, "score", str(float(score.item())))
'''

WEIGHTS = ([0.02, -0.15, -0.002], 0.5)  # churn rises with age, falls with visits and spend


def build_model() -> bytes:
    import torch

    class Churn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(3, 1)
            with torch.no_grad():
                self.linear.weight.copy_(torch.tensor([WEIGHTS[0]]))
                self.linear.bias.fill_(WEIGHTS[1])

        def forward(self, x):
            return torch.sigmoid(self.linear(x))

    buffer = io.BytesIO()
    with warnings.catch_warnings():  # recent torch calls torch.jit deprecated; TorchScript is the format
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(Churn()), buffer)
    return buffer.getvalue()


def expected_score() -> float:
    weights, bias = WEIGHTS
    z = sum(w * FEATURES[name] for w, name in zip(weights, ("age", "visits", "spend"))) + bias
    return 1 / (1 + math.exp(-z))


def main(host: str = "127.0.0.1", port: int = 6379) -> dict:
    from redisai import Client

    con = Client(host=host, port=port)
    con.delete(USER, MODEL, SCRIPT_KEY)
    con.hset(USER, mapping=FEATURES)
    con.modelstore(MODEL, "TORCH", "CPU", build_model())
    con.scriptstore(SCRIPT_KEY, "CPU", SCRIPT, entry_points=["score_user"])
    reply = con.scriptexecute(SCRIPT_KEY, "score_user", keys=[USER, MODEL])
    score = float(con.hget(USER, "score"))
    print(f"AI.SCRIPTEXECUTE {SCRIPT_KEY} score_user KEYS 2 {USER} {MODEL} -> {reply}; "
          f"HGET {USER} score -> {score:.6f} (expected {expected_score():.6f})")
    return {"reply": reply, "score": score, "expected": expected_score()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6379)
    options = parser.parse_args()
    main(options.host, options.port)
