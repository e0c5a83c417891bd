"""The message bus: call (request/reply), cast (one-way) and fanout (to every server).

Compute and network agents talk to the conductor only over the bus. The
in-memory transport serves `gureum up`; an AMQP transport serves distributed
mode. Messages are JSON so both transports carry exactly the same thing.
"""

from gureum.bus.transport import (
    Admission,
    BusError,
    BusTimeout,
    RemoteError,
    Transport,
    open_transport,
)

__all__ = ["Admission", "BusError", "BusTimeout", "RemoteError", "Transport",
           "open_transport"]
