"""Every card is exactly what the golden digests say: speeding up or restructuring the renderer
must not change a byte of any message or fingerprint."""

from __future__ import annotations

from tests.kit.render_golden import GOLDEN, digests, read_golden


def test_every_card_matches_its_golden_digest() -> None:
    golden = read_golden()
    found = digests()
    assert sorted(found) == sorted(golden), "the set of golden cards changed"
    changed = [name for name, value in found.items() if golden[name] != value]
    assert changed == [], f"{len(changed)} cards differ from {GOLDEN.name}, e.g. {changed[:5]}"


def test_the_golden_set_covers_every_kind_of_card() -> None:
    names = set(read_golden())
    assert len(names) > 2000
    for prefix in ("nested_complete ", "bench-hostile ", "fuzz 499", "error ", "unanswered "):
        assert any(name.startswith(prefix) for name in names), prefix
