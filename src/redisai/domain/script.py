"""TorchScript scripts as stored in keys."""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import RunStats, Runtime


@dataclass
class Script:
    device: str
    tag: bytes
    source: bytes
    entry_points: list[str] | None  # None: stored by the deprecated SCRIPTSET (or an old RDB layout)
    runtime: Runtime = field(default_factory=Runtime)
    stats: RunStats = field(default_factory=RunStats)
    key_name: bytes = b""

    backend = "TORCH"

    def nbytes(self) -> int:
        return len(self.source)

    def copy(self) -> "Script":
        return Script(self.device, self.tag, self.source, self.entry_points, self.runtime, key_name=self.key_name)
