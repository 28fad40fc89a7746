# The C extension _events.c.
from typing import Any, List

def events(event_type: type, n: int, data: int, ends: int, ids: int, shards: int,
           sequences: int, timestamps: int) -> List[Any]: ...
def ingest_raw(bus_address: int, bus_keepalive: Any, fallback: Any, error: Any,
               data: Any, key: Any = ...) -> None: ...
