"""Duplicate memory: exact membership within its window, bounded size, checkpoint round trip."""

from __future__ import annotations

import numpy as np

from memabrad.daemon.dedupe import DedupeMemory


def test_remembers_recent_ids_and_forgets_beyond_capacity() -> None:
    m = DedupeMemory(capacity=1000, generation_size=100)
    for i in range(5000):
        m.add(f"id-{i}")
    assert len(m) <= 1000
    assert all(f"id-{i}" in m for i in range(4100, 5000))  # the last capacity - generation_size ids
    assert not any(f"id-{i}" in m for i in range(0, 3000))


def test_no_false_positives_among_fresh_ids() -> None:
    m = DedupeMemory(capacity=50_000, generation_size=5_000)
    for i in range(40_000):
        m.add(f"seen-{i}")
    assert sum(f"fresh-{i}" in m for i in range(40_000)) == 0


def test_memory_is_flat_in_the_number_of_ids() -> None:
    m = DedupeMemory(capacity=10_000, generation_size=1_000)
    for i in range(200_000):
        m.add(f"t{i}")
    stored = sum(a.nbytes for a in m.to_arrays().values())
    assert stored <= 10_000 * 8 + 1_000 * 8


def test_checkpoint_round_trip_keeps_membership() -> None:
    m = DedupeMemory(capacity=1000, generation_size=64)
    for i in range(700):
        m.add(f"x{i}")
    arrays = {k: np.array(v) for k, v in m.to_arrays().items()}
    back = DedupeMemory.from_arrays(arrays, capacity=1000, generation_size=64)
    assert all(f"x{i}" in back for i in range(700))
    assert "x700" not in back
    back.add("x700")
    assert "x700" in back


def test_merged_generations_answer_as_each_generation_would() -> None:
    """The sealed generations are searched as one merged array: membership is exactly "in the recent
    set or in a kept generation", re-added ids and expired generations included, before and after a
    checkpoint round trip."""
    rng = np.random.default_rng(7)
    m = DedupeMemory(capacity=300, generation_size=50)
    recent: set[str] = set()
    generations: list[set[str]] = []
    for step in range(2_000):
        tid = f"t{int(rng.integers(0, 1_500))}"  # many re-adds of ids the memory may still hold
        m.add(tid)
        recent.add(tid)
        if len(recent) >= 50:
            generations.append(recent)
            recent = set()
            while sum(map(len, generations)) > 300:
                generations.pop(0)
        if step % 97 == 0:
            probe = [f"t{i}" for i in range(1_500)]
            expected = [t in recent or any(t in g for g in generations) for t in probe]
            assert [t in m for t in probe] == expected
            back = DedupeMemory.from_arrays({k: np.array(v) for k, v in m.to_arrays().items()}, 300, 50)
            assert [t in back for t in probe] == expected


def test_lookups_keep_the_interpreter_lock() -> None:
    """In the daemon, other threads wait for the interpreter lock; a lookup that let go of it (numpy's
    ``searchsorted`` does, whatever the array's size) could hand it over for a whole switch interval per
    record. With a long switch interval the lock changes hands only when its holder lets go, so a thread
    counting meanwhile shows whether a thousand lookups did."""
    import random
    import sys
    import threading

    m = DedupeMemory(capacity=400_000, generation_size=100_000)
    rng = random.Random(1)
    for _ in range(300_000):
        m.add_hash(rng.getrandbits(64))
    probes = [rng.getrandbits(64) for _ in range(1000)]
    counter, stop = [0], threading.Event()

    def count() -> None:
        while not stop.is_set():
            counter[0] += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.5)
    t = threading.Thread(target=count, daemon=True)
    try:
        t.start()
        while counter[0] == 0:  # the counter runs; from here on this thread holds the lock again
            pass
        before = counter[0]
        hits = sum(m.contains_hash(h) for h in probes)
        after = counter[0]
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(interval)
    assert hits == 0
    assert after == before


def test_a_generation_sealing_on_its_worker_answers_as_a_sealed_one(monkeypatch) -> None:
    """While a seal runs on its worker thread (held here until released), membership is exactly what it
    is once the seal has landed — the generation pushed out of the window excluded, re-added ids kept —
    and a checkpoint taken meanwhile waits for the seal and saves the same arrays."""
    import threading

    from memabrad.daemon import dedupe

    release = threading.Event()
    started = threading.Event()
    run = dedupe._Seal._run

    def held(self: dedupe._Seal) -> None:
        started.set()
        release.wait(10)
        run(self)

    def fill(m: DedupeMemory) -> None:
        for i in range(150):
            m.add(f"a{i}")  # two generations of 50 (a0-a49, a50-a99) and a full third: sealed on the worker
        m.add("a10")  # a re-added id of the generation the third seal pushes out

    settled = DedupeMemory(capacity=100, generation_size=50)
    fill(settled)
    settled.to_arrays()  # lands every seal
    probe = [f"a{i}" for i in range(160)]
    expected = [t in settled for t in probe]
    assert expected[10] and not expected[11] and all(expected[50:150]) and not any(expected[150:])

    monkeypatch.setattr(dedupe._Seal, "_run", held)
    m = DedupeMemory(capacity=100, generation_size=50)
    for i in range(100):
        m.add(f"a{i}")
        if m._seal_job is not None:  # let the first two seals through
            release.set()
            m._land()
            release.clear()
    started.clear()
    for i in range(100, 150):
        m.add(f"a{i}")
    m.add("a10")
    assert started.wait(10) and m._seal_job is not None and not m._seal_job.finished.is_set()
    assert [t in m for t in probe] == expected
    assert len(m) == len(settled)
    out: dict[str, np.ndarray] = {}
    saver = threading.Thread(target=lambda: out.update(m.to_arrays()))
    saver.start()
    release.set()
    saver.join(10)
    want = settled.to_arrays()
    assert sorted(out) == sorted(want) and all(np.array_equal(out[k], want[k]) for k in want)
    assert [t in m for t in probe] == expected
