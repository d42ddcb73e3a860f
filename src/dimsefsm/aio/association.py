"""The asyncio association: the blocking API's methods as coroutines and async iterators.

Everything but the waiting comes from :class:`~dimsefsm.association.AssociationCore`,
so both clients send the same requests and report the same results.  The
coroutine that awaits a response does the reading itself, as the calling
thread does in the blocking client: no reader task runs behind the user's
back, and an association that nobody awaits costs nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from pydicom import Dataset

from dimsefsm.aio.connection import connect
from dimsefsm.aio.driver import StreamDriver
from dimsefsm.association import AssociationCore, Reply, Responses
from dimsefsm.services.multi_response import MultiResponseScu
from dimsefsm.services.normalized import NormalizedScu
from dimsefsm.services.single_response import SingleResponseScu
from dimsefsm.transport.driver import TransportTimeout
from dimsefsm.transport.tls import TlsArgs


class ResponseStream:
    """The ``(status, identifier)`` pairs of one C-FIND, C-GET or C-MOVE, as they arrive.

    The request goes out with the first ``__anext__``, as the blocking
    client's generator sends it with the first ``next``.
    """

    def __init__(self, assoc: AsyncAssociation, op: MultiResponseScu) -> None:
        self.assoc = assoc
        self.op = op

    @property
    def message_id(self) -> int:
        """For :meth:`AsyncAssociation.send_c_cancel`."""
        return self.op.message_id

    def __aiter__(self) -> ResponseStream:
        return self

    async def __anext__(self) -> Responses:
        op = self.op
        while not op.results:
            if op.done:
                raise StopAsyncIteration
            await self.assoc._wait(op, until_result=True)
        return op.results.popleft()


class AsyncAssociation(
    AssociationCore[Awaitable[Dataset], ResponseStream, Awaitable[None], Awaitable[Reply]]
):
    """One association we requested, on asyncio streams; made by :func:`aio_associate`.

    ``await send_c_echo()``, ``await send_c_store(...)``, ``await
    send_c_cancel(...)``, ``await send_n_action(...)`` and the other ``send_n_*``;
    ``send_c_find/get/move(...)`` are async iterators.
    """

    driver: StreamDriver | None = None
    _reading: asyncio.Lock  # one coroutine reads at a time; the others find their answer in

    # -- connecting ---------------------------------------------------------------------
    async def _open(
        self,
        address: tuple[str, int],
        connect_timeout: float | None,
        tls_args: TlsArgs | None,
    ) -> None:
        engine = self.engine
        engine.request_association()
        engine.take_effects()  # the Connect effect: performed right here
        self._reading = asyncio.Lock()
        streams = await connect(address, connect_timeout, tls_args)
        if isinstance(streams, str):
            self._not_connected(streams)
            return
        driver = self.driver = StreamDriver(engine, *streams, self.artim_timeout)
        engine.transport_connected()
        if not await self._read_until(lambda: engine.outcome != "pending", self.acse_timeout):
            self._negotiation_timed_out()
            await self.abort()
            return
        self._negotiation_ended(driver.failure, driver.tls)
        if not self.is_established:
            await driver.wait_closed()

    # -- waiting ------------------------------------------------------------------------
    async def _status(self, op: SingleResponseScu, batches: Iterable[None]) -> Dataset:
        driver = self.driver
        assert driver is not None
        for _ in batches:
            driver.flush()
            await driver.drain()
        await self._wait(op)
        return op.result()

    async def _reply(self, op: NormalizedScu) -> Reply:
        await self._wait(op)
        return op.reply()

    async def wait_for(self, finished: Callable[[], bool], timeout: float | None = None) -> bool:
        """Read and answer the peer's requests until ``finished()`` (see the blocking
        client's ``wait_for``); False when ``timeout`` passed first or the association ended."""
        driver = self.driver
        if driver is None:
            return finished()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        driver.flush()
        await driver.drain()
        while not finished():
            if driver.closed or not self.is_established:
                return finished()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            async with self._reading:
                try:
                    await driver.pump(remaining)
                    await driver.serve_operations(remaining)
                except TransportTimeout:
                    return finished()
        return True

    def _responses(self, op: MultiResponseScu) -> ResponseStream:
        return ResponseStream(self, op)

    async def _send_queued(self, queued: bool) -> None:
        driver = self.driver
        assert driver is not None
        if queued:
            driver.flush()
            await driver.drain()

    async def _wait(self, op: Any, until_result: bool = False) -> None:
        if not await self._read_until(
            lambda: op.done or (until_result and bool(op.results)), self.dimse_timeout
        ):
            self._operation_timed_out(op)
            await self.abort()

    async def _read_until(self, finished: Callable[[], bool], timeout: float | None) -> bool:
        """Write what is queued, then read until ``finished()`` or the connection ends.

        False when ``timeout`` passed with nothing read; SCP operations the
        peer started on this association are served between reads.
        """
        driver = self.driver
        assert driver is not None
        driver.flush()
        await driver.drain()
        async with self._reading:
            while not finished() and not driver.closed:
                try:
                    await driver.pump(timeout)
                    await driver.serve_operations(timeout)
                except TransportTimeout:
                    return False
        if not finished():
            await driver.pump(timeout)  # closed: the engine learns it, operations end
        return True

    # -- ending -----------------------------------------------------------------------
    async def release(self) -> None:
        """A-RELEASE; waits for the peer's answer (bounded by the ACSE timeout)."""
        driver = self.driver
        if not self.is_established or driver is None:
            return
        self.engine.release()
        if not await self._read_until(lambda: self.engine.ul.state == "Sta1", self.acse_timeout):
            self._release_timed_out()
            await self.abort()
            return
        await driver.wait_closed()

    async def abort(self) -> None:
        """A-ABORT; closes the connection at once rather than waiting for ARTIM."""
        self.engine.abort()
        driver = self.driver
        if driver is not None:
            driver.flush()
            await driver.wait_closed()
        self.engine.transport_closed()
        self.engine.take_effects()

    async def __aenter__(self) -> AsyncAssociation:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            await self.abort()  # the state of a cancelled exchange is unknown: no release
        elif self.is_established:
            await self.release()
        elif self.driver is not None:
            await self.driver.wait_closed()
