"""The one run path. AI.MODELEXECUTE, MODELRUN, SCRIPTEXECUTE and SCRIPTRUN are DAGs of one op and
AI.DAGEXECUTE[_RO] (DAGRUN[_RO]) a DAG of its ops (execution/dag.py); every one starts in `start`, and
its end becomes one outcome in `outcome_of`: the tensors to write (each replicated as `AI.TENSORSET key
TYPE dims... BLOB data`, so replicas and the AOF never run a model) and the reply. module/outcome.c
applies an outcome (RedisAI_ReplyOutcome): writes every key (all or nothing), replicates, announces
`ai.tensorset`, replies. Nothing else writes a run's outputs.
"""

from __future__ import annotations

import time

from .. import keyspace, reply
from ..execution import blocking
from ..execution.dag import DagRun
from ..persistence.commands import replication_parts
from .request import reply_failure

# A prepared outcome copies its reply; a DAG whose TENSORGETs return more is answered on the main thread,
# its reply borrowed from the tensors themselves.
_PREPARED_REPLY_BYTES = 1 << 20


def start(ctx, run: DagRun) -> None:
    """A parsed run whose queues admit it: answered now when it needs no worker, else its client blocked
    until its last op is done."""
    started_at = time.monotonic()
    if not run.needs_workers:
        for op in run.ops:
            op.state = "done"
        return answer(ctx, run)
    blocking.block(ctx, run, answer, run.timeout_ms, prepare=outcome_of)
    run.start(started_at)


def error_text(message: str) -> bytes:
    text = message.encode(errors="replace")
    return text if text.startswith(b"ERR ") else b"ERR " + text


def outcome_of(run: DagRun, borrow: bool = False) -> int | None:
    """The outcome of a finished run, for module/outcome.c. On a worker (`borrow` False) its reply is
    copied, and None means that the main thread answers instead (`answer`: a DAG whose TENSORGETs return
    more than _PREPARED_REPLY_BYTES); `borrow` is for an outcome applied at once, whose reply refers to
    the tensors' own memory."""
    if run.timed_out:
        return reply.prepared_status(b"TIMEDOUT")
    if run.one_op:
        job = run.job
        if job.error is not None:
            return reply.prepared_error(reply.one_line(error_text(job.error)))
        return _with_outputs(run.output_names, job.outputs, None, borrow)
    if not borrow and sum(run.slots[op.inputs[0]].nbytes() for op in run.ops
                          if op.kind == "get" and run.slots[op.inputs[0]] is not None) > _PREPARED_REPLY_BYTES:
        return None
    parts = _dag_reply(run)
    if run.failed or not run.persist:
        return reply.prepared_outputs((), parts, borrow)
    return _with_outputs([name for name, _ in run.persist], [run.slots[slot] for _, slot in run.persist], parts,
                         borrow)


def _with_outputs(names, tensors: list, parts, borrow: bool) -> int:
    """An outcome that stores each tensor in its key, then replies OK or `parts`."""
    for tensor in tensors:
        tensor.validate()  # every output before any key is written (Three doors, docs/architecture.md)
    addresses = []
    try:
        items = []
        for name, tensor in zip(names, tensors):
            addresses.append(keyspace.register_output(tensor))
            items.append((name, addresses[-1], *replication_parts(tensor)))
        return reply.prepared_outputs(items, parts, borrow)
    except BaseException:
        for address in addresses:
            keyspace.release(address)
        raise


def _dag_reply(run: DagRun) -> list:
    """A DAG's whole reply, built before any key is written or any byte sent (see reply.py)."""
    first_failure = next((i for i, op in enumerate(run.ops) if op.state == "failed"), len(run.ops))
    parts = [reply.array_part(len(run.ops))]
    for i, op in enumerate(run.ops):
        if i > first_failure:
            parts.append(reply.status_part(b"NA"))
        elif op.kind == "get":
            meta, data = op.get_format
            reply.tensor_parts(run.slots[op.inputs[0]], meta, data, parts)
        elif op.state == "failed":
            parts.append(reply.error_part(error_text(op.error)))
        else:
            parts.append(reply.status_part(b"OK"))
    if reply.FAULTS:
        reply.fault_point("dag")
    return parts


def answer(ctx, run: DagRun) -> None:
    """On the main thread, the outcome applied at once: a run that needs no worker, a DAG whose reply is
    too large to copy, or a run whose worker could not prepare its outcome (building it again meets the
    same problem, answered as the command's failure)."""
    try:
        address = outcome_of(run, borrow=True)
    except Exception as e:
        return reply_failure(ctx, run.command, e)
    for unstored in reply.apply_prepared(ctx, address):
        keyspace.release(unstored)
    keyspace.release_parked()  # the values the keys held: their memory is the next one's
