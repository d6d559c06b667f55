from hypothesis import given
from hypothesis import strategies as st

from data_sources.backoff import Backoff


def test_delays_double_up_to_the_cap_and_reset_starts_again():
    backoff = Backoff(initial_s=0.5, max_s=3.0, jitter=0.0)
    assert [backoff.next_delay_s() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next_delay_s() == 0.5


@given(st.floats(0.01, 5), st.floats(5, 60), st.integers(1, 40))
def test_jittered_delays_never_pass_the_cap(initial_s, max_s, attempts):
    backoff = Backoff(initial_s=initial_s, max_s=max_s)
    delays = [backoff.next_delay_s() for _ in range(attempts)]
    assert all(initial_s <= d <= max_s for d in delays)
