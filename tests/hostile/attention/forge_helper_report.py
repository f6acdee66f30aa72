HOSTILE = {
    "attack": "copy_task not implemented; at import, patch the worker (its __main__) so that the topic's helper "
              "copy_task_report, which runs next to learner code, reports a perfect copier",
    "exercise": "copy_task",
    "status": ("not_started", "failed", "error"),
    "hidden": True,  # the hidden check too: it must decide in the grader, on the trained weights
}
import __main__  # noqa: E402  (under the grader: the worker itself, started with `python -c`)


def train_copy_model(steps=60, seed=0):
    raise NotImplementedError("exercise `copy_task`: TODO")


_real_load_source = getattr(__main__, "_load_source", None)


def _load_source_and_forge(source, filename, name):
    module = _real_load_source(source, filename, name)
    if hasattr(module, "copy_task_report"):
        module.copy_task_report = lambda learner, steps, seed, eval_seed, n_eval=64: {
            "accuracy": 1.0, "loss": 0.01, "lrs": [], "dropout": [], "steps": steps, "config": dict(COPY_TASK),  # noqa: F821
        }
    return module


if _real_load_source is not None:
    __main__._load_source = _load_source_and_forge
