"""The plugin system: inline plugins, every hook, error isolation, discovery through real entry points.

Inline plugins are registered with :func:`igm.testing.plugin`; discovery is checked against fake
installed distributions (``*.dist-info`` folders) put on ``PYTHONPATH`` of a subprocess running
the installed ``igm`` script, exactly as ``pip install`` would leave them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import igm
from igm import checkpoint
from igm.cli import app
from igm.divergences import BUILTIN_DIVERGENCES, JSD
from igm.errors import CheckpointError, PluginError, UnknownNameError
from igm.hookspecs import HOOKS, KINDS
from igm.metrics import Metric
from igm.adversarial import AdversarialModel
from igm.registry import get_registry, reset_registry
from igm.testing import plugin, toy_points
from igm.trainer import Trainer

IGM = Path(sys.executable).parent / "igm"
runner = CliRunner()


def one_error_line(result) -> str:
    """The single 'Error:' line of a failed CliRunner result (exit 2, no traceback, nothing else)."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    return lines[0]


# ---- inline components, one per hook --------------------------------------------------------


def make_everything_plugin(prefix: str = "inline") -> types.SimpleNamespace:
    """A plugin implementing all five hooks; its classes count their use so tests can tell."""

    class InlineGAN(AdversarialModel):
        """An inline adversarial family."""

        name = f"{prefix}-gan"

    class InlineJSD(JSD):
        """JSD under another name, counting its critic losses."""

        name = f"{prefix}-jsd"
        calls = 0

        def critic_loss(self, critic, real, fake):
            type(self).calls += 1
            return super().critic_loss(critic, real, fake)

    def inline_points(arg, seed):
        """Four Gaussians (igm.testing.toy_points) under a registered name."""
        source = toy_points(seed=seed)
        source.info = dataclasses.replace(source.info, name=f"{prefix}-points")
        return source

    class SampleCount(Metric):
        """Counts the samples it drew."""

        name = f"{prefix}-count"

        def __call__(self, model, data, n=None, seed=0):
            x = model.generator.sample(n or 5, generator=torch.Generator().manual_seed(seed))
            return {"drawn": int(x.shape[0]), "dim": int(x.shape[1])}

    class CountingTrainer(Trainer):
        """The default trainer, counting its rounds."""

        rounds = 0

        def train_step(self):
            type(self).rounds += 1
            return super().train_step()

    metric = SampleCount()

    @igm.hookimpl
    def register_models(register):
        register(f"{prefix}-gan", InlineGAN)

    @igm.hookimpl
    def register_divergences(register):
        register(f"{prefix}-jsd", InlineJSD)

    @igm.hookimpl
    def register_datasets(register):
        register(f"{prefix}-points", inline_points)

    @igm.hookimpl
    def register_metrics(register):
        register(f"{prefix}-count", metric)

    @igm.hookimpl
    def register_trainers(register):
        register(f"{prefix}-trainer", CountingTrainer)

    return types.SimpleNamespace(
        register_models=register_models,
        register_divergences=register_divergences,
        register_datasets=register_datasets,
        register_metrics=register_metrics,
        register_trainers=register_trainers,
        components={
            "models": (f"{prefix}-gan", InlineGAN),
            "divergences": (f"{prefix}-jsd", InlineJSD),
            "datasets": (f"{prefix}-points", inline_points),
            "metrics": (f"{prefix}-count", metric),
            "trainers": (f"{prefix}-trainer", CountingTrainer),
        },
    )


def test_inline_plugin_registers_through_every_hook_and_leaves_cleanly():
    everything = make_everything_plugin()
    registry = get_registry()
    before = {kind: registry.names(kind) for kind in KINDS.values()}
    with plugin(everything, "inline-all") as info:
        assert info.error is None
        assert info.hooks == sorted(HOOKS)  # every hook is implemented and was called
        assert set(everything.components) == set(KINDS.values())
        for kind, (name, obj) in everything.components.items():
            component = registry.component(kind, name)
            assert component.kind == kind
            assert component.obj is obj
            assert component.plugin.name == "inline-all"
            assert (kind, name) in info.registered
            assert registry.names(kind) == sorted(before[kind] + [name])
        listed = json.loads(runner.invoke(app, ["list", "plugins", "--json"]).stdout)
        mine = next(p for p in listed if p["name"] == "inline-all")
        assert mine["distribution"] is None and mine["error"] is None
        assert mine["registered"] == {kind: [name] for kind, (name, _) in sorted(everything.components.items())}
    assert "inline-all" not in registry.plugins.infos
    for kind, (name, _) in everything.components.items():
        assert registry.names(kind) == before[kind]
        with pytest.raises(UnknownNameError):
            registry.get(kind, name)


def test_inline_components_are_used_by_name_from_the_cli(tmp_path, monkeypatch):
    """fit/eval reach the plugin's model, divergence, data source, trainer and metric by name."""
    monkeypatch.chdir(tmp_path)
    everything = make_everything_plugin("e2e")
    _, divergence = everything.components["divergences"]
    _, trainer = everything.components["trainers"]
    with plugin(everything, "e2e-plugin"):
        result = runner.invoke(
            app,
            ["fit", "e2e-gan", "--data", "e2e-points", "--trainer", "e2e-trainer", "--set", "divergence=e2e-jsd",
             "--steps", "3", "--batch-size", "16", "--out", "R", "-q"],
        )
        assert result.exit_code == 0, result.output
        assert trainer.rounds == 3 and divergence.calls == 3  # one critic step per round
        meta = checkpoint.read_metadata(Path("R/model.safetensors"))
        assert meta["igm.model"] == "e2e-gan" and meta["igm.plugin"] == "e2e-plugin"
        result = runner.invoke(app, ["eval", "R/model.safetensors", "--data", "e2e-points", "--metric", "e2e-count",
                                     "-n", "7", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == {"e2e-count": {"drawn": 7, "dim": 2}}
    # the plugin is gone: its checkpoint now names a model nobody provides
    with pytest.raises(CheckpointError, match="e2e-gan"):
        checkpoint.load("R/model.safetensors")
    line = one_error_line(runner.invoke(app, ["sample", "R/model.safetensors", "-n", "2", "--out", "s.npy"]))
    assert "e2e-gan" in line
    assert not Path("s.npy").exists()


# ---- conflicts, raising hooks, misspellings ---------------------------------------------------


class Impostor(JSD):
    """Not the real jsd."""

    name = "jsd"


def test_taken_name_is_an_error_of_the_late_plugin_and_the_original_stays():
    @igm.hookimpl
    def register_divergences(register):
        register("jsd", Impostor)

    registry = get_registry()
    with plugin(types.SimpleNamespace(register_divergences=register_divergences), "impostor") as info:
        assert info.error is not None
        assert "'jsd'" in info.error and "'igm'" in info.error  # the name and its owner
        assert ("divergences", "jsd") not in info.registered
        owner = registry.component("divergences", "jsd")
        assert owner.plugin.name == "igm" and owner.obj is BUILTIN_DIVERGENCES["jsd"]
        assert registry.plugins.infos["igm"].error is None
        # the rest of igm is untouched, and the CLI reports the problem without failing
        result = runner.invoke(app, ["list", "plugins"])
        assert result.exit_code == 0
        assert "impostor" in result.stdout and "already taken" in result.stdout
    assert registry.get("divergences", "jsd") is BUILTIN_DIVERGENCES["jsd"]


def test_a_name_two_plugins_register_goes_to_neither_whatever_their_order():
    registry = get_registry()
    for order in (("first-plugin", "second-plugin"), ("second-plugin", "first-plugin")):
        made = {name: make_everything_plugin("twice") for name in order}
        with plugin(made[order[0]], order[0]) as info_a, plugin(made[order[1]], order[1]) as info_b:
            for info, other in ((info_a, order[1]), (info_b, order[0])):
                assert "'twice-gan'" in info.error and f"'{other}'" in info.error and "neither is used" in info.error
                assert ("models", "twice-gan") not in info.registered
            with pytest.raises(UnknownNameError, match=r"model 'twice-gan' is registered by plugins .* igm uses neither"):
                registry.get("models", "twice-gan")
        with pytest.raises(UnknownNameError):
            registry.get("models", "twice-gan")


def test_the_survivor_of_a_clash_gets_the_name_back_when_the_other_goes():
    registry = get_registry()
    first = make_everything_plugin("twice")
    with plugin(first, "first-plugin") as info:
        with plugin(make_everything_plugin("twice"), "second-plugin"):
            with pytest.raises(UnknownNameError):
                registry.get("models", "twice-gan")
        assert info.error is None and ("models", "twice-gan") in info.registered
        assert registry.get("models", "twice-gan") is first.components["models"][1]


def test_a_bundled_family_keeps_its_name_even_against_a_plugin_that_loads_first(tmp_path, fake_dist, monkeypatch):
    """An 'ali' plugin (loaded before 'gan' alphabetically) registering 'gan' cannot change what gan trains."""
    fake_dist(tmp_path, "ali", "igm-ali", "1.0", "igm_ali_fake", """
        import igm
        from igm.adversarial import AdversarialModel

        class ALI(AdversarialModel):
            \"\"\"Not the GAN.\"\"\"
            name = "gan"

        @igm.hookimpl
        def register_models(register):
            register("gan", ALI)
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    from igm.registry import Registry, load_plugins

    registry = Registry(load_plugins())
    gan = registry.component("models", "gan")
    assert gan.plugin.dist == "igm-gan" and gan.obj.__module__ == "igm_gan"
    ali = registry.plugins.infos["ali"]
    assert "model name 'gan' is already taken by bundled plugin 'gan' (igm-gan), which keeps it" in ali.error
    assert registry.plugins.infos["gan"].error is None


def test_a_raising_hook_is_recorded_and_other_plugins_keep_working():
    @igm.hookimpl
    def register_datasets(register):
        raise RuntimeError("the data server is down")

    def fine_points(arg, seed):
        """Fine points."""
        return toy_points(seed=seed)

    @igm.hookimpl
    def register_datasets_fine(register):
        register("fine-points", fine_points)

    fine = types.SimpleNamespace(register_datasets=register_datasets_fine)
    raiser = types.SimpleNamespace(register_datasets=register_datasets)
    registry = get_registry()
    with plugin(raiser, "raiser") as bad, plugin(fine, "fine") as good:
        assert "register_datasets" in bad.error and "RuntimeError" in bad.error and "data server is down" in bad.error
        assert bad.registered == []
        assert good.error is None and good.registered == [("datasets", "fine-points")]
        assert registry.get("datasets", "fine-points") is fine_points
        assert registry.get("datasets", "grid25") is not None
        result = runner.invoke(app, ["list", "plugins", "--json"])
        assert result.exit_code == 0
        by_name = {p["name"]: p for p in json.loads(result.stdout)}
        assert "data server is down" in by_name["raiser"]["error"]
        assert by_name["fine"]["registered"] == {"datasets": ["fine-points"]}
        assert by_name["gan"]["error"] is None


def test_a_misspelled_hook_is_rejected_with_did_you_mean_and_registers_nothing():
    class Misspelled(AdversarialModel):
        """Never registered."""

        name = "misspelled-model"

    @igm.hookimpl
    def register_model(register):  # should be register_models
        register("misspelled-model", Misspelled)

    @igm.hookimpl
    def register_metrics(register):  # correct, but the plugin as a whole is rejected
        register("misspelled-metric", Metric())

    obj = types.SimpleNamespace(register_model=register_model, register_metrics=register_metrics)
    registry = get_registry()
    with plugin(obj, "typo") as info:
        assert "'register_model'" in info.error
        assert "did you mean 'register_models'" in info.error
        assert info.registered == [] and info.hooks == []
        assert "misspelled-model" not in registry.names("models")
        assert "misspelled-metric" not in registry.names("metrics")


def test_an_invalid_component_name_is_recorded():
    @igm.hookimpl
    def register_metrics(register):
        register("Bad Name", Metric())

    with plugin(types.SimpleNamespace(register_metrics=register_metrics), "badname") as info:
        assert "'Bad Name'" in info.error
        assert "Bad Name" not in get_registry().names("metrics")


def test_a_hook_with_a_wrong_signature_is_reported_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    @igm.hookimpl
    def register_models(reg):  # the hook's argument is called `register`
        pass

    with plugin(types.SimpleNamespace(register_models=register_models), "wrongsig") as info:
        assert info.error is not None and "register_models" in info.error
        line = one_error_line(runner.invoke(app, ["fit", "wrongsig", "--data", "grid25", "--out", "never"]))
        assert "wrongsig" in line


def test_an_inline_plugin_reusing_a_plugin_name_does_not_disturb_that_plugin():
    @igm.hookimpl
    def register_metrics(register):
        pass

    registry = get_registry()
    original = registry.plugins.infos["gan"]
    try:
        with pytest.raises(PluginError, match="plugin name 'gan' is already taken by igm-gan"):
            with plugin(types.SimpleNamespace(register_metrics=register_metrics), "gan"):
                pass
        assert registry.plugins.infos.get("gan") is original
        assert registry.component("models", "gan").plugin is original
    finally:
        reset_registry()  # whatever happened, later tests get the real plugins back


# ---- unknown names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "typo", "meant"),
    [
        ("models", "gam", "gan"),
        ("divergences", "jsdd", "jsd"),
        ("datasets", "grid52", "grid25"),
        ("metrics", "mode", "modes"),
        ("trainers", "defualt", "default"),
    ],
)
def test_unknown_name_suggests_the_close_one(kind, typo, meant):
    with pytest.raises(UnknownNameError) as caught:
        get_registry().get(kind, typo)
    message = str(caught.value)
    assert f"did you mean '{meant}'" in message
    assert f"'{typo}'" in message and "\n" not in message


def test_unknown_name_far_from_everything_lists_what_is_installed():
    with pytest.raises(UnknownNameError) as caught:
        get_registry().get("models", "zzzzzz")
    assert "did you mean" not in str(caught.value)
    assert "gan" in str(caught.value)


# ---- the installed gan plugin, allow and deny lists (in process) -------------------------------


@pytest.fixture
def fresh_registry():
    """Rebuild the registry for the test (after it changes the environment) and again afterwards."""
    reset_registry()
    yield
    reset_registry()


def test_list_plugins_shows_distribution_version_hooks_and_names():
    result = runner.invoke(app, ["list", "plugins", "--json"])
    assert result.exit_code == 0, result.output
    by_name = {p["name"]: p for p in json.loads(result.stdout)}
    gan = by_name["gan"]
    assert (gan["distribution"], gan["version"], gan["module"]) == ("igm-gan", "0.1.0", "igm_gan")
    assert gan["hooks"] == ["register_models"] and gan["registered"] == {"models": ["gan"]}
    assert gan["error"] is None and gan["disabled"] is False
    core = by_name["igm"]
    assert core["distribution"] == "igm-toolkit" and core["version"] == igm.__version__
    assert "jsd" in core["registered"]["divergences"] and "grid25" in core["registered"]["datasets"]
    assert core["registered"]["trainers"] == ["default"] and "modes" in core["registered"]["metrics"]

    text = runner.invoke(app, ["list", "plugins"])
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    gan_line = next(i for i, line in enumerate(lines) if line.split()[:1] == ["gan"])
    assert "igm-gan 0.1.0" in lines[gan_line] and lines[gan_line].rstrip().endswith("ok")
    assert "hooks: register_models" in lines[gan_line + 1]
    assert "registered: gan (models)" in lines[gan_line + 2]


def test_disable_list_turns_a_plugin_off_and_a_command_that_needs_it_says_so(tmp_path, monkeypatch, fresh_registry):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IGM_DISABLE_PLUGINS", "gan")
    registry = get_registry()
    assert "gan" not in registry.names("models")
    assert registry.plugins.infos["gan"].disabled
    assert "jsd" in registry.names("divergences")  # the core is always loaded
    line = one_error_line(runner.invoke(app, ["fit", "gan", "--data", "grid25", "--out", "never"]))
    assert "'gan'" in line and "IGM_DISABLE_PLUGINS" in line
    assert not Path("never").exists()


def test_allow_list_keeps_the_core(monkeypatch, fresh_registry):
    monkeypatch.setenv("IGM_PLUGINS", "")  # nothing allowed but the core
    registry = get_registry()
    assert registry.names("models") == []
    assert registry.plugins.infos["gan"].disabled
    assert registry.plugins.infos["igm"].error is None and "grid25" in registry.names("datasets")


# ---- discovery through real installed distributions (subprocess) ------------------------------

FAKE_DISTS = {
    # entry name: (distribution, version, module, source)
    "broken": ("igm-fake-broken", "0.1", "igm_fake_broken", """
        raise RuntimeError("kaput: igm_fake_broken cannot start")
    """),
    "goodfam": ("igm-fake-good", "0.2", "igm_fake_good", '''
        import igm
        from igm.adversarial import AdversarialModel

        class GoodModel(AdversarialModel):
            """A family from an installed distribution."""

            name = "good-model"

        @igm.hookimpl
        def register_models(register):
            register("good-model", GoodModel)
    '''),
    "zdup": ("igm-fake-dup", "0.3", "igm_fake_dup", '''
        import igm
        from igm.divergences import JSD

        class Impostor(JSD):
            """Not the real jsd."""

        @igm.hookimpl
        def register_divergences(register):
            register("jsd", Impostor)
    '''),
    "raiser": ("igm-fake-raiser", "0.4", "igm_fake_raiser", """
        import igm

        @igm.hookimpl
        def register_datasets(register):
            raise ValueError("no data here")
    """),
}


@pytest.fixture(scope="module")
def discovered(tmp_path_factory, fake_dist):
    """Run the installed igm script against the fake distributions, all commands concurrently."""
    site = tmp_path_factory.mktemp("site")
    for entry, spec in FAKE_DISTS.items():
        fake_dist(site, entry, *spec)
    base = {k: v for k, v in os.environ.items() if k not in ("IGM_PLUGINS", "IGM_DISABLE_PLUGINS")}
    base.update(PYTHONPATH=str(site), OMP_NUM_THREADS="1")
    commands = {
        "list-json": (["list", "--json"], {}),
        "list-text": (["list"], {}),
        "list-plugins": (["list", "plugins"], {}),
        "allow-gan": (["list", "--json"], {"IGM_PLUGINS": "gan"}),
        "deny-gan": (["list", "--json"], {"IGM_DISABLE_PLUGINS": "gan"}),
        "fit-broken": (["fit", "broken", "--data", "grid25", "--steps", "3", "--out", "R"], {}),
    }

    def run(item):
        key, (args, env) = item
        cwd = tmp_path_factory.mktemp(key)
        proc = subprocess.run([str(IGM), *args], capture_output=True, text=True, env={**base, **env}, cwd=cwd, timeout=120)
        return key, (proc, cwd)

    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return dict(pool.map(run, commands.items()))


def plugins_by_name(listing: dict) -> dict[str, dict]:
    return {p["name"]: p for p in listing["plugins"]}


def test_discovery_lists_broken_plugins_with_their_errors_and_keeps_the_rest(discovered):
    proc, _ = discovered["list-json"]
    assert proc.returncode == 0, proc.stderr
    listing = json.loads(proc.stdout)
    models = {m["name"]: m for m in listing["models"]}
    assert models["gan"]["plugin"] == "gan" and models["gan"]["distribution"] == "igm-gan"
    assert models["good-model"]["plugin"] == "goodfam" and models["good-model"]["distribution"] == "igm-fake-good"
    assert models["good-model"]["summary"] == "A family from an installed distribution."
    jsd = next(d for d in listing["divergences"] if d["name"] == "jsd")
    assert jsd["plugin"] == "igm"  # the impostor did not take it
    plugins = plugins_by_name(listing)
    broken = plugins["broken"]
    assert (broken["distribution"], broken["version"], broken["module"]) == ("igm-fake-broken", "0.1", "igm_fake_broken")
    assert "RuntimeError" in broken["error"] and "kaput" in broken["error"] and broken["registered"] == {}
    assert "'jsd'" in plugins["zdup"]["error"] and "'igm'" in plugins["zdup"]["error"]
    assert "register_datasets" in plugins["raiser"]["error"] and "no data here" in plugins["raiser"]["error"]
    assert plugins["goodfam"]["error"] is None and plugins["goodfam"]["version"] == "0.2"
    assert plugins["goodfam"]["registered"] == {"models": ["good-model"]}
    assert plugins["gan"]["error"] is None
    assert "Traceback" not in proc.stderr


def test_plain_list_goes_on_and_warns_once_per_failed_plugin(discovered):
    proc, _ = discovered["list-text"]
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    sections = {line[:-1] for line in proc.stdout.splitlines() if line and not line.startswith(" ")}
    assert sections == {"models", "divergences", "datasets", "metrics", "trainers", "plugins"}
    listed = [line.split()[0] for line in proc.stdout.splitlines() if line.startswith("  ") and line.strip()]
    assert "gan" in listed and "good-model" in listed
    warned = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(warned) == 3 and all(line.startswith("warning: plugin") for line in warned), proc.stderr
    assert any("'broken'" in line and "igm-fake-broken" in line and "kaput" in line for line in warned)
    assert any("'zdup'" in line for line in warned) and any("'raiser'" in line for line in warned)


def test_discovery_plugins_text_shows_distribution_version_status_and_names(discovered):
    proc, _ = discovered["list-plugins"]
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()

    def block(name: str) -> list[str]:
        start = next(i for i, line in enumerate(lines) if line.split()[:1] == [name])
        end = next((j for j in range(start + 1, len(lines)) if not lines[j].startswith("      ")), len(lines))
        return lines[start:end]

    broken = block("broken")
    assert "igm-fake-broken 0.1" in broken[0] and "ERROR" in broken[0]
    assert any("error: failed to import" in line and "kaput" in line for line in broken[1:])
    good = block("goodfam")
    assert "igm-fake-good 0.2" in good[0] and good[0].rstrip().endswith("ok")
    assert any("hooks: register_models" in line for line in good)
    assert any("registered: good-model (models)" in line for line in good)
    assert any("registered: gan (models)" in line for line in block("gan"))
    assert "ERROR" in block("zdup")[0] and "ERROR" in block("raiser")[0]


def test_allow_list_reports_the_others_as_disabled(discovered):
    proc, _ = discovered["allow-gan"]
    assert proc.returncode == 0, proc.stderr
    listing = json.loads(proc.stdout)
    assert [m["name"] for m in listing["models"]] == ["gan"]
    plugins = plugins_by_name(listing)
    for name in ("broken", "goodfam", "zdup", "raiser"):
        assert plugins[name]["disabled"] is True and plugins[name]["error"] is None, plugins[name]
        assert plugins[name]["distribution"] is not None  # still named, so the user can turn it on
    assert plugins["gan"]["disabled"] is False and plugins["igm"]["error"] is None
    assert "jsd" in [d["name"] for d in listing["divergences"]]
    assert "warning" not in proc.stderr  # a disabled plugin is not imported, so cannot fail


def test_deny_list_drops_that_plugin_only(discovered):
    proc, _ = discovered["deny-gan"]
    assert proc.returncode == 0, proc.stderr
    listing = json.loads(proc.stdout)
    assert "gan" not in [m["name"] for m in listing["models"]]
    assert "good-model" in [m["name"] for m in listing["models"]]
    plugins = plugins_by_name(listing)
    assert plugins["gan"]["disabled"] is True and plugins["gan"]["registered"] == {}
    assert plugins["goodfam"]["disabled"] is False


def test_a_command_needing_the_broken_plugin_fails_in_one_line_naming_it(discovered):
    proc, cwd = discovered["fit-broken"]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), proc.stderr
    assert "'broken'" in lines[0] and "igm-fake-broken" in lines[0] and "kaput" in lines[0]
    assert not (cwd / "R").exists()


def test_a_checkpoint_names_the_model_as_it_was_registered(tmp_path):
    """An alias (or a class without a `name`) saves under its registered name, and loads back."""
    from igm.testing import build_model

    class Nameless(AdversarialModel):
        """A family whose class sets no name."""

    @igm.hookimpl
    def register_models(register):
        register("gan-alias", Nameless)

    with plugin(types.SimpleNamespace(register_models=register_models), "alias-plugin"):
        model = build_model("gan-alias", toy_points().info)
        checkpoint.save(model, tmp_path / "m.safetensors")
        assert checkpoint.read_metadata(tmp_path / "m.safetensors")["igm.model"] == "gan-alias"
        assert type(checkpoint.load(tmp_path / "m.safetensors")) is Nameless


def test_an_adversarial_model_takes_its_divergence_from_where_it_is_planned(monkeypatch):
    """`parts` looks the divergence up once; building the model never touches the registry."""
    import igm.registry
    from igm.models import instantiate
    from igm.testing import build_model

    class CountingJSD(JSD):
        """JSD under a plugin's name."""

    @igm.hookimpl
    def register_divergences(register):
        register("counting-jsd", CountingJSD)

    data = toy_points().info
    config = igm.build_config(igm.AdversarialConfig, {"divergence": "counting-jsd"})
    with plugin(types.SimpleNamespace(register_divergences=register_divergences), "parts-plugin"):
        assert AdversarialModel.parts(config, get_registry()) == {"divergence": CountingJSD}
        assert type(build_model("gan", data, {"divergence": "counting-jsd"}).divergence) is CountingJSD
        parts = AdversarialModel.parts(config, get_registry())

        def no_lookup():
            raise AssertionError("a model looked a component up while being built")

        monkeypatch.setattr(igm.registry, "get_registry", no_lookup)
        model = AdversarialModel(config, data, **parts)
        assert type(model.divergence) is CountingJSD
        monkeypatch.undo()
        # built directly, without the registry's lookup: the core's divergences only, and one clear line
        assert type(AdversarialModel(dataclasses.replace(config, divergence="kl"), data).divergence).__name__ == "KL"
        with pytest.raises(igm.ConfigError, match="counting-jsd.*through the registry"):
            AdversarialModel(config, data)
        # instantiate (what igm fit and igm.load use) passes the parts on
        assert type(instantiate(AdversarialModel, config, data).divergence) is CountingJSD


def test_a_critic_free_divergence_is_refused_by_the_adversarial_recipe():
    from igm.testing import build_model

    with pytest.raises(igm.ConfigError, match="'mmd' has no critic"):
        build_model("gan", toy_points().info, {"divergence": "mmd"})
