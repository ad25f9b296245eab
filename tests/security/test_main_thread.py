"""No run holds Redis's main thread: a model whose first runs were tiny, then given inputs whose values make
one run long (NonMaxSuppression over many boxes that never suppress each other, Range, Tile: the cost
follows the values, not the shapes), runs on a worker while every client's commands are answered."""

import numpy as np
import pytest

from hostile_watch import plant_bystanders, repeat_under_watch
from model_fixtures import ONNX_IR_VERSION, ONNX_OPSET


def _nms_model() -> bytes:
    """boxes [1, N, 4], scores [1, 1, N] -> the indices NonMaxSuppression keeps. With an IoU threshold of
    1.0 no box suppresses another, so a run compares every pair: N^2 / 2 comparisons."""
    from onnx import TensorProto, helper

    limit = helper.make_tensor("limit", TensorProto.INT64, [1], [1 << 40])
    threshold = helper.make_tensor("threshold", TensorProto.FLOAT, [1], [1.0])
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores", "limit", "threshold"], ["kept"])
    graph = helper.make_graph([node], "nms",
                              [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, "n", 4]),
                               helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, "n"])],
                              [helper.make_tensor_value_info("kept", TensorProto.INT64, ["k", 3])],
                              [limit, threshold])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    model.ir_version = ONNX_IR_VERSION
    return model.SerializeToString()


def _set_boxes(raw, count: int) -> None:
    boxes = np.tile(np.array([0, 0, 1, 1], np.float32), (1, count, 1))
    scores = np.ones((1, 1, count), np.float32)
    assert raw.call("AI.TENSORSET", "boxes", "FLOAT", 1, count, 4, "BLOB", boxes.tobytes()) == b"OK"
    assert raw.call("AI.TENSORSET", "scores", "FLOAT", 1, 1, count, "BLOB", scores.tobytes()) == b"OK"


@pytest.mark.parametrize("form", ["MODELEXECUTE", "DAGEXECUTE"])
def test_a_run_whose_cost_follows_its_values_never_holds_the_main_thread(new_server, raw, form):
    # Long enough for the server's kill switch not to stop it before it has been watched a while.
    server = new_server(module_args=("INTRA_OP_PARALLELISM", "1", "MODEL_EXECUTION_TIMEOUT", "600000"))
    from resp import RawConnection

    with RawConnection(server.port) as connection:
        assert connection.call("AI.MODELSTORE", "nms", "ONNX", "CPU", "BLOB", _nms_model()) == b"OK"
        _set_boxes(connection, 2)
        for _ in range(64):  # many tiny runs first: what once let a model's runs onto the main thread
            assert connection.call("AI.MODELEXECUTE", "nms", "INPUTS", 2, "boxes", "scores",
                                   "OUTPUTS", 1, "kept") == b"OK"
        planted = plant_bystanders(server.port)
        _set_boxes(connection, 12_000)
        command = (("AI.MODELEXECUTE", "nms", "INPUTS", 2, "boxes", "scores", "OUTPUTS", 1, "kept")
                   if form == "MODELEXECUTE" else
                   ("AI.DAGEXECUTE", "LOAD", 2, "boxes", "scores", "PERSIST", 1, "kept", "|>",
                    "AI.MODELEXECUTE", "nms", "INPUTS", 2, "boxes", "scores", "OUTPUTS", 1, "kept"))
        reply = repeat_under_watch(server, lambda: connection.call(*command), planted=planted)
        assert reply in (b"OK", [b"OK"]), reply
        assert connection.call("AI.TENSORGET", "kept", "META")[3] == [12_000, 3]


def test_inline_run_max_us_is_accepted_and_has_no_effect(new_server):
    """A configuration written for an earlier version still loads; the log says the argument is retired."""
    server = new_server(module_args=("INLINE_RUN_MAX_US", "100"))
    assert server.client().ping()
    assert "INLINE_RUN_MAX_US no longer has an effect" in server.log()
    assert "ai_runs_inline" not in server.client().info("ai")
