"""The one exception type a command raises to answer with an error reply."""


class RedisAIError(Exception):
    """An error reply, sent as is: most texts start with `ERR `, a few of RedisAI's do not."""

    def __init__(self, message: str | bytes):
        self.message = message.encode() if isinstance(message, str) else message
        super().__init__(self.message.decode(errors="replace"))


def err(message: str) -> RedisAIError:
    return RedisAIError("ERR " + message)
