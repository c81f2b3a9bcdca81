"""Sweep files: grid, zip and seed expansion, run names, bad input; key checks against a config."""

import pytest
import yaml

from thinkspace.sweep.grid import expand, load_sweep, run_name
from thinkspace.sweep.overrides import as_arguments, check_keys

from cli_helpers import REPO


def test_grid_zip_and_seeds_expand_in_order():
    runs = expand({
        "fixed": {"trainer.max_steps": 5},
        "grid": {"data.batch_size": [4, 8]},
        "zip": [{"model.optimizer.init_args.lr": [0.1, 0.2, 0.3], "trainer.max_steps": [10, 20, 30]}],
        "seeds": [0, 1],
        "seed_keys": ["seed_everything", "data.seed"],
    })
    assert len(runs) == 2 * 3 * 2
    assert [r.labels for r in runs[:4]] == [
        {"batch_size": 4, "lr": 0.1, "max_steps": 10, "seed": 0},
        {"batch_size": 4, "lr": 0.1, "max_steps": 10, "seed": 1},
        {"batch_size": 4, "lr": 0.2, "max_steps": 20, "seed": 0},
        {"batch_size": 4, "lr": 0.2, "max_steps": 20, "seed": 1},
    ]
    last = runs[-1]
    assert last.overrides == {"trainer.max_steps": 30, "data.batch_size": 8, "model.optimizer.init_args.lr": 0.3,
                              "seed_everything": 1, "data.seed": 1}  # the zip axis overrides the fixed value
    assert last.seed == 1 and last.group == "batch_size=8, lr=0.3, max_steps=30"
    assert len({r.name for r in runs}) == len(runs)


def test_named_settings_are_one_axis():
    runs = expand({"settings": {"plain": {}, "layout": {"model.objectives.layout": None}}, "seeds": [3]})
    assert [(r.labels, r.overrides) for r in runs] == [
        ({"setting": "plain", "seed": 3}, {"seed_everything": 3}),
        ({"setting": "layout", "seed": 3}, {"model.objectives.layout": None, "seed_everything": 3}),
    ]


def test_run_names_are_stable_and_collision_free():
    overrides = {"model.cues.points": {"class_path": "thinkspace.cues.PointMapCue"}, "seed_everything": 1}
    name = run_name({"setting": "point_map", "seed": 1}, overrides)
    assert name == run_name({"setting": "point_map", "seed": 1}, dict(reversed(overrides.items())))
    # pinned: a name that changed between versions would redo every finished run
    assert name == "setting=point-map_seed=1_f1e6c4dc"
    assert run_name({"setting": "point_map", "seed": 1}, {**overrides, "seed_everything": 2}) != name
    # the same readable labels from different overrides (dicts shown by a short hash, same last key)
    a = expand({"grid": {"model.a.weight": [1], "model.b.weight": [1, 2]}})
    assert [r.labels for r in a] == [{"weight": 1}, {"weight": 2}]  # "weight" twice: b's wins the label...
    assert len({r.name for r in a}) == 2  # ...but the names still differ
    # the name does not depend on the other runs of the sweep
    alone = expand({"settings": {"x": {"k": 1}}, "seeds": [0]})[0].name
    among = expand({"settings": {"w": {"k": 0}, "x": {"k": 1}}, "seeds": [0, 5]})[2].name
    assert alone == among


@pytest.mark.parametrize("data, message", [
    ({}, "no runs: it lists none of settings, grid, zip, seeds"),
    ({"grid": {}}, "no runs"),
    ({"settings": {}}, "'settings' is empty"),
    ({"grid": {"data.batch_size": []}}, "axis 'grid.data.batch_size' must list at least one value"),
    ({"zip": [{"a": [1, 2], "b": [1]}]}, r"zip\[0\] lists of different lengths \{'a': 2, 'b': 1\}"),
    ({"seeds": [0, 0]}, "seeds repeat"),
    ({"settings": {"a": {"k": 1}, "b": {"k": 1}}}, "have the same overrides"),
])
def test_bad_sweep_files_name_the_problem(data, message):
    with pytest.raises(ValueError, match=message):
        expand(data, where="s.yaml")


def test_unknown_sections_and_empty_files(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("gird: {a: [1]}\n")
    with pytest.raises(ValueError, match=r"s.yaml: unknown section\(s\) \['gird'\]"):
        load_sweep(path)
    path.write_text("")
    with pytest.raises(ValueError, match="s.yaml: no runs"):
        load_sweep(path)


def test_overrides_become_command_line_arguments():
    assert as_arguments({"a.b": 1, "c": None, "d": "x", "e": {"class_path": "P"}}) == [
        "--a.b", "1", "--c", "null", "--d", "x", "--e", '{"class_path": "P"}']


def test_keys_must_exist_or_add_a_whole_component():
    base = {"trainer": {"max_steps": 3}, "model": {"objectives": {"text": {"class_path": "T", "init_args": {}}},
                                                   "cues": None}}
    check_keys({"trainer.max_steps": 5, "model.cues.points": {"class_path": "P"},
                "model.objectives.layout": {"class_path": "L"}, "model.objectives.text": None}, base, "b.yaml")
    with pytest.raises(ValueError, match=r"'trainer.max_stepz': b.yaml has no key 'max_stepz' under trainer "
                                         r"\(it has \['max_steps'\]\)"):
        check_keys({"trainer.max_stepz": 5}, base, "b.yaml")
    with pytest.raises(ValueError, match="no key 'layuot' under model.objectives"):
        check_keys({"model.objectives.layuot.init_args.weight": 0.5}, base, "b.yaml")
    with pytest.raises(ValueError, match="to add a component give its whole mapping with class_path"):
        check_keys({"model.objectives.layout": {"init_args": {"weight": 1}}}, base, "b.yaml")


def test_the_study_expands_against_its_base():
    sweep = load_sweep(REPO / "configs" / "ablations" / "cues_vs_supervision.yaml")
    groups = list(dict.fromkeys(r.labels["setting"] for r in sweep.runs))
    assert groups == ["text_only", "camera_prior_gt", "camera_prior_est", "point_map_gt", "point_map_est", "latent",
                      "layout_situation", "all_supervision"]
    assert len(sweep.runs) == len(groups) * 5 and sweep.metric == "scenes:test/accuracy"
    assert sweep.baseline == "text_only"  # paired statistics on a test stage
    assert sweep.evaluate == {"scenes": {}, "viewpoints": {"data.test.init_args.viewpoint": "held_out"}}
    text = (REPO / "configs" / "ablations" / "cues_vs_supervision.yaml").read_text()
    assert "# base: configs/ablations/study_base.yaml" in text
    base = yaml.safe_load((REPO / "configs" / "ablations" / "study_base.yaml").read_text())
    assert base["model"]["objectives"].keys() == {"text"}
    test = base["data"]["test"]["init_args"]
    assert test["num_samples"] >= 512 and test["split"] == "test" and test["settings"] == ["perspective", "situated"]
    estimated = sweep.runs[[r.labels["setting"] for r in sweep.runs].index("point_map_est")].overrides
    teacher = estimated["model.cues.points"]["init_args"]["teacher"]
    assert teacher["class_path"] == "thinkspace.teachers.NoisyGeometryTeacher"
    first = load_sweep(REPO / "configs" / "ablations" / "leftmost_study.yaml")  # the first study, kept
    assert len(first.runs) == 24 and "# base: configs/ablations/base.yaml" in \
        (REPO / "configs" / "ablations" / "leftmost_study.yaml").read_text()
