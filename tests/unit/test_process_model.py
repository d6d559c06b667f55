"""The demo plant's physics: each test drives a unit and checks a plausible response."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.process_model import ProcessModel


def run(model: ProcessModel, seconds: float, dt_s: float = 0.1) -> None:
    for _ in range(round(seconds / dt_s)):
        model.step(dt_s)


def test_starts_in_the_documented_state():
    snap = ProcessModel().snapshot()
    assert snap.tank_level_m == pytest.approx(2.5, abs=0.05)
    assert snap.inlet_valve_pct == 40.0
    assert snap.pump_running and snap.pump_run_command
    assert snap.reactor_setpoint_degc == 60.0
    assert snap.reactor_temperature_degc == pytest.approx(60.0, abs=0.5)
    assert snap.compressor_setpoint_bar == 7.0
    assert snap.discharge_pressure_bar == pytest.approx(7.0, abs=0.1)


def test_values_keep_moving_so_a_live_display_shows_life():
    model = ProcessModel()
    first = model.snapshot()
    model.step(0.2)
    second = model.snapshot()
    for field in ("tank_level_m", "reactor_temperature_degc", "reactor_pressure_bar", "agitator_speed_rpm",
                  "conveyor_current_a", "discharge_pressure_bar", "site_power_kw", "water_flow_m3h"):
        assert getattr(first, field) != getattr(second, field), field


def test_same_seed_gives_the_same_run():
    a, b = ProcessModel(seed=7), ProcessModel(seed=7)
    run(a, 5)
    run(b, 5)
    assert a.snapshot() == b.snapshot()


def test_raising_reactor_setpoint_drives_heater_at_once_and_temperature_follows():
    model = ProcessModel()
    run(model, 5)
    before = model.snapshot()
    model.set_reactor_setpoint(80.0)
    model.step(0.1)
    assert model.snapshot().heater_output_pct > before.heater_output_pct + 20
    run(model, 3)
    assert model.snapshot().reactor_temperature_degc > before.reactor_temperature_degc + 3
    run(model, 60)
    settled = model.snapshot()
    assert settled.reactor_temperature_degc == pytest.approx(80.0, abs=0.5)
    assert 0 < settled.heater_output_pct < 100
    assert settled.reactor_pressure_bar > before.reactor_pressure_bar


def test_lowering_reactor_setpoint_cuts_the_heater_and_cools_without_windup():
    model = ProcessModel()
    model.set_reactor_setpoint(40.0)
    model.step(0.1)
    assert model.snapshot().heater_output_pct == 0.0
    run(model, 90)
    assert model.snapshot().reactor_temperature_degc == pytest.approx(40.0, abs=0.5)
    # After a long saturation the integral has not wound up: a new rise starts at once.
    model.set_reactor_setpoint(70.0)
    run(model, 2)
    assert model.snapshot().heater_output_pct == 100.0


def test_heater_output_stays_within_0_to_100():
    model = ProcessModel()
    for setpoint in (150.0, 0.0, 95.0, 20.0):
        model.set_reactor_setpoint(setpoint)
        for _ in range(200):
            model.step(0.1)
            assert 0.0 <= model.snapshot().heater_output_pct <= 100.0


def test_closing_inlet_with_pump_running_lowers_the_level():
    model = ProcessModel()
    model.set_inlet_valve(0.0)
    start = model.tank.level_m
    run(model, 600, dt_s=1.0)
    snap = model.snapshot()
    assert snap.inflow_m3h == 0.0
    assert snap.outflow_m3h > 10
    assert model.tank.level_m < start - 0.2


def test_opening_inlet_with_pump_stopped_raises_the_level():
    model = ProcessModel()
    model.set_pump_command(False)
    model.set_inlet_valve(100.0)
    start = model.tank.level_m
    run(model, 600, dt_s=1.0)
    assert model.tank.level_m > start + 0.5


def test_pump_feedback_follows_command_after_a_second_and_stops_outflow():
    model = ProcessModel()
    model.set_pump_command(False)
    model.step(0.5)
    snap = model.snapshot()
    assert snap.pump_run_command is False and snap.pump_running is True
    assert snap.outflow_m3h > 0
    run(model, 1.0)
    snap = model.snapshot()
    assert snap.pump_running is False
    assert snap.outflow_m3h == 0.0
    model.set_pump_command(True)
    run(model, 1.5)
    assert model.snapshot().pump_running is True


def test_level_settles_where_inflow_matches_pump_flow():
    model = ProcessModel()
    model.set_inlet_valve(50.0)  # 20 m3/h in; the pump gives 25*sqrt(level/5)
    model.step(8 * 3600)  # the level's time constant near balance is about 2.5 h
    assert model.tank.level_m == pytest.approx(5.0 * (20.0 / 25.0) ** 2, abs=0.05)


@settings(max_examples=30, deadline=None)
@given(
    actions=st.lists(
        st.tuples(st.floats(0, 100), st.booleans(), st.floats(1, 1200)),
        min_size=1, max_size=4,
    )
)
def test_level_never_leaves_0_to_5(actions):
    model = ProcessModel()
    for valve_pct, pump_on, seconds in actions:
        model.set_inlet_valve(valve_pct)
        model.set_pump_command(pump_on)
        model.step(seconds)
        assert 0.0 <= model.snapshot().tank_level_m <= 5.0
        assert 0.0 <= model.tank.level_m <= 5.0


def test_tank_overfills_to_the_top_and_drains_to_empty_without_passing_either():
    model = ProcessModel()
    model.set_pump_command(False)
    model.set_inlet_valve(100.0)
    model.step(3600)
    assert model.snapshot().tank_level_m == pytest.approx(5.0, abs=0.01)
    model.set_inlet_valve(0.0)
    model.set_pump_command(True)
    model.step(4 * 3600)
    assert model.snapshot().tank_level_m < 0.05


def test_conveyor_counts_items_and_draws_current_only_while_running():
    model = ProcessModel()
    run(model, 10)
    snap = model.snapshot()
    assert snap.conveyor_current_a == pytest.approx(15.0, abs=1.0)
    counted = snap.conveyor_item_count
    assert counted >= 15
    model.set_conveyor_command(False)
    run(model, 2)
    stopped = model.snapshot()
    assert stopped.conveyor_running is False and stopped.conveyor_current_a == 0.0
    run(model, 10)
    assert model.snapshot().conveyor_item_count == stopped.conveyor_item_count
    model.set_conveyor_command(True)
    run(model, 5)
    assert model.snapshot().conveyor_item_count > stopped.conveyor_item_count


def test_compressor_pressure_tracks_its_setpoint():
    model = ProcessModel()
    model.set_compressor_setpoint(8.5)
    run(model, 3)
    assert 7.3 < model.compressor.discharge_bar < 8.5
    run(model, 15)
    snap = model.snapshot()
    assert snap.discharge_pressure_bar == pytest.approx(8.5, abs=0.1)
    assert snap.compressor_setpoint_bar == 8.5


def test_stopped_compressor_blows_down_and_draws_nothing():
    model = ProcessModel()
    model.set_compressor_running(False)
    at_once = model.snapshot()
    assert at_once.compressor_current_a == 0.0 and at_once.compressor_flow_nm3h == 0.0
    run(model, 60)
    snap = model.snapshot()
    assert snap.compressor_running is False
    assert snap.discharge_pressure_bar < 1.1
    assert snap.compressor_current_a == 0.0 and snap.compressor_flow_nm3h == 0.0
    model.set_compressor_running(True)
    run(model, 15)
    assert model.snapshot().discharge_pressure_bar == pytest.approx(7.0, abs=0.2)


def test_site_power_follows_the_loads():
    model = ProcessModel()
    run(model, 5)
    running_kw = model.snapshot().site_power_kw
    model.set_compressor_running(False)
    model.set_conveyor_command(False)
    model.set_pump_command(False)
    run(model, 5)
    assert model.snapshot().site_power_kw < running_kw - 50


def test_water_flow_swings_slowly():
    model = ProcessModel()
    samples = []
    for _ in range(30):
        model.step(10.0)
        samples.append(model.snapshot().water_flow_m3h)
    assert max(samples) - min(samples) > 15
    assert all(0 < s < 100 for s in samples)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_writes_are_refused(bad):
    model = ProcessModel()
    for write in (model.set_inlet_valve, model.set_reactor_setpoint, model.set_compressor_setpoint):
        with pytest.raises(ValueError):
            write(bad)
    assert model.snapshot().inlet_valve_pct == 40.0


def test_writes_are_clamped_to_what_the_plant_can_do():
    model = ProcessModel()
    model.set_inlet_valve(140.0)
    model.set_compressor_setpoint(-3.0)
    snap = model.snapshot()
    assert snap.inlet_valve_pct == 100.0
    assert snap.compressor_setpoint_bar == 0.0


def test_negative_step_is_refused():
    with pytest.raises(ValueError):
        ProcessModel().step(-0.1)
