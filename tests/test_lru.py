"""The bounded cache that owns compiled models and GenAI pipelines."""
import threading

from triattn.lru import Bounded


def test_least_recently_used_goes_and_made_once():
    made = []
    c = Bounded(2)

    def make(k):
        return lambda: made.append(k) or f"obj-{k}"
    assert c.get("a", make("a")) == "obj-a" and c.get("b", make("b")) == "obj-b"
    assert c.get("a", make("a")) == "obj-a"          # a used again: b is now the oldest
    c.get("c", make("c"))
    assert len(c) == 2 and made == ["a", "b", "c"]
    c.get("b", make("b"))                            # b was dropped: made again
    assert made == ["a", "b", "c", "b"]


def test_forget_and_clear():
    c = Bounded(4)
    x = c.get(1, lambda: object())
    c.get(2, lambda: x)
    c.get(3, lambda: "other")
    c.forget(x)
    assert len(c) == 1
    c.clear()
    assert len(c) == 0


def test_two_threads_asking_at_once_make_it_once():
    """Two visitors asking for one model at the same moment: one compile, one shared object."""
    c, made, gate = Bounded(2), [], threading.Event()

    def make():
        gate.wait(5)
        made.append(1)
        return object()
    out = []
    threads = [threading.Thread(target=lambda: out.append(c.get("m", make))) for _ in range(2)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(10)
    assert len(made) == 1 and out[0] is out[1]
