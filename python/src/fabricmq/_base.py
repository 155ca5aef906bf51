# SPDX-License-Identifier: Apache-2.0
"""What every pattern object shares: its node holds it while it is open,
and it is a context manager (sync and async) that closes it."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

Self = TypeVar("Self", bound="Endpoint")


class Endpoint:
    """Base of Producer, Worker, Publisher, Subscriber, Client and Server."""

    _impl: Any

    def _attach(self, node: Any, impl: Any) -> None:
        self._node = node
        self._impl = impl
        node._hold(self)

    def stats(self) -> Any:
        """This object's counters (monotonic since it was made, except the
        gauges)."""
        return self._impl.stats()

    def close(self) -> None:
        """Closes this object; idempotent. What closing does is in the
        class's description. Raises UsageError from one of the object's
        own callbacks when closing would wait for itself."""
        self._impl.close()
        self._node._drop(self)

    def __enter__(self: Self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self: Self) -> Self:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)
