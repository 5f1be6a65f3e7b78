"""A small bounded, thread-safe cache of expensive objects (compiled models, GenAI pipelines): one
owner per kind, a bound, and a way to free them. Whoever still holds an evicted object keeps using it;
the cache only stops holding it."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable


class Bounded:
    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, make: Callable[[], object]):
        """The object for `key`, made if absent; the least recently used goes when there are more
        than `size`. Made under the lock: two visitors asking for one 12 GB model at once must not
        compile it twice."""
        with self._lock:
            if key not in self._items:
                self._items[key] = make()
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return self._items[key]

    def forget(self, value) -> None:
        """Drop every entry holding `value` (e.g. a pipeline whose state is unknown after a failure)."""
        with self._lock:
            for key in [k for k, v in self._items.items() if v is value]:
                del self._items[key]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
