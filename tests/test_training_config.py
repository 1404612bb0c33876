"""Typed configs: TOML/JSON round trips, shipped configs, clear errors for impossible settings."""

from __future__ import annotations

import dataclasses

import pytest

from rhel.gradients.methods import ESTIMATOR_METHODS, GRADIENT_METHODS, METHOD_NAMES, make_gradient, method_label
from rhel.gradients.rhel import ESTIMATORS, RHEL
from rhel.training.config import (
    ConfigError,
    DataConfig,
    GradientConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    expand,
    list_configs,
    load_config,
    save_config,
)

PAPER = ["eigenworms", "scp1", "scp2", "ethanol", "heartbeat", "motor", "ppg"]


def custom_config():
    return TrainConfig(
        name="round-trip",
        seeds=(1, 22, 333),
        float64=True,
        data=DataConfig(name="long_range_pattern", data_dir="/tmp/x", options={"length": 64, "noise": 0.25}),
        model=ModelConfig(unit="nonlinear", num_blocks=3, hidden=12, state_size=7, step=1e-4, output_step=None),
        optim=OptimConfig(lr=1.5e-4, batch_size=4, steps=77, eval_every=7, patience=3, schedule="cosine"),
        gradient=GradientConfig(
            methods=("rhel-richardson", "bptt"), epsilon=0.1, relative_epsilon=False, resync_every=64
        ),
    )


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_round_trip(tmp_path, suffix):
    config = custom_config()
    path = save_config(config, tmp_path / f"c{suffix}")
    assert load_config(path) == config
    assert config_from_dict(config_to_dict(config)) == config
    if suffix == ".toml":
        text = path.read_text()
        assert "lr = 0.00015" in text and "seeds = [1, 22, 333]" in text and "step = 0.0001" in text  # numbers
        assert "output_step" not in text  # None is the default of an optional field: omitted


def test_shipped_configs_load_and_cover_the_paper():
    names = list_configs()
    assert "default" in names
    for dataset in PAPER:
        for unit in ("linear", "nonlinear"):
            assert f"paper/{dataset}-{unit}" in names
    for name in names:
        config = load_config(name)  # validates
        assert config.name == name
    worms = load_config("paper/eigenworms-linear")
    assert (worms.optim.batch_size, worms.optim.lr, worms.model.num_blocks, worms.model.hidden) == (4, 1e-4, 2, 64)
    assert worms.seeds == (2345, 3456, 4567, 5678, 6789) and worms.data.name == "EigenWorms"
    assert load_config("paper/scp1-nonlinear").model.hidden == 128
    ppg = load_config("paper/ppg-linear")
    assert ppg.data.name == "ppg_dalia" and ppg.model.time_channel and ppg.model.output_step == 128


def test_expand_and_gradient_objects():
    import rhel

    runs = expand(custom_config())
    assert [(r.gradient.methods, r.seeds) for r in runs][:4] == [
        (("rhel-richardson",), (1,)),
        (("rhel-richardson",), (22,)),
        (("rhel-richardson",), (333,)),
        (("bptt",), (1,)),
    ]
    assert make_gradient("rhel-one-sided", 0.01) == rhel.RHEL(epsilon=0.01, estimator="one_sided")
    assert make_gradient("rhel", None, False) == rhel.RHEL(relative=False)
    assert isinstance(make_gradient("checkpointed-bptt"), rhel.CheckpointedBPTT)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"optim": {"lr": -1e-3}}, "optim.lr must be a positive number"),
        ({"model": {"unit": "quadratic"}}, "model.unit must be one of"),
        ({"gradient": {"methods": ["rhel", "magic"]}}, "unknown gradient method 'magic'"),
        ({"model": {"dropout": 1.0}}, r"model.dropout must lie in \[0, 1\)"),
        ({"optim": {"batch_size": 0}}, "optim.batch_size must be >= 1"),
    ],
)
def test_impossible_settings_are_clear_errors(change, message):
    data = config_to_dict(TrainConfig())
    for table, values in change.items():
        data[table].update(values)
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data).validate()


def test_typos_and_wrong_types_are_errors(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[optim]\nlearning_rate = 0.1\n")
    with pytest.raises(ConfigError, match="unknown key.*learning_rate"):
        load_config(path)
    path.write_text('[optim]\nlr = "0.0001"\n')  # a number stored as a string (the official configs' habit)
    with pytest.raises(ConfigError, match="optim.lr must be a number"):
        load_config(path)
    path.write_text("[model]\nnum_blocks = 2.0\n")
    with pytest.raises(ConfigError, match="model.num_blocks must be an integer"):
        load_config(path)
    with pytest.raises(ConfigError, match="no shipped config"):
        load_config("paper/no-such-thing")
    assert dataclasses.replace(TrainConfig(), seeds=(5,)).validate().seeds == (5,)


def test_one_table_of_gradient_methods_names_labels_and_objects():
    assert METHOD_NAMES == ("bptt", "checkpointed-bptt", "rhel", "rhel-one-sided", "rhel-richardson")
    assert [method_label(m) for m in METHOD_NAMES] == [
        "BPTT",
        "Checkpointed BPTT",
        "RHEL",
        "RHEL (one-sided)",
        "RHEL (Richardson)",
    ]
    assert method_label("from-an-old-run") == "from-an-old-run"
    # every RHEL estimator has a row, and the row builds that estimator
    assert set(ESTIMATOR_METHODS) == set(ESTIMATORS)
    for estimator, name in ESTIMATOR_METHODS.items():
        assert GRADIENT_METHODS[name].make(0.5, False) == RHEL(epsilon=0.5, estimator=estimator, relative=False)
    with pytest.raises(KeyError, match="unknown gradient method 'rhel-two-sided'"):
        make_gradient("rhel-two-sided")
    bad = dataclasses.replace(TrainConfig(), gradient=GradientConfig(methods=("rhel-two-sided",)))
    with pytest.raises(ConfigError, match="unknown gradient method 'rhel-two-sided'"):
        bad.validate()


def test_resync_every_reaches_the_rhel_methods_and_is_checked(monkeypatch):
    from rhel.training import experiment

    config = custom_config()
    made = []
    monkeypatch.setattr(experiment, "make_gradient", lambda *args: made.append(args) or make_gradient(*args))
    experiment.train_step_for(expand(config)[0])  # the training step's gradient object
    assert made == [("rhel-richardson", 0.1, False, 64)]
    assert make_gradient("rhel-richardson", 0.1, False, 64) == RHEL(
        epsilon=0.1, estimator="richardson", relative=False, resync_every=64
    )
    assert make_gradient("bptt", 0.1, False, 64) == make_gradient("bptt")  # BPTT ignores RHEL's settings
    assert GRADIENT_METHODS["rhel"].symmetric and not GRADIENT_METHODS["rhel-one-sided"].symmetric
    assert not GRADIENT_METHODS["bptt"].symmetric
    for resync, methods, message in [
        (0, ("rhel",), "gradient.resync_every must be a positive number of steps, got 0"),
        (16, ("rhel-one-sided", "bptt"), "needs a symmetric RHEL estimator; rhel-one-sided has none"),
    ]:
        bad = dataclasses.replace(config, gradient=GradientConfig(methods=methods, resync_every=resync))
        with pytest.raises(ConfigError, match=message):
            bad.validate()
