"""A config or sweep file that is not YAML is one line naming the file, line and column (jsonargparse
alone says ``in "<unicode string>"``), exit code 2."""

from __future__ import annotations

import pytest
from cli_helpers import REPO, one_error_line

from thinkspace.cli import main
from thinkspace.lightning_cli import ConfigError, build_cli
from thinkspace.sweep.grid import load_sweep
from thinkspace.utils.yaml_files import config_files, read_yaml

QUICKSTART = REPO / "configs" / "quickstart.yaml"
TAB = "trainer:\n\tmax_steps: 2\n"
WHERE = r"not valid YAML at line 2, column 1: found character '\\t' that cannot start any token " \
        r"\(YAML indents with spaces; a tab is not allowed\)"


def test_tab_indented_config_names_the_file_line_and_column(tmp_path):
    tabbed = tmp_path / "tabbed.yaml"
    tabbed.write_text(TAB)
    with pytest.raises(ConfigError, match=rf"^config file {tabbed}: {WHERE}$"):
        build_cli("fit", [QUICKSTART, tabbed], until="parsed")


def test_tab_indented_config_on_the_command_line_is_one_line_exit_2(tmp_path, capsys):
    tabbed = tmp_path / "tabbed.yaml"
    tabbed.write_text(TAB)
    assert main(["fit", "--config", str(QUICKSTART), f"--config={tabbed}", "--trainer.max_steps", "1"]) == 2
    line = one_error_line(capsys, "fit")
    assert f"config file {tabbed}: not valid YAML at line 2, column 1" in line and "<unicode string>" not in line


def test_sweep_file_with_a_tab_names_the_file_line_and_column(tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("grid:\n  a: [1]\nfixed:\n\tb: 2\n")
    with pytest.raises(ValueError, match=rf"^sweep file {sweep}: not valid YAML at line 4, column 1: found character"):
        load_sweep(sweep)


def test_read_yaml_and_config_files(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffa: 1\n".encode())
    assert read_yaml(path) == {"a": 1}
    with pytest.raises(ValueError, match=rf"config file {tmp_path}/gone.yaml: cannot be read \(No such file"):
        read_yaml(tmp_path / "gone.yaml")
    assert config_files(["fit", "--config", "a.yaml", "--x", "1", "--config=b.yaml", "--config"]) == ["a.yaml", "b.yaml"]


REPEATED = "trainer:\n  max_steps: 2\n  max_epochs: 1\n  max_steps: 3\n"


def test_repeated_key_in_a_config_names_the_file_line_and_key(tmp_path):
    twice = tmp_path / "twice.yaml"
    twice.write_text(REPEATED)
    with pytest.raises(ConfigError, match=rf"^config file {twice}: not valid YAML at line 4, column 3: "
                                          r"key 'max_steps' repeated \(first at line 2\)"):
        build_cli("fit", [QUICKSTART, twice], until="parsed")


def test_repeated_key_on_the_command_line_is_one_line_exit_2(tmp_path, capsys):
    twice = tmp_path / "twice.yaml"
    twice.write_text(REPEATED)
    assert main(["fit", "--config", str(QUICKSTART), "--config", str(twice), "--trainer.max_steps", "1"]) == 2
    assert f"config file {twice}: not valid YAML at line 4, column 3: key 'max_steps' repeated" in one_error_line(capsys, "fit")


def test_sweep_grid_with_a_setting_named_twice_is_refused(tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("settings:\n  small:\n    model.lr: 0.1\n  big:\n    model.lr: 1.0\n  small:\n    model.lr: 0.2\n")
    with pytest.raises(ValueError, match=rf"^sweep file {sweep}: not valid YAML at line 6, column 3: "
                                         r"key 'small' repeated \(first at line 2\)"):
        load_sweep(sweep)


def test_repeated_keys_only_within_one_mapping_count(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("a: {x: 1}\nb: {x: 2}\nbase: &b {lr: 1}\nderived:\n  <<: *b\n  lr: 2\n")
    assert read_yaml(path) == {"a": {"x": 1}, "b": {"x": 2}, "base": {"lr": 1}, "derived": {"lr": 2}}
