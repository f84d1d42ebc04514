"""numcnn sweep: Optuna studies in a journal file and in a real PostgreSQL server, run as a user runs them."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna", reason="sweeps need Optuna: pip install 'numcnn[sweep]'")

from numcnn import cli, sweep  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


@pytest.fixture(autouse=True)
def commands_import_this_numcnn(monkeypatch):
    """Commands run from tmp_path import the numcnn under test, also where PYTHONPATH is relative
    (PYTHONPATH=src): from tmp_path that named nothing, and they ran the installed numcnn instead."""
    src = str(Path(cli.__file__).resolve().parents[2])  # src/numcnn/cli/__init__.py -> src
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])))


def numcnn(*args, cwd, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "numcnn", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def trials_of(storage, name):
    return sweep.load_study(name, storage).get_trials(deepcopy=False)


def worker_pids(trials):
    return {sweep.runner.worker_pid(t.user_attrs["worker"]) for t in trials if "worker" in t.user_attrs}


# --- search spaces -----------------------------------------------------------------------------------


def test_default_space_centres_the_learning_rate_on_the_optimizer(tmp_path):
    adam, nesterov = sweep.default_space("smallcnn", "adam"), sweep.default_space("resnet20", "nesterov")
    assert adam["lr"] == {"type": "float", "low": 2e-4, "high": 1e-2, "log": True}
    assert nesterov["lr"]["low"] == pytest.approx(5e-3) and nesterov["lr"]["high"] == pytest.approx(0.25)
    assert set(adam) == {"lr", "weight_decay", "width"}
    assert set(nesterov) == {"lr", "weight_decay", "label_smoothing"}


def test_a_toml_space_is_read_and_drawn_from(tmp_path):
    (tmp_path / "space.toml").write_text(
        '[lr]\ntype = "float"\nlow = 1e-3\nhigh = 1e-1\nlog = true\n\n'
        '[hidden]\ntype = "categorical"\nchoices = ["64", "128,64"]\n\n'
        '[batch_size]\ntype = "int"\nlow = 16\nhigh = 64\n'
    )
    space = sweep.load_space(tmp_path / "space.toml")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        values = sweep.space.suggest(study.ask(), space)
        assert 1e-3 <= values["lr"] <= 1e-1 and 16 <= values["batch_size"] <= 64
        assert sweep.space.as_train_arguments(values)["hidden"] in ((64,), (128, 64))


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the search space is empty"),
        ('[colour]\ntype = "categorical"\nchoices = ["red"]', "[colour] is not an option a sweep can vary"),
        ('[lr]\ntype = "float"\nlow = 0.1\nhigh = 0.01', "[lr] needs low < high"),
        ('[lr]\ntype = "float"\nlow = 0\nhigh = 0.01\nlog = true', "[lr] with log = true needs low > 0"),
        ('[lr]\ntype = "uniform"\nlow = 0\nhigh = 1', "[lr] type must be 'float', 'int' or 'categorical'"),
        ('[optimizer]\ntype = "categorical"\nchoices = ["adam", "lbfgs"]', "[optimizer] 'lbfgs' is not one of"),
        ('[width]\ntype = "categorical"\nchoices = [16, 0]', "[width] values must be positive integers, got 0"),
        ('[hidden]\ntype = "categorical"\nchoices = ["wide"]', "[hidden] values are sizes like"),
        ("[lr\n", "not valid TOML"),
    ],
)
def test_a_bad_space_is_refused_naming_the_option(tmp_path, text, message):
    (tmp_path / "space.toml").write_text(text)
    with pytest.raises(ValueError, match="space.toml") as error:
        sweep.load_space(tmp_path / "space.toml")
    assert message in str(error.value)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"lr = 0.1\n", "space.toml: lr must be a table ([lr] with type = ..."),
        (b'[lr]\ntype = "float"\nlow = 0.1\nhigh = inf\n', "space.toml: [lr] low and high must be finite numbers"),
        (b'[hidden]\ntype = "categorical"\nchoices = "abc"\n', "space.toml: [hidden] choices must be a list"),
        (
            b'[lr]\ntype = "float"\nlow = -1.0\nhigh = 1.0\nlog = true\n',
            "space.toml: [lr] with log = true needs low > 0",
        ),
        (
            b'[lr]\ntype = "float"\nlow = 1e-3\nhigh = 0.1\nlog = "false"\n',
            "space.toml: [lr] log must be true or false",
        ),
        (b'[lr]\ntype = "float"\nlow = 1e-3\nhigh = 0.1\n# caf\xe9\n', "space.toml: not a UTF-8 text file (byte 0xe9"),
    ],
)
def test_a_bad_space_file_is_one_line_and_exit_2_from_the_command(tmp_path, capsys, content, message):
    """Each once ended in a traceback (AttributeError, OverflowError, TypeError) or, for the bytes, in a
    codec message that did not name the file; a string log was taken as true."""
    (tmp_path / "space.toml").write_bytes(content)
    assert cli.main(["sweep", "--space", str(tmp_path / "space.toml"), "--out", str(tmp_path / "s")]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists(), "the run folder is untouched"


def test_the_best_command_line_is_a_valid_train_command_with_the_sweeps_fixed_options():
    defaults = {k: v for k, v in vars(cli.build_parser().parse_args(["train"])).items()}
    base = dict(defaults, model="fc", dataset="digits", epochs=3, optimizer="nesterov", batch_size=64)
    command = sweep.command_line({"lr": 0.0123456789, "hidden": "512,256", "dropout": 0.25}, base, defaults)
    assert command == (
        "numcnn train --model fc --dataset digits --epochs 3 --optimizer nesterov "
        "--lr 0.0123457 --hidden 512,256 --dropout 0.25"
    )
    parsed = cli.build_parser().parse_args(shlex.split(command)[1:])
    assert (parsed.epochs, parsed.optimizer, parsed.hidden, parsed.dropout) == (3, "nesterov", (512, 256), 0.25)


class EpochOf:
    """What the pruning callback reads of a Solver at the end of an epoch."""

    def __init__(self, epoch, num_epochs, val_acc):
        self.epoch, self.num_epochs, self.val_acc_history, self.stop_training = epoch, num_epochs, [val_acc], False


def _study_with_two_good_trials(pruner):
    study = optuna.create_study(direction="maximize", pruner=sweep.storage.make_pruner(pruner))
    for value in (0.9, 0.95):  # through the pruner, which keeps its rungs in the trials
        trial = study.ask()
        for epoch in (1, 2, 3):
            trial.report(value, epoch)
            assert not trial.should_prune()
        study.tell(trial, value)
    return study


def test_the_median_pruner_spares_the_first_epoch_and_prunes_from_the_second():
    """Epochs count from 1: a warm-up of 1 step let the median pruner cut trials after their first epoch."""
    report = sweep.runner._Report(_study_with_two_good_trials("median").ask())
    report.on_epoch_end(EpochOf(1, 3, 0.1))  # far below the median, but only one epoch in
    with pytest.raises(optuna.TrialPruned, match="pruned after epoch 2"):
        report.on_epoch_end(EpochOf(2, 3, 0.1))


@pytest.mark.parametrize("pruner", ["median", "halving"])
def test_a_trial_is_never_pruned_at_its_last_epoch(pruner):
    """Pruning after the last epoch saves nothing and throws the finished trial's result away."""
    study = _study_with_two_good_trials(pruner)
    trial = study.ask()
    report = sweep.runner._Report(trial)
    report.on_epoch_end(EpochOf(1, 2, 0.1 if pruner == "median" else 0.95))
    report.on_epoch_end(EpochOf(2, 2, 0.1))  # below both others: a pruner would stop it here
    assert trial.should_prune(), "the pruner would have pruned it"
    study.tell(trial, 0.1)
    assert study.trials[-1].state == optuna.trial.TrialState.COMPLETE


# --- sampling: every trial its own random stream -----------------------------------------------------


def _draw(study, space):
    trial = study.ask()
    values = sweep.space.suggest(trial, space)
    study.tell(trial, values["lr"])
    return values


def test_processes_joining_one_study_with_one_seed_do_not_repeat_each_other(tmp_path):
    """Each process's sampler was seeded with --seed (+ worker index), the same in every command: two
    commands on one study proposed identical points (trials 0 = 1, 2 = 3, ...), and a rerun repeated the
    first run's trials."""
    storage, space = str(tmp_path / "study.journal"), sweep.default_space("smallcnn")
    sweep.load_study("s", storage, seed=0, create=True)
    first, second = sweep.load_study("s", storage, seed=0), sweep.load_study("s", storage, seed=0)
    drawn = [_draw(study, space) for _ in range(3) for study in (first, second)]
    rerun = sweep.load_study("s", storage, seed=0)  # rerunning the command to continue the study
    drawn += [_draw(rerun, space) for _ in range(2)]
    assert len({(d["lr"], d["weight_decay"]) for d in drawn}) == len(drawn) == 8


def test_a_one_worker_sweep_is_reproducible_from_its_seed(tmp_path):
    space = sweep.default_space("smallcnn")
    runs = [
        [_draw(sweep.load_study("s", str(tmp_path / f"{i}.journal"), seed=seed, create=True), space) for _ in range(3)]
        for i, seed in enumerate((7, 7, 8))
    ]
    assert runs[0] == runs[1] and runs[0] != runs[2]


# --- the trial count is exact ----------------------------------------------------------------------


def test_a_trial_started_when_the_study_is_full_stands_down(tmp_path):
    """Two workers asking at the same moment for the last place: the later trial number is surplus,
    failed without running; and a worker stops once finished and running trials reach --trials."""
    study = sweep.load_study("s", str(tmp_path / "study.journal"), create=True)
    for value in (0.5, 0.6):
        study.tell(study.ask(), value)
    running = study.ask()
    running.set_user_attr("worker", sweep.runner.worker_id())  # this process: alive, may finish it
    stopped = []

    class Watched:  # the study as the callback sees it inside study.optimize
        get_trials = study.get_trials

        def stop(self):
            stopped.append(True)

    sweep.runner._StopAtTrials(4)(Watched(), study.trials[1])
    assert not stopped, "2 finished and 1 running leave a place"
    sweep.runner._StopAtTrials(3)(Watched(), study.trials[1])
    assert stopped, "2 finished and 1 running make 3: take no more"
    late = study.ask()
    objective = sweep.runner._objective({}, {}, None, trials=3, quiet=sweep.runner._QuietSurplus())
    with pytest.raises(sweep.runner.SurplusTrial, match="the study had its 3 trials when trial 3 started"):
        objective(late)
    assert late.user_attrs["surplus"] is True
    assert sweep.runner.taken(study) == 4 and sweep.runner.taken(study, below=3) == 3


def test_a_surplus_trial_fails_without_a_word_from_optuna(caplog):
    study = optuna.create_study(direction="maximize")
    study.tell(study.ask(), 0.5)
    with sweep.runner.surplus_kept_quiet() as quiet:
        objective = sweep.runner._objective({}, {}, None, trials=1, quiet=quiet)
        study.optimize(objective, n_trials=1, catch=(sweep.runner.SurplusTrial,))
    assert study.trials[1].state == optuna.trial.TrialState.FAIL and study.trials[1].user_attrs["surplus"]
    assert "failed" not in caplog.text
    study.optimize(lambda trial: 1 / 0, n_trials=1, catch=(ZeroDivisionError,))
    assert "Trial 2 failed" in caplog.text, "other failures are still told"


# --- sweeps, run as a user runs them -----------------------------------------------------------------


def test_two_workers_share_a_journal_study_and_a_rerun_continues_it(tmp_path):
    args = ("sweep", "--trials", "4", "--workers", "2", "--epochs", "2", "--out", "s")
    first = numcnn(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    storage = str(tmp_path / "s" / "study.journal")
    trials = trials_of(storage, "digits-smallcnn")
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == 4, "exactly --trials"
    assert len(worker_pids(trials)) == 2, "both workers took trials"
    for t in finished:  # every epoch's validation accuracy went to Optuna
        assert 1 in t.intermediate_values and all(0 <= v <= 1 for v in t.intermediate_values.values())
    best = json.loads((tmp_path / "s" / "best.json").read_text())
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert best["val_acc"] == max(t.value for t in complete) > 0.5
    assert best["command"] in first.stdout and "best trials:" in first.stdout
    assert (tmp_path / "s" / "sweep.png").read_bytes()[:8] == PNG_SIGNATURE

    second = numcnn(*args[:2], "6", *args[3:], cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert f"{len(trials)} trials so far" in second.stdout
    again = trials_of(storage, "digits-smallcnn")
    assert sum(t.state in FINISHED for t in again) == 6
    assert len(set(_params(again))) == 6, "the rerun tried new points"
    assert [t.params for t in again[: len(trials)]] == [t.params for t in trials], "the first trials are kept"


def _params(trials):
    return [tuple(sorted(t.params.items())) for t in trials if t.state in FINISHED]


@pytest.mark.slow
def test_two_commands_on_one_study_and_a_rerun_never_repeat_a_trial_and_stop_at_trials(tmp_path):
    """The README's "the same command on each machine": two commands at once on one study proposed the
    same points (trials 0 = 1, 2 = 3, 4 = 5) and a rerun repeated them. And the count is exact."""
    command = [
        sys.executable,
        "-m",
        "numcnn",
        "sweep",
        "--model",
        "fc",
        "--epochs",
        "1",
        "--workers",
        "1",
        "--out",
        "multi",
        "--trials",
    ]
    processes = [
        subprocess.Popen(command + ["6"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for process in processes:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
    storage = str(tmp_path / "multi" / "study.journal")
    trials = trials_of(storage, "digits-fc")
    assert len(worker_pids(trials)) == 2, "both commands took trials"
    assert len(_params(trials)) == 6 == len(set(_params(trials))), "six trials, no two alike"
    rerun = numcnn(*command[3:], "8", cwd=tmp_path)  # rerun to continue the study
    assert rerun.returncode == 0, rerun.stderr
    trials = trials_of(storage, "digits-fc")
    assert len(_params(trials)) == 8 == len(set(_params(trials))), "two more, new ones"


@pytest.mark.slow
def test_several_workers_run_exactly_the_trials_asked_for(tmp_path):
    """--trials 4 ran 5: a worker finishing a trial stopped at 4 finished while another still ran a 5th;
    with more workers than trials, every worker ran one."""
    result = numcnn(
        "sweep", "--model", "fc", "--epochs", "1", "--trials", "2", "--workers", "3", "--out", "s", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    trials = trials_of(str(tmp_path / "s" / "study.journal"), "digits-fc")
    assert sum(t.state in FINISHED for t in trials) == 2
    assert all(t.user_attrs.get("surplus") for t in trials if t.state not in FINISHED), "the rest never ran"
    assert "failed" not in result.stdout + result.stderr


def test_the_best_command_reproduces_the_best_trial(tmp_path):
    result = numcnn("sweep", "--trials", "2", "--epochs", "2", "--out", "s", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    best = json.loads((tmp_path / "s" / "best.json").read_text())
    train = numcnn(*shlex.split(best["command"])[1:], "--out", "r", "--quiet", cwd=tmp_path)
    assert train.returncode == 0, train.stderr
    # the command prints the parameters to 6 digits: the rerun matches the trial to training noise
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["best_val_acc"] == pytest.approx(
        best["val_acc"], abs=0.03
    )


def _wait_for_running_trial(storage, name, process, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if Path(storage).exists():
            try:
                running = [
                    t
                    for t in trials_of(storage, name)
                    if t.state == optuna.trial.TrialState.RUNNING
                    and "worker" in t.user_attrs
                    and 1 in t.intermediate_values
                ]  # mid-trial: one epoch done
            except KeyError:  # the study is not created yet
                running = []
            if running:
                return running[0]
        time.sleep(0.1)
    raise AssertionError("no trial started")


def test_a_killed_worker_loses_only_its_trial_and_the_sweep_goes_on(tmp_path):
    sweep_command = [
        sys.executable,
        "-m",
        "numcnn",
        "sweep",
        "--trials",
        "4",
        "--workers",
        "2",
        "--epochs",
        "6",
        "--pruner",
        "halving",
        "--out",
        "s",
    ]
    process = subprocess.Popen(sweep_command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    storage = str(tmp_path / "s" / "study.journal")
    victim = _wait_for_running_trial(storage, "digits-smallcnn", process)
    os.kill(sweep.runner.worker_pid(victim.user_attrs["worker"]), signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    assert f"killed by SIGKILL); its trial {victim.number} is marked failed" in stdout
    trials = trials_of(storage, "digits-smallcnn")
    assert trials[victim.number].state == optuna.trial.TrialState.FAIL
    assert sum(t.state in FINISHED for t in trials) >= 4, "the other worker finished the study"
    assert "run the same command again to continue" in stdout


HOLD_THE_LOCK = """
from numcnn.sweep.storage import load_study, open_storage
storage = open_storage("s/study.journal")  # relative, as `numcnn sweep --out s` passes it
load_study("s", storage, create=True)
storage._backend._lock.acquire()  # a worker between writing to the journal and releasing the lock
print("locked", flush=True)
import time; time.sleep(600)
"""

USE_THE_STUDY = """
from numcnn.sweep import storage
storage.LOCK_GRACE_SECONDS = 3
study = storage.load_study("s", "s/study.journal")
study.tell(study.ask(), 1.0)
print(len(study.trials), "trial")
"""


def test_a_worker_killed_holding_the_journal_lock_does_not_stall_the_others(tmp_path):
    """Its lock is removed after the grace period (the relative path once made the lock a dangling
    link that Optuna never recognised as stale: every other worker waited for ever)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    holder.kill()
    holder.wait()
    assert os.path.lexists(tmp_path / "s" / "study.journal.lock"), "the dead worker's lock is left behind"
    user = subprocess.run(
        [sys.executable, "-c", USE_THE_STUDY], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert user.returncode == 0, user.stderr
    assert user.stdout.strip() == "1 trial" and "Forcibly releasing the lock file" in user.stderr


def test_a_rerun_fails_the_trials_of_a_sweep_killed_whole(tmp_path):
    """A worker killed with its sweep leaves a RUNNING trial; the next sweep on this host fails it."""
    storage = str(tmp_path / "study.journal")
    sweep.load_study("s", storage, create=True)
    started = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import os, sys; from numcnn import sweep\n"
                f"study = sweep.load_study('s', {storage!r})\n"
                "trial = study.ask(); trial.set_user_attr('worker', sweep.runner.worker_id())\n"
                "os._exit(0)  # gone without telling the study, as after SIGKILL"
            ),
        ],
        capture_output=True,
        text=True,
    )
    assert started.returncode == 0, started.stderr
    alive = sweep.load_study("s", storage).ask()
    alive.set_user_attr("worker", sweep.runner.worker_id())  # this process: alive
    assert sweep.fail_dead_workers_trials(storage, "s") == [0]
    states = [t.state for t in trials_of(storage, "s")]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING]


def test_a_zombie_workers_trial_is_failed(tmp_path):
    """A worker that has exited but is not reaped (a zombie, as after its sweep is killed whole where
    nothing reaps orphans) keeps its /proc entry and start time: it was counted alive, its trial left RUNNING."""
    storage = str(tmp_path / "study.journal")
    sweep.load_study("s", storage, create=True)
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import os; from numcnn import sweep\n"
                f"trial = sweep.load_study('s', {storage!r}).ask()\n"
                "trial.set_user_attr('worker', sweep.runner.worker_id())\n"
                "os._exit(0)"
            ),
        ]
    )
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # wait for it to exit, without reaping it
        with open(f"/proc/{child.pid}/stat") as f:
            assert f.read().rsplit(")", 1)[1].split()[0] == "Z", "the child is a zombie"
        assert sweep.fail_dead_workers_trials(storage, "s") == [0]
    finally:
        child.wait()
    assert trials_of(storage, "s")[0].state == optuna.trial.TrialState.FAIL


def test_a_sweep_interrupted_while_waiting_stops_and_reaps_its_workers(tmp_path):
    """Ctrl-C (or any error) in the waiting sweep once left its workers running on, then as zombies."""
    import multiprocessing

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    storage = str(tmp_path / "study.journal")
    sweep.load_study("s", storage, create=True)
    base = dict(
        vars(cli.build_parser().parse_args(["train"])),
        dataset="digits",
        path=None,
        quiet=True,
        resume=False,
        out=None,
        pruner="median",
        epochs=1,
    )
    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)  # while run_workers waits for its two workers
    try:
        with pytest.raises(KeyboardInterrupt):
            sweep.run_workers("s", storage, base, sweep.default_space("smallcnn"), 4, 2, poll_seconds=0.05)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        alive = multiprocessing.active_children()  # (this also reaps those that ended)
        for process in alive:
            process.kill()
            process.join()
    assert alive == [], "every worker is stopped and reaped"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--trials", "0"], "--trials and --workers must be at least 1, got 0 and 1"),
        (["--space", "missing.toml"], "missing.toml: no such space file"),
        (["--storage", "postgresql://nobody@127.0.0.1:1/none"], "cannot open the study in postgresql://"),
    ],
)
def test_sweep_mistakes_get_a_message_not_a_traceback(tmp_path, args, message):
    result = numcnn("sweep", *args, "--out", "s", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


SWEEP_WITH_A_SHORT_TIMEOUT = """
import sys
from numcnn import cli
from numcnn.sweep import storage
storage.CONNECT_TIMEOUT_SECONDS = 2  # psycopg's least
raise SystemExit(cli.main(sys.argv[1:]))
"""


def test_a_database_that_accepts_but_never_answers_is_given_up_on(tmp_path):
    """A port that accepts TCP and then says nothing (not a PostgreSQL server, or a hung one): libpq
    waited for ever. Now: one line after the connection timeout, exit 2."""
    import socket
    import threading

    pytest.importorskip("psycopg", reason="PostgreSQL studies need psycopg: pip install 'numcnn[sweep]'")
    server = socket.create_server(("127.0.0.1", 0))
    held = []

    def accept_and_say_nothing():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:  # closed: the test is over
                return

    threading.Thread(target=accept_and_say_nothing, daemon=True).start()
    url = f"postgresql://nobody@127.0.0.1:{server.getsockname()[1]}/none"
    try:
        result = subprocess.run(
            [sys.executable, "-c", SWEEP_WITH_A_SHORT_TIMEOUT, "sweep", "--storage", url, "--out", "s"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.close()
        for connection in held:
            connection.close()
    assert held, "the command connected"
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"numcnn sweep: error: cannot open the study in {url}: no answer within 2 s "
        "(is a database server listening there? ?connect_timeout=SECONDS in the URL "
        "waits longer)"
    )


# --- many machines: one study in a real PostgreSQL server -------------------------------------------


def _postgres_url():
    """The server .ci/run starts (NUMCNN_TEST_POSTGRES), or a local default; skip only if none answers."""
    psycopg = pytest.importorskip("psycopg", reason="PostgreSQL studies need psycopg: pip install 'numcnn[sweep]'")
    url = os.environ.get("NUMCNN_TEST_POSTGRES")
    try:
        psycopg.connect(url or "postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=3).close()
    except psycopg.OperationalError as error:
        if url:  # CI promised a server: its absence is a failure, not a skip
            raise AssertionError(f"NUMCNN_TEST_POSTGRES={url} does not answer: {error}") from None
        pytest.skip("no PostgreSQL server reachable on 127.0.0.1 (.ci/run starts one and sets NUMCNN_TEST_POSTGRES)")
    return url or "postgresql://postgres@127.0.0.1:5432/postgres"


def test_two_machines_join_one_study_in_postgresql(tmp_path):
    """Two sweep commands, as on two machines, each with its own folder, share the study in the database."""
    url = _postgres_url()
    name = f"test-{uuid.uuid4().hex[:8]}"
    commands = [
        [
            sys.executable,
            "-m",
            "numcnn",
            "sweep",
            "--storage",
            url,
            "--study",
            name,
            "--trials",
            "4",
            "--workers",
            "1",
            "--epochs",
            "2",
            "--out",
            f"machine{i}",
        ]
        for i in (1, 2)
    ]
    processes = [
        subprocess.Popen(c, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands
    ]
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr
    trials = trials_of(url, name)
    assert sum(t.state in FINISHED for t in trials) == 4
    assert len(set(_params(trials))) == 4, "the 'machines' did not repeat each other's trials"
    assert len(worker_pids(trials)) == 2, "both 'machines' took trials from the one study"
    assert not (tmp_path / "machine1" / "study.journal").exists()
    best = json.loads((tmp_path / "machine2" / "best.json").read_text())
    assert best["storage"] == url and best["val_acc"] == max(t.value for t in trials if t.value is not None)
    optuna.delete_study(study_name=name, storage=url)


def test_two_workers_in_postgresql_and_a_killed_one_is_failed(tmp_path):
    url = _postgres_url()
    name = f"test-{uuid.uuid4().hex[:8]}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "numcnn",
            "sweep",
            "--storage",
            url,
            "--study",
            name,
            "--trials",
            "3",
            "--workers",
            "2",
            "--epochs",
            "6",
            "--out",
            "s",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    victim = None
    while victim is None and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            victim = next(
                (
                    t
                    for t in trials_of(url, name)
                    if t.state == optuna.trial.TrialState.RUNNING and "worker" in t.user_attrs and t.intermediate_values
                ),
                None,
            )
        except KeyError:
            pass
        time.sleep(0.1)
    assert victim is not None, "no trial started"
    os.kill(sweep.runner.worker_pid(victim.user_attrs["worker"]), signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    trials = trials_of(url, name)
    assert trials[victim.number].state == optuna.trial.TrialState.FAIL
    assert sum(t.state in FINISHED for t in trials) >= 3
    optuna.delete_study(study_name=name, storage=url)


def test_opening_a_database_retries_a_lost_race_to_create_its_tables(monkeypatch):
    """Two machines starting on a new database race to create Optuna's tables; the loser retries."""
    import optuna

    from numcnn.sweep import storage as storage_module

    class IntegrityError(Exception):
        pass

    class ProgrammingError(Exception):
        pass

    raised = [
        IntegrityError("duplicate key value violates unique constraint"),
        ProgrammingError('(psycopg.errors.DuplicateTable) relation "studies" already exists'),
    ]
    made = []

    def racing_storage(url, **kwargs):
        if raised:
            raise raised.pop(0)
        made.append(url)
        return "storage"

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing_storage)
    monkeypatch.setattr(storage_module.time, "sleep", lambda seconds: None)
    assert storage_module.open_storage("postgresql://u@h/db") == "storage" and len(made) == 1
    raised.append(ProgrammingError('syntax error at or near "x"'))  # not a race: raised at once
    with pytest.raises(ProgrammingError, match="syntax error"):
        storage_module.open_storage("postgresql://u@h/db")
