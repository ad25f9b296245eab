"""The order in which RedisAI's AI._MODELSCAN / AI._SCRIPTSCAN listed keys.

RedisAI kept every model's and script's run statistics in one hash table (its copy of Redis's old
dict.c, SipHash-1-2 with an all-zero seed, never seeded) and listed the entries in table order:
bucket by bucket, the newest entry of a bucket first, the table doubling when it held as many entries
as buckets. Clients and tests compare the whole list, so we list keys in that order, replaying the
inserts (models and scripts together, oldest first) into such a table.
"""

from __future__ import annotations

_MASK = (1 << 64) - 1
_INITIAL_SIZE = 4


def _rotl(x: int, bits: int) -> int:
    return ((x << bits) | (x >> (64 - bits))) & _MASK


def siphash_1_2(data: bytes, key: bytes = bytes(16)) -> int:
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")
    v0, v1 = 0x736F6D6570736575 ^ k0, 0x646F72616E646F6D ^ k1
    v2, v3 = 0x6C7967656E657261 ^ k0, 0x7465646279746573 ^ k1

    def sipround():
        nonlocal v0, v1, v2, v3
        v0 = (v0 + v1) & _MASK
        v1 = _rotl(v1, 13) ^ v0
        v0 = _rotl(v0, 32)
        v2 = (v2 + v3) & _MASK
        v3 = _rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & _MASK
        v3 = _rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & _MASK
        v1 = _rotl(v1, 17) ^ v2
        v2 = _rotl(v2, 32)

    end = len(data) - len(data) % 8
    for i in range(0, end, 8):
        word = int.from_bytes(data[i:i + 8], "little")
        v3 ^= word
        sipround()
        v0 ^= word
    last = (len(data) << 56) & _MASK
    for shift, byte in enumerate(data[end:]):
        last |= byte << (8 * shift)
    v3 ^= last
    sipround()
    v0 ^= last
    v2 ^= 0xFF
    sipround()
    sipround()
    return v0 ^ v1 ^ v2 ^ v3


def redisai_order(names: list[bytes]) -> list[bytes]:
    """`names` (oldest insert first) in the order RedisAI's table iterated them."""
    table: list[list[bytes]] = []
    for count, name in enumerate(names):
        if not table:
            table = [[] for _ in range(_INITIAL_SIZE)]
        elif count >= len(table):  # a full rehash ends as RedisAI's incremental one did
            size = _INITIAL_SIZE
            while size < count * 2:
                size *= 2
            old, table = table, [[] for _ in range(size)]
            for bucket in old:
                for moved in bucket:
                    table[siphash_1_2(moved) & (size - 1)].insert(0, moved)
        table[siphash_1_2(name) & (len(table) - 1)].insert(0, name)
    return [name for bucket in table for name in bucket]
