"""Replies parsed in one place: `parse_reply`, the response callback of every AI.* command, hands a reply
to the parser its command's options name."""

from __future__ import annotations



from .tables import AI_COMMANDS, REPLY_OPTION, blob2numpy


# ---------------------------------------------------------------------------------------------
# Replies

def _text(value):
    return value.decode() if isinstance(value, (bytes, bytearray)) else value


def _decode_all(value):
    if isinstance(value, list):
        return [_decode_all(v) for v in value]
    return _text(value)


def _as_dict(reply) -> dict:
    """The dict of a flat [name, value, ...] reply (or a RESP3 map), names lower-cased; values
    as they are."""
    if isinstance(reply, dict):
        items = reply.items()
    else:
        if len(reply) % 2:
            raise RuntimeError(f"Can't unpack the list: {reply}")
        items = zip(reply[::2], reply[1::2])
    return {_text(name).lower(): value for name, value in items}


def _as_record(reply) -> dict:
    """As redisai-py's replies as dicts: names lower-cased, string values decoded, the blob and
    lists left as they are."""
    return {name: (value if name == "blob" else _text(value))
            for name, value in _as_dict(reply).items()}


def _parse_status(reply, **options):
    return _text(reply)


def _parse_tensor(reply, as_numpy=True, as_numpy_mutable=False, meta_only=False, **options):
    fields = _as_dict(reply)
    dtype = _text(fields["dtype"])
    shape = [int(d) for d in fields["shape"]]
    if meta_only:
        return {"dtype": dtype, "shape": shape}
    if as_numpy or as_numpy_mutable:
        blob = fields["blob"]
        if isinstance(blob, str):  # a transaction's EXEC reply is decoded by redis-py
            blob = blob.encode()
        return blob2numpy(blob, shape, dtype, mutable=as_numpy_mutable)
    if dtype in ("FLOAT", "DOUBLE"):
        convert = float
    elif dtype == "STRING":
        convert = _text
    else:
        convert = int
    return {"dtype": dtype, "shape": shape, "values": [convert(v) for v in fields["values"]]}


def _parse_modelget(reply, **options):
    """A dict; inputs and outputs decoded. The blob is bytes, or the list of its chunks when the
    server sent it in chunks (it is as long as its MODEL_CHUNK_SIZE or longer), as redisai-py
    returns it."""
    fields = _as_record(reply)
    for name in ("inputs", "outputs"):
        if name in fields:
            fields[name] = _decode_all(fields[name])
    return fields


def _parse_record(reply, **options):
    """SCRIPTGET / INFO: a dict (SCRIPTGET's 'entry points' stay bytes, as in redisai-py)."""
    return _as_record(reply)


def _parse_scan(reply, **options):
    return _decode_all(reply)


def _parse_dag(reply, dag_ops=(), **options):
    """The list of the DAG's op replies, each parsed by its op's parser; an op's error stays in
    the list as a ResponseError (Dag.execute raises it). A timed-out DAG answers 'TIMEDOUT'."""
    if not isinstance(reply, list):
        return _text(reply)
    out = []
    for i, item in enumerate(reply):
        if isinstance(item, Exception):
            out.append(item)
        elif item in (b"NA", "NA"):
            out.append("NA")
        elif i < len(dag_ops):
            out.append(dag_ops[i](item))
        else:
            out.append(_decode_all(item))
    return out


_PARSERS = {
    "status": _parse_status,
    "tensor": _parse_tensor,
    "modelget": _parse_modelget,
    "record": _parse_record,
    "scan": _parse_scan,
    "dag": _parse_dag,
}


def parse_reply(response, **options):
    """The response callback of every AI.* command: parses the reply with the parser named by
    the command's options; replies of commands sent without one (and errors) are returned as they
    are."""
    kind = options.get(REPLY_OPTION)
    if kind is None or isinstance(response, Exception):
        return response
    return _PARSERS[kind](response, **{k: v for k, v in options.items() if k != REPLY_OPTION})


def install_callbacks(callbacks) -> None:
    for command in AI_COMMANDS:
        callbacks[command] = parse_reply
