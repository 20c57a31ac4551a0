"""poll_convergence: `lab test` waits for convergence, bounded, and says how long. Pure
(a fake clock and fake looks); no lab needed."""

from __future__ import annotations

from wgbgp.lab.runner import Convergence, poll_convergence


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def looks(*states: Convergence, clock: Clock, cost: float = 0.1):
    """Each look takes `cost` seconds and returns the next state (the last one repeats)."""
    queue = list(states)

    def look() -> Convergence:
        clock.now += cost
        return queue.pop(0) if len(queue) > 1 else queue[0]
    return look


DOWN = Convergence(0, 2, 0, 2, ["a: session to b is Active", "b: session to a is Active"])
HALF = Convergence(1, 2, 1, 2, ["b: session to a is Connect"])
UP = Convergence(2, 2, 2, 2)


def test_returns_as_soon_as_converged_and_says_how_long():
    clock = Clock()
    said: list[str] = []
    waited = poll_convergence(looks(DOWN, HALF, UP, clock=clock), timeout=30, interval=0.5,
                              progress=said.append, clock=clock, sleep=clock.sleep)
    assert waited.converged and waited.last is UP
    assert abs(waited.seconds - (3 * 0.1 + 2 * 0.5)) < 1e-9
    assert waited.describe() == "converged after 1.3 s"
    assert clock.sleeps == [0.5, 0.5]
    assert said == ["sessions Established 0/2, prefixes installed 0/2",
                    "sessions Established 1/2, prefixes installed 1/2",
                    "sessions Established 2/2, prefixes installed 2/2"]


def test_already_converged_looks_once_and_never_sleeps():
    clock = Clock()
    waited = poll_convergence(looks(UP, clock=clock, cost=0.0), timeout=30, clock=clock,
                              sleep=clock.sleep)
    assert waited.converged and waited.seconds == 0 and clock.sleeps == []


def test_gives_up_at_the_timeout_never_sleeping_past_it():
    clock = Clock()
    waited = poll_convergence(looks(DOWN, clock=clock), timeout=3, interval=0.5, clock=clock,
                              sleep=clock.sleep)
    assert not waited.converged and waited.last.missing == DOWN.missing
    assert 3 <= waited.seconds < 3 + 0.1 + 1e-9  # one look at most past the deadline
    assert all(0 <= s <= 0.5 for s in clock.sleeps) and len(clock.sleeps) <= 6
    assert waited.describe() == "not converged after 3 s"
    assert waited.to_json()["missing"] == DOWN.missing


def test_zero_timeout_is_one_look():
    clock = Clock()
    waited = poll_convergence(looks(DOWN, clock=clock), timeout=0, clock=clock,
                              sleep=clock.sleep)
    assert not waited.converged and clock.sleeps == []
